"""What every config section shares: the strict, frozen base model and the URL check.

Its own module so config_server, config_providers and config_routing can all build on it
without importing each other (or `config`, which imports them all).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _absolute_url(url: str) -> str:
    # httpx would take "api.example.com/v1" as a relative URL and fail at the first request.
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{url!r} is not an http:// or https:// URL with a host")
    return url
