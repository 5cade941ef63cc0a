"""The request log (`logging.requests`, the `tokenlane.requests` logger): one structured line
per model request, with or without virtual keys, on every surface; the prompt and the
answer's text, streamed or not, only with `logging.content`."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import anthropic
import httpx
import openai
import pytest

from tokenlane.config import parse_settings
from tokenlane.server import create_app
from tokenlane.sim import Simulator

from .harness import MASTER_KEY, SIM_KEY, Stack, gateway_config, stack
from .keys.support import as_key, create_key, keyed_stack, quick, requests
from .loopback import serve

WORDS = "the-words-of-the-prompt"
PROMPT = [{"role": "user", "content": WORDS}]


@contextmanager
def keyless_stack(*, content: bool, auth: bool = True) -> Iterator[Stack]:
    """A gateway without virtual keys (master keys only, or auth off), its one deployment
    serving chat and legacy completions, the request log on."""
    sim = Simulator([quick("a").model_copy(update={"api_key": SIM_KEY})])
    with ExitStack() as stack_:
        sim_url = stack_.enter_context(serve(sim.app))
        data = gateway_config(sim_url, {"m": ["a"]}, auth=auth,
                              extra={"logging": {"requests": True, "content": content}})
        data["models"]["m"]["deployments"][0]["endpoints"] = ["chat", "completions"]
        settings = parse_settings(data)
        app = create_app(settings, env={"TL_TEST_KEYS": MASTER_KEY, "SIM_KEY": SIM_KEY},
                         rng=random.Random(7))
        assert app.state.keys is None
        yield Stack(sim, sim_url, stack_.enter_context(serve(app)), app, settings)


def _lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    out = []
    for record in caplog.records:
        if record.name == "tokenlane.requests":
            fields = json.loads(record.getMessage())
            assert fields == record.fields  # type: ignore[attr-defined]
            out.append(fields)
    return out


def _streamed_text(stream: Any) -> str:
    return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


@pytest.mark.parametrize("content", [False, True])
def test_without_keys_every_surface_gets_one_line_per_request(caplog, content) -> None:
    caplog.set_level(logging.INFO)
    with keyless_stack(content=content) as s:
        client = s.openai()
        whole = client.chat.completions.create(model="m", messages=PROMPT)
        streamed = _streamed_text(client.chat.completions.create(
            model="m", messages=PROMPT, stream=True))
        legacy = "".join(c.choices[0].text for c in client.completions.create(
            model="m", prompt=WORDS, stream=True, max_tokens=10) if c.choices)
        claude = anthropic.Anthropic(base_url=s.url, api_key=MASTER_KEY, max_retries=0)
        with claude.messages.stream(model="m", max_tokens=10, messages=PROMPT) as events:
            messages_text = "".join(events.text_stream)
    lines = _lines(caplog)
    assert [(line["surface"], line["stream"]) for line in lines] == [
        ("/v1/chat/completions", False), ("/v1/chat/completions", True),
        ("/v1/completions", True), ("/v1/messages", True)]
    texts = [whole.choices[0].message.content, streamed, legacy, messages_text]
    assert all(texts)
    for line, text in zip(lines, texts, strict=True):
        assert line["client"] == "master" and line["key_id"] is None
        assert line["deployment"] == "a/a-m" and line["outcome"] == "ok"
        assert line["decision"].startswith("policy=") and line["request_id"]
        assert line["cost"] > 0 and line["completion_tokens"] > 0 and line["ttft_s"] >= 0
        if content:
            assert line["answer"] == [text]
            assert WORDS in json.dumps(line["prompt"])
        else:
            assert "answer" not in line and "prompt" not in line
    if not content:
        assert WORDS not in caplog.text
        assert not any(t in r.getMessage() for r in caplog.records
                       if r.name == "tokenlane.requests" for t in texts)
    assert MASTER_KEY not in caplog.text and SIM_KEY not in caplog.text


def test_a_stream_cut_by_the_client_logs_the_text_it_was_sent(caplog) -> None:
    caplog.set_level(logging.INFO)
    slow = quick("a", tokens_per_s=20, output_tokens=200, time_scale=1.0)
    with stack([slow], {"m": ["a"]},
               extra={"logging": {"requests": True, "content": True}}) as s:
        sent = []
        with s.openai().chat.completions.create(model="m", messages=PROMPT,
                                                stream=True) as stream:
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    sent.append(chunk.choices[0].delta.content)
                if len(sent) == 3:
                    break
        s.sim.wait_counters("a", lambda c: c.disconnected == 1, timeout=30)
        for _ in range(200):  # bounded: the gateway writes the line as it closes upstream
            lines = _lines(caplog)
            if lines:
                break
            httpx.get(f"{s.url}/healthz")  # a round trip: the gateway's loop runs meanwhile
    [line] = lines
    assert line["outcome"] == "cancelled" and line["stream"] is True
    # What the client read is a prefix of what the gateway sent it (some more may have been
    # on its way when it left).
    assert line["answer"][0].startswith("".join(sent))
    assert 3 <= line["completion_tokens"] < 200


def test_auth_off_requests_are_anonymous(caplog) -> None:
    caplog.set_level(logging.INFO)
    with keyless_stack(content=False, auth=False) as s:
        openai.OpenAI(base_url=f"{s.url}/v1", api_key="anything", max_retries=0
                      ).chat.completions.create(model="m", messages=PROMPT)
    [line] = _lines(caplog)
    assert line["client"] == "anonymous" and line["outcome"] == "ok"


def test_with_keys_a_line_names_the_key_never_its_secret(tmp_path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="tokenlane.requests")
    with keyed_stack([quick("a")], {"m": ["a"]}, str(tmp_path),
                     extra={"logging": {"requests": True}}) as s:
        key_id, secret = create_key(s, name="search", metadata={"team": "search"})
        as_key(s, secret).chat.completions.create(model="m", messages=PROMPT)
        list(s.openai().chat.completions.create(model="m", messages=PROMPT, stream=True))
        # Refused at admission: nothing spent (no ledger row), still a line each.
        broke_id, broke = create_key(s, models=["m"], budget_usd={"total": 0})
        with pytest.raises(openai.RateLimitError):
            as_key(s, broke).chat.completions.create(model="m", messages=PROMPT)
        with pytest.raises(openai.NotFoundError):
            as_key(s, broke).chat.completions.create(model="other", messages=PROMPT)
        ledger = requests(s, key_id=broke_id)
    keyed, by_master, over_budget, not_allowed = _lines(caplog)
    assert ledger == []
    assert (over_budget["outcome"], not_allowed["outcome"]) == (
        "budget_exceeded", "model_not_found")
    for line in (over_budget, not_allowed):
        assert line["key_id"] == broke_id and line["client"]["key_id"] == broke_id
        assert line["attempts"] == 0 and line["cost"] == 0 and line["deployment"] is None
    assert keyed["client"] == {"key_id": key_id, "name": "search", "metadata": {"team": "search"}}
    assert keyed["key_id"] == key_id
    assert by_master["client"] == "master" and by_master["stream"] is True
    for line in (keyed, by_master):
        assert line["decision"].startswith("policy=") and line["deployment"] == "a/a-m"
        assert line["cost"] > 0 and line["request_id"] and line["outcome"] == "ok"
    assert WORDS not in caplog.text and secret not in caplog.text


def test_request_log_off_writes_nothing(caplog) -> None:
    caplog.set_level(logging.INFO)
    with stack([quick("a")], {"m": ["a"]}, extra={"logging": {"content": True}}) as s:
        stream = s.openai().chat.completions.create(model="m", messages=PROMPT, stream=True)
        assert _streamed_text(stream)
    assert not _lines(caplog)
