"""The gateway with `state: {backend: redis}`: reachability on /metrics, and a Redis that is
not there fails no request."""

from __future__ import annotations

import httpx
import pytest

from tokenlane.sim import SimProviderSpec

from ..harness import MASTER_KEY, stack
from ..redis_server import RedisServer

SPECS = [SimProviderSpec(name="a", ttft_s=0.0, tokens_per_s=5000, output_tokens=3)]


def backend_metrics(url: str) -> dict[str, float]:
    text = httpx.get(f"{url}/metrics", headers={"authorization": f"Bearer {MASTER_KEY}"}).text
    return {line.split("{")[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
            if line.startswith("tokenlane_state_backend_")}


@pytest.mark.parametrize("alive", [True, False])
def test_requests_are_served_whether_redis_answers_or_not(
        redis_server: RedisServer, alive: bool) -> None:
    if not alive:
        redis_server.kill()
    state = {"backend": "redis", "url": redis_server.url}
    with stack(SPECS, {"m": ["a"]}, extra={"state": state}) as s:
        answer = s.openai().chat.completions.create(
            model="m", messages=[{"role": "user", "content": "hi"}])
        assert answer.choices[0].message.content
        shown = backend_metrics(s.url)
    assert shown["tokenlane_state_backend_up"] == (1.0 if alive else 0.0)
    assert (shown["tokenlane_state_backend_errors_total"] > 0) is not alive


def test_local_backend_shows_no_redis_metrics() -> None:
    with stack(SPECS, {"m": ["a"]}) as s:
        assert s.app.state.redis is None
        assert backend_metrics(s.url) == {}
