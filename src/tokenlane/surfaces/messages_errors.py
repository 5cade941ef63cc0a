"""Our errors in Anthropic's shape: `{"type": "error", "error": {"type", "message"}}`.

Statuses are Anthropic's own: it answers an overloaded or unavailable service with 529
`overloaded_error` (its SDKs retry it), so our 502/503 become that; everything else keeps its
status and gets the error type Anthropic uses for it. `attempts` (every try, when the engine
gave up) rides along inside `error` as in our OpenAI-shaped errors.
"""

from __future__ import annotations

from typing import Any

from ..errors import TokenlaneError

__all__ = ["anthropic_error", "anthropic_error_body"]

_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
_OVERLOADED = frozenset({502, 503, 529})


def anthropic_error(exc: TokenlaneError) -> tuple[int, dict[str, Any]]:
    """(status, body) for `exc` as Anthropic's API would answer."""
    status = 529 if exc.status in _OVERLOADED else exc.status
    body = anthropic_error_body(status, exc.message)
    attempts = exc.to_body()["error"].get("attempts")
    if attempts is not None:
        body["error"]["attempts"] = attempts
    return status, body


def anthropic_error_body(status: int, message: str) -> dict[str, Any]:
    kind = _TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    return {"type": "error", "error": {"type": kind, "message": message}}
