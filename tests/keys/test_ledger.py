"""The spend ledger: priced from the provider's usage (cached and reasoning tokens included)
for streamed and non-streamed requests alike, durable across a restart, and secrets never
written anywhere."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter

import openai
import pytest

from ..harness import MASTER_KEY
from .support import (
    HELLO,
    admin,
    as_key,
    create_key,
    keyed_stack,
    quick,
    requests,
    reservation,
    spend,
)

# $ per million: input 2, output 8, cached input 0.5.
PRICE = (2.0, 8.0, 0.5)
LONG = [{"role": "user", "content": "Tell me everything. " * 50}]


def _cost(usage: openai.types.CompletionUsage) -> float:
    cached = usage.prompt_tokens_details.cached_tokens
    return ((usage.prompt_tokens - cached) * PRICE[0] + cached * PRICE[2]
            + usage.completion_tokens * PRICE[1]) / 1e6


def test_spend_is_usage_times_price_streamed_or_not(tmp_path) -> None:
    with keyed_stack([quick("a")], {"m": ["a"]}, str(tmp_path), prices={"a": PRICE}) as s:
        key_id, secret = create_key(s)
        client = as_key(s, secret)
        whole = client.chat.completions.create(model="m", messages=LONG)
        chunks = list(client.chat.completions.create(
            model="m", messages=LONG, stream=True, stream_options={"include_usage": True}))
        # The client asks for no usage: the gateway still asked upstream, and bills it.
        list(client.chat.completions.create(model="m", messages=LONG, stream=True))
        streamed = chunks[-1].usage
        rows = requests(s, key_id=key_id)[::-1]  # oldest first
        total = spend(s, key_id=key_id)["total"]
    assert whole.usage.prompt_tokens_details.cached_tokens > 100  # the provider cached half
    assert streamed.completion_tokens_details.reasoning_tokens > 0
    assert [r["stream"] for r in rows] == [False, True, True]
    for row, usage in zip(rows, (whole.usage, streamed, streamed), strict=True):
        assert row["cost"] == pytest.approx(_cost(usage))
        assert row["prompt_tokens"] == usage.prompt_tokens
        assert row["completion_tokens"] == usage.completion_tokens
        assert row["cached_tokens"] == usage.prompt_tokens_details.cached_tokens
        assert row["reasoning_tokens"] == usage.completion_tokens_details.reasoning_tokens
        assert row["deployment"] == "a/a-m" and row["outcome"] == "ok"
        assert row["attempts"] == 1 and row["ttft_s"] is not None and row["key_id"] == key_id
    assert total["requests"] == 3
    assert total["cost_usd"] == pytest.approx(_cost(whole.usage) + 2 * _cost(streamed))
    assert total["cached_tokens"] == sum(r["cached_tokens"] for r in rows)


def test_failed_attempts_are_ledgered_without_a_charge(tmp_path) -> None:
    with keyed_stack([quick("down", error_rate=1.0)], {"m": ["down"]}, str(tmp_path)) as s:
        key_id, secret = create_key(s, budget_usd={"total": 1})
        with pytest.raises(openai.APIStatusError):
            as_key(s, secret).chat.completions.create(model="m", messages=HELLO)
        [row] = requests(s, key_id=key_id)
        with admin(s) as a:
            usage = a.get(f"/admin/keys/{key_id}").json()["usage"]
    assert row["deployment"] is None and row["cost"] == 0 and row["attempts"] >= 1
    assert row["outcome"] == "no_deployment_available"
    assert usage["reserved_usd"] == 0 and usage["spent_usd"]["total"] == 0


def test_ledger_and_keys_survive_a_restart(tmp_path) -> None:
    data = str(tmp_path)
    with keyed_stack([quick("a")], {"m": ["a"]}, data) as s:
        # Two requests' cost and a third's reservation, not a third's cost too.
        key_id, secret = create_key(s, budget_usd={"total": reservation(HELLO, 10) + 1.5 * 28e-6})
        for _ in range(2):
            as_key(s, secret).chat.completions.create(model="m", messages=HELLO, max_tokens=10)
        # No spend query before the restart: these rows are flushed by the shutdown.
    with keyed_stack([quick("a")], {"m": ["a"]}, data) as s:
        total = spend(s, key_id=key_id)["total"]
        with admin(s) as a:
            shown = a.get(f"/admin/keys/{key_id}").json()
        before = s.sim.counters("a").requests
        with pytest.raises(openai.RateLimitError) as err:  # the spend before counts
            as_key(s, secret).chat.completions.create(model="m", messages=HELLO, max_tokens=10)
        assert s.sim.counters("a").requests == before
    assert total["requests"] == 2 and total["cost_usd"] == pytest.approx(2 * 28e-6)
    assert shown["usage"]["spent_usd"]["total"] == pytest.approx(2 * 28e-6)
    assert err.value.body["code"] == "budget_exceeded"


def test_secrets_never_appear_in_logs_metrics_errors_or_the_ledger(tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    # Every log there is: the access log, and the request log with its content.
    with keyed_stack([quick("a")], {"m": ["a"]}, str(tmp_path),
                     extra={"logging": {"requests": True, "content": True}}) as s:
        key_id, first = create_key(s, rpm=2)
        client = as_key(s, first)
        client.chat.completions.create(model="m", messages=HELLO)
        with admin(s) as a:
            second = a.post(f"/admin/keys/{key_id}/rotate").json()["secret"]
            as_key(s, second).chat.completions.create(model="m", messages=HELLO)
            with pytest.raises(openai.RateLimitError) as limited:
                as_key(s, second).chat.completions.create(model="m", messages=HELLO)
            with pytest.raises(openai.AuthenticationError) as refused:
                client.chat.completions.create(model="m", messages=HELLO)
            seen = [a.get("/admin/keys").text, a.get(f"/admin/keys/{key_id}").text,
                    a.get("/admin/requests").text, a.get("/admin/spend?group_by=key").text,
                    a.get("/metrics").text, limited.value.response.text,
                    refused.value.response.text, caplog.text]
            a.post(f"/admin/keys/{key_id}/revoke")
    with open(tmp_path / "keys.sqlite3", "rb") as db:
        seen.append(db.read().decode("latin-1"))
    for text in seen:
        assert MASTER_KEY not in text
        for secret in (first, second):
            assert secret[len("tlk-") + 13:] not in text  # not even the random part


def test_a_client_that_leaves_mid_stream_pays_for_what_was_generated(tmp_path) -> None:
    slow = quick("slow", tokens_per_s=20, output_tokens=200, time_scale=1.0)
    with keyed_stack([slow], {"m": ["slow"]}, str(tmp_path), prices={"slow": PRICE}) as s:
        key_id, secret = create_key(s, budget_usd={"day": 1})
        stream = as_key(s, secret).chat.completions.create(model="m", messages=HELLO,
                                                           stream=True)
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        stream.close()  # gone after the first token, 199 still to come
        s.sim.wait_counters("slow", lambda c: c.disconnected == 1, timeout=30)
        for _ in range(100):  # bounded: the gateway settles as it closes the upstream
            rows = requests(s, key_id=key_id)
            if rows:
                break
        with admin(s) as a:
            usage = a.get(f"/admin/keys/{key_id}").json()["usage"]
    [row] = rows
    assert row["outcome"] == "cancelled" and row["deployment"] == "slow/slow-m"
    assert 1 <= row["completion_tokens"] < 200 and row["cost"] > 0
    assert usage["reserved_usd"] == 0 and usage["spent_usd"]["day"] == pytest.approx(row["cost"])


def test_spend_groups_and_filters_add_up_the_rows(tmp_path) -> None:
    with keyed_stack([quick("a"), quick("b")], {"m": ["a"], "n": ["b"]}, str(tmp_path)) as s:
        _, one = create_key(s)
        second, other = create_key(s)
        for secret, model in ((one, "m"), (one, "n"), (other, "m"), (other, "m")):
            as_key(s, secret).chat.completions.create(model=model, messages=HELLO)
        rows = requests(s)
        grouped = {g: spend(s, group_by=g)["data"] for g in ("key", "model", "deployment", "day")}
        only_b = spend(s, deployment="b/b-n")["total"]
        second_m = spend(s, key_id=second, model="m", period="month")["total"]
        before = spend(s, until=min(r["at"] for r in rows))["total"]
        since_last = spend(s, since=max(r["at"] for r in rows))["total"]
        db = sqlite3.connect(tmp_path / "keys.sqlite3")
        journal = db.execute("PRAGMA journal_mode").fetchone()[0]
        db.close()
    assert len(rows) == 4 and journal == "wal"

    def expected(field: str) -> dict[str, tuple[int, float]]:
        out: dict[str, tuple[int, float]] = {}
        for r in rows:
            n, cost = out.get(r[field], (0, 0.0))
            out[r[field]] = (n + 1, cost + r["cost"])
        return out

    for group, field in (("key", "key_id"), ("model", "model"), ("deployment", "deployment")):
        got = {g[group]: (g["requests"], g["cost_usd"]) for g in grouped[group]}
        assert got.keys() == expected(field).keys()
        for name, (n, cost) in expected(field).items():
            assert got[name][0] == n and got[name][1] == pytest.approx(cost)
    days = Counter(time.strftime("%Y-%m-%d", time.gmtime(r["at"])) for r in rows)
    assert {g["day"]: g["requests"] for g in grouped["day"]} == days
    assert only_b["requests"] == 1 and second_m["requests"] == 2
    assert second_m["cost_usd"] == pytest.approx(sum(
        r["cost"] for r in rows if r["key_id"] == second))
    assert before["requests"] == 0 and since_last["requests"] >= 1
