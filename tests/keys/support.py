"""A gateway with virtual keys on (SQLite in a test's own directory) and an admin client."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import httpx
import openai

from tokenlane.keys.reservation import prompt_bound
from tokenlane.sim import SimProviderSpec

from ..harness import MASTER_KEY, Stack, stack


def quick(name: str, **fields: Any) -> SimProviderSpec:
    """A provider answering at once (no simulated delays): 10 tokens, usage details on;
    `fields` override."""
    spec = {"ttft_s": 0, "tokens_per_s": 1000, "output_tokens": 10, "time_scale": 0,
            "usage_details": True, **fields}
    return SimProviderSpec(name=name, **spec)


@contextmanager
def keyed_stack(specs: Sequence[SimProviderSpec], models: Mapping[str, Sequence[str]],
                data_dir: str, *, keys: Mapping[str, Any] | None = None, **config: Any
                ) -> Iterator[Stack]:
    extra = dict(config.pop("extra", {}))
    extra["keys"] = {"enabled": True, "data_dir": data_dir, **(keys or {})}
    with stack(specs, models, extra=extra, **config) as s:
        yield s


def admin(s: Stack, key: str = MASTER_KEY) -> httpx.Client:
    return httpx.Client(base_url=s.url, headers={"authorization": f"Bearer {key}"}, timeout=30)


def create_key(s: Stack, **spec: Any) -> tuple[str, str]:
    """(key id, secret) of a new key."""
    with admin(s) as client:
        response = client.post("/admin/keys", json=spec)
    assert response.status_code == 201, response.text
    body = response.json()
    return body["id"], body["secret"]


def spend(s: Stack, **params: Any) -> dict[str, Any]:
    with admin(s) as client:
        response = client.get("/admin/spend", params=params)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def as_key(s: Stack, secret: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{s.url}/v1", api_key=secret, max_retries=0)


def as_key_async(s: Stack, secret: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{s.url}/v1", api_key=secret, max_retries=0)


HELLO = [{"role": "user", "content": "Say something short."}]


def reservation(messages: Sequence[Mapping[str, Any]], output_tokens: int,
                price: tuple[float, float] = (1.0, 2.0)) -> float:
    """USD a budget reserves for a chat request of `messages` that may produce
    `output_tokens`, at `price` ($ per million input, output; the harness's first)."""
    prompt = prompt_bound({"messages": list(messages)})
    return (prompt * price[0] + output_tokens * price[1]) / 1e6


def requests(s: Stack, **params: Any) -> list[dict[str, Any]]:
    """The latest ledger rows, newest first."""
    with admin(s) as client:
        response = client.get("/admin/requests", params=params)
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]
