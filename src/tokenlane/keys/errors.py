"""What a key's limits answer, in OpenAI's shape (429s with its codes and headers)."""

from __future__ import annotations

from ..errors import TokenlaneError

__all__ = ["BudgetExceeded", "PermissionDenied", "RateLimitExceeded"]


class _Limited(TokenlaneError):
    status = 429

    def __init__(self, message: str, headers: dict[str, str], *, code: str) -> None:
        super().__init__(message, code=code)
        self._headers = headers

    def headers(self) -> dict[str, str]:
        """`x-ratelimit-*` like OpenAI's, and when to come back."""
        return self._headers


class BudgetExceeded(_Limited):
    """The key's USD budget for a period cannot cover this request."""

    type = "insufficient_quota"

    def __init__(self, message: str, headers: dict[str, str]) -> None:
        # Retrying before the period ends cannot help: the SDKs honour x-should-retry.
        super().__init__(message, {**headers, "x-should-retry": "false"}, code="budget_exceeded")


class RateLimitExceeded(_Limited):
    """The key's requests or tokens per minute are used up for now."""

    def __init__(self, message: str, headers: dict[str, str], *, kind: str) -> None:
        super().__init__(message, headers, code="rate_limit_exceeded")
        self.type = kind  # "requests" or "tokens", as OpenAI says which limit it was


class PermissionDenied(TokenlaneError):
    """A valid key asking for what it may not do (a virtual key on the admin API)."""

    status = 403
    type = "invalid_request_error"
    code = "permission_denied"
