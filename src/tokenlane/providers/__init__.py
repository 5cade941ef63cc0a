"""Upstream API dialects behind one small interface (see base.py), looked up by name."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from ..types import Provider
from .anthropic import AnthropicDialect
from .base import Dialect
from .openai import OpenAIDialect

__all__ = ["DIALECTS", "build_dialect"]

DIALECTS: dict[str, Callable[[Provider, httpx.AsyncBaseTransport | None], Dialect]] = {
    "openai": OpenAIDialect,
    "anthropic": AnthropicDialect,
}


def build_dialect(
    provider: Provider, transport: httpx.AsyncBaseTransport | None = None
) -> Dialect:
    """The provider's dialect over `transport` (default: a new pool, see transport.py)."""
    return DIALECTS[provider.dialect](provider, transport)
