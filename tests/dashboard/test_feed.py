"""/dashboard over HTTP: who may see it, and what its feed says before and after traffic sent
with the openai SDK through the real gateway to simulated providers."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tokenlane.server.dashboard_session import COOKIE
from tokenlane.sim import SimProviderSpec

from ..contract import validate_error
from ..harness import MASTER_KEY, Stack, stack

FAST = SimProviderSpec(name="fast", ttft_s=0.01, tokens_per_s=2000, output_tokens=12,
                       time_scale=0)
SLOW = SimProviderSpec(name="slow", ttft_s=0.01, tokens_per_s=500, output_tokens=12,
                       time_scale=0)
BROKEN = SimProviderSpec(name="broken", error_rate=1.0, time_scale=0)
BEARER = {"authorization": f"Bearer {MASTER_KEY}"}


@pytest.fixture
def gw() -> Iterator[Stack]:
    with stack([FAST, SLOW, BROKEN], {"llama": ["fast", "slow"], "flaky": ["broken", "fast"]},
               model_extra={"failover": {"max_attempts": 2}}) as s:
        yield s


def feed(s: Stack, **kwargs: Any) -> dict[str, Any]:
    answer = httpx.get(f"{s.url}/dashboard/data", **({"headers": BEARER} | kwargs))
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def sign_in(s: Stack, key: str = MASTER_KEY) -> httpx.Response:
    return httpx.post(f"{s.url}/dashboard/login", data={"key": key})


def test_signed_out_sees_the_sign_in_form_and_no_data(gw: Stack) -> None:
    page = httpx.get(f"{gw.url}/dashboard")
    assert page.status_code == 200 and 'action="/dashboard/login"' in page.text
    assert "llama" not in page.text and "{{message}}" not in page.text
    for headers in ({}, {"authorization": "Bearer wrong"}):
        answer = httpx.get(f"{gw.url}/dashboard/data", headers=headers)
        assert answer.status_code == 401
        validate_error(answer.json())
    # The page itself, signed in, is only the shell: the numbers come from the feed.
    assert 'id="models"' in httpx.get(f"{gw.url}/dashboard", headers=BEARER).text


def test_sign_in_sets_a_signed_cookie_without_the_key(gw: Stack,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        answer = sign_in(gw)
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard"
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/dashboard", "Max-Age=43200"):
        assert attribute.lower() in cookie.lower(), attribute
    value = answer.cookies[COOKIE]
    assert MASTER_KEY not in cookie and MASTER_KEY not in caplog.text
    assert httpx.get(f"{gw.url}/dashboard/data", cookies={COOKIE: value}).status_code == 200
    page = httpx.get(f"{gw.url}/dashboard", cookies={COOKIE: value})
    assert 'id="models"' in page.text
    expires, _, mac = value.partition(".")
    for forged in (f"{int(expires) + 3600}.{mac}", f"{expires}.{'0' * len(mac)}", "", "x.y"):
        assert httpx.get(f"{gw.url}/dashboard/data",
                         cookies={COOKIE: forged}).status_code == 401, forged
    out = httpx.post(f"{gw.url}/dashboard/logout", cookies={COOKIE: value})
    assert out.status_code == 303 and 'max-age=0' in out.headers["set-cookie"].lower()


def test_wrong_key_and_wrong_shape_are_refused(gw: Stack) -> None:
    wrong = sign_in(gw, "tl-not-the-key")
    assert wrong.status_code == 401 and "not a master key" in wrong.text
    assert "set-cookie" not in wrong.headers
    json_body = httpx.post(f"{gw.url}/dashboard/login", json={"key": MASTER_KEY})
    assert json_body.status_code == 415
    validate_error(json_body.json())
    huge = httpx.post(f"{gw.url}/dashboard/login", data={"key": "x" * 10_000})
    assert huge.status_code == 413
    validate_error(huge.json())


def test_page_and_assets_come_from_the_package(gw: Stack) -> None:
    page = httpx.get(f"{gw.url}/dashboard", headers=BEARER)
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert "http" not in page.text.replace('lang="en"', "")  # nothing from elsewhere
    for name, kind in [("uPlot.iife.min.js", "javascript"), ("uPlot.min.css", "css"),
                       ("dashboard.js", "javascript"), ("dashboard.css", "css")]:
        asset = httpx.get(f"{gw.url}/dashboard/static/{name}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"], name
        assert f"/dashboard/static/{name}" in page.text
    assert b"uPlot" in httpx.get(f"{gw.url}/dashboard/static/uPlot.iife.min.js").content
    for missing in ("nope.js", "dashboard.html", "..%2Fapp.py", "VENDORED.md"):
        answer = httpx.get(f"{gw.url}/dashboard/static/{missing}")
        assert answer.status_code == 404, missing
        validate_error(answer.json())


def test_empty_gateway(gw: Stack) -> None:
    data = feed(gw)
    stats = httpx.get(f"{gw.url}/v1/router/stats", headers=BEARER).json()
    assert data["stats"]["models"] == stats["models"]
    assert data["decisions"] == []
    ids = {d["deployment"] for m in stats["models"].values() for d in m["deployments"]}
    assert set(data["traffic"]) == ids
    for lane in data["traffic"].values():
        assert lane["series"]["t"] == [] and lane["totals"]["attempts"] == 0
        assert lane["totals"]["usd_per_request"] is None
    assert data["share"] == {"llama": {"fast/fast-llama": None, "slow/slow-llama": None},
                             "flaky": {"broken/broken-flaky": None, "fast/fast-flaky": None}}


def test_traffic_fills_the_feed(gw: Stack) -> None:
    client = gw.openai()
    chosen = []
    for i in range(6):
        if i % 2:
            raw = client.chat.completions.with_raw_response.create(
                model="llama", messages=[{"role": "user", "content": f"hello {i}"}])
            chosen.append(raw.headers["x-tokenlane-deployment"])
        else:
            with client.chat.completions.with_streaming_response.create(
                    model="llama", messages=[{"role": "user", "content": f"hello {i}"}],
                    stream=True) as raw:
                chosen.append(raw.headers["x-tokenlane-deployment"])
                list(raw.iter_lines())
    data = feed(gw)

    decisions = data["decisions"]
    assert [d["chosen"] for d in decisions] == chosen[::-1]  # newest first
    assert all(d["model"] == "llama" and d["status"] == 200 and d["why"] for d in decisions)
    assert all(d["candidates"][0]["deployment"] == d["chosen"] for d in decisions)
    streamed = decisions[::-1][::2]
    assert all(d["ttft_s"] is not None and d["ttft_s"] <= d["duration_s"] for d in streamed)

    lanes = {d: data["traffic"][d] for d in ("fast/fast-llama", "slow/slow-llama")}
    attempts = {d: lane["totals"]["attempts"] for d, lane in lanes.items()}
    assert attempts == {d: chosen.count(d) for d in lanes}
    share = data["share"]["llama"]
    for d, n in attempts.items():
        assert share[d] == pytest.approx(n / 6)
        totals = lanes[d]["totals"]
        if n:
            assert totals["error_rate"] == 0 and totals["output_tokens"] == 12 * n
            assert totals["usd_per_request"] == pytest.approx(totals["cost_usd"] / n)
            tokens = totals["input_tokens"] + totals["output_tokens"]
            assert totals["usd_per_m_tokens"] == pytest.approx(totals["cost_usd"] / tokens * 1e6)
            series = lanes[d]["series"]
            assert sum(series["attempts"]) == n and series["decode_tps_p50"][-1] > 0
            assert series["ttft_p50_s"][-1] <= series["ttft_p90_s"][-1]
    # The live estimates are /v1/router/stats' own.
    stats = httpx.get(f"{gw.url}/v1/router/stats", headers=BEARER).json()
    for mine, theirs in zip(data["stats"]["models"]["llama"]["deployments"],
                            stats["models"]["llama"]["deployments"], strict=True):
        for key in ("decode_tps_p50", "ttft_p50_s", "ttft_p90_s", "samples", "circuit"):
            assert mine[key] == theirs[key]


def test_failures_show_as_error_rates(gw: Stack) -> None:
    client = gw.openai()
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(
            model="flaky", messages=[{"role": "user", "content": "hi"}],
            extra_body={"provider": {"order": ["broken", "fast"]}})
        assert raw.headers["x-tokenlane-deployment"] == "fast/fast-flaky"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model",
                                       messages=[{"role": "user", "content": "hi"}])
    data = feed(gw)
    broken = data["traffic"]["broken/broken-flaky"]["totals"]
    assert broken["attempts"] >= 1 and broken["error_rate"] == 1.0
    assert broken["usd_per_request"] is None
    assert data["traffic"]["fast/fast-flaky"]["totals"]["error_rate"] == 0.0
    assert len(data["decisions"]) == 3  # the 404 was answered by no deployment
