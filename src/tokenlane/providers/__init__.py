"""Upstream API dialects behind one small interface (see base.py), looked up by name."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from ..types import Provider
from .base import Dialect
from .openai import OpenAIDialect

__all__ = ["DIALECTS", "build_dialect"]

DIALECTS: dict[str, Callable[[Provider, httpx.AsyncClient | None], Dialect]] = {
    "openai": OpenAIDialect,
}


def build_dialect(provider: Provider, client: httpx.AsyncClient | None = None) -> Dialect:
    return DIALECTS[provider.dialect](provider, client)
