"""One exception tree for everything a client can be told, mapped to OpenAI's error shape.

    TokenlaneError                 500 server_error
    ├── InvalidRequest             400 invalid_request_error
    ├── AuthenticationFailed       401 invalid_request_error / invalid_api_key
    ├── ModelNotFound              404 invalid_request_error / model_not_found
    ├── MethodNotAllowed           405 invalid_request_error / method_not_allowed
    ├── BodyTooLarge               413 invalid_request_error / request_too_large
    ├── UnsupportedMediaType       415 invalid_request_error / unsupported_media_type
    ├── UpstreamRejected           the upstream's own 4xx, passed back unchanged
    ├── StreamBroken               502, sent as a final SSE error event mid-stream
    ├── GatewayShuttingDown        503 server_error / gateway_shutting_down: the drain time
    │                              ran out (mid-stream: the final SSE error event)
    └── NoDeploymentAvailable      503 service_unavailable, or 429 when every deployment
                                   rate-limited (carries every attempt)

The server turns any of these into `{"error": {"message", "type", "param", "code"}}` with the
status; the library raises them as they are. Messages never contain upstream keys or tracebacks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Attempt",
    "AuthenticationFailed",
    "BodyTooLarge",
    "GatewayShuttingDown",
    "InvalidRequest",
    "MethodNotAllowed",
    "ModelNotFound",
    "NoDeploymentAvailable",
    "TokenlaneError",
    "UnsupportedMediaType",
    "UpstreamRejected",
    "error_body",
]


def error_body(
    message: str, type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """OpenAI's error object: `{"error": {"message", "type", "param", "code"}}`."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


class TokenlaneError(Exception):
    """Base of every error a client can be told about: an HTTP status and OpenAI's fields."""

    status: int = 500
    type: str = "server_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def to_body(self) -> dict[str, Any]:
        """The JSON body the gateway answers with."""
        return error_body(self.message, self.type, self.param, self.code)

    def headers(self) -> dict[str, str]:
        """Extra response headers that belong with this error."""
        return {}


class InvalidRequest(TokenlaneError):
    """The request is malformed: bad JSON, a missing field, an unknown routing option."""

    status = 400
    type = "invalid_request_error"


class AuthenticationFailed(TokenlaneError):
    """No gateway key, or a wrong one."""

    status = 401
    type = "invalid_request_error"
    code = "invalid_api_key"


class ModelNotFound(TokenlaneError):
    """The public model name is not configured."""

    status = 404
    type = "invalid_request_error"
    code = "model_not_found"


class MethodNotAllowed(TokenlaneError):
    """The path exists, the HTTP method does not."""

    status = 405
    type = "invalid_request_error"
    code = "method_not_allowed"


class BodyTooLarge(TokenlaneError):
    """The request body is over `server.max_body_bytes`."""

    status = 413
    type = "invalid_request_error"
    code = "request_too_large"


class UnsupportedMediaType(TokenlaneError):
    """The request body is not declared `application/json`."""

    status = 415
    type = "invalid_request_error"
    code = "unsupported_media_type"


class GatewayShuttingDown(TokenlaneError):
    """The gateway is stopping and `server.drain_timeout_s` ran out before this request ended."""

    status = 503
    type = "server_error"
    code = "gateway_shutting_down"


class UpstreamRejected(TokenlaneError):
    """An upstream answered 4xx for a reason retrying elsewhere will not fix (bad request, ...).

    The client gets the upstream's status and error object, so it sees what it would have seen
    talking to the provider directly; `attempts` lists every try up to this one (earlier
    deployments may have failed first), in the body as `error.attempts`.
    """

    def __init__(self, status: int, body: dict[str, Any], deployment: str,
                 attempts: tuple[Attempt, ...] = ()):
        found = body.get("error")
        err: dict[str, Any] = found if isinstance(found, dict) else {}
        # Only the spec's types are copied (strings; numbers for codes, as some providers
        # send them): anything else could be nested too deep to write again, or carry what
        # redaction never saw (it reads string messages only).
        message = _text(err.get("message")) or f"upstream returned HTTP {status}"
        super().__init__(message, param=_text(err.get("param"), _MAX_FIELD),
                         code=_text(err.get("code"), _MAX_FIELD, numbers=True))
        self.status = status
        self.type = _text(err.get("type"), _MAX_FIELD) or "invalid_request_error"
        self.deployment = deployment
        self.attempts = attempts

    def to_body(self) -> dict[str, Any]:
        """The upstream's error object plus `attempts`."""
        return _with_attempts(super().to_body(), self.attempts)

    def headers(self) -> dict[str, str]:
        """Names the deployment that refused."""
        # Which deployment said no: a client debugging a 400 needs to know whose rules it broke.
        return {"x-tokenlane-deployment": self.deployment}


# An upstream's param, code or type longer than this is cut (they are names, not prose).
_MAX_FIELD = 256


def _text(value: Any, limit: int | None = None, *, numbers: bool = False) -> str | None:
    """`value` if it is a string (cut to `limit`), an int or float as text if `numbers`, else
    None."""
    if isinstance(value, str):
        return value[:limit]
    if numbers and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One try along the plan, as reported to the client when all of them failed."""

    deployment: str
    outcome: str  # ok, 4xx, 429, 5xx, timeout, connect, stall, bad_response, ...
    status: int | None
    reason: str

    def describe(self) -> str:
        """One line for messages and logs: `deployment: outcome HTTP status (reason)`."""
        status = f" HTTP {self.status}" if self.status else ""
        return f"{self.deployment}: {self.outcome}{status} ({self.reason})"


class NoDeploymentAvailable(TokenlaneError):
    """No deployment could serve: every attempt failed, or none was allowed to be tried.

    `attempts` lists each try (and each deployment skipped for an open circuit); a 429 with
    `retry_after` when every deployment is rate limiting."""

    status = 503
    type = "service_unavailable"
    code = "no_deployment_available"

    def __init__(
        self,
        message: str,
        attempts: tuple[Attempt, ...] = (),
        retry_after: float | None = None,
        *,
        rate_limited: bool = False,
        auth_failed: bool = False,
    ):
        if attempts:
            message = f"{message}: " + "; ".join(a.describe() for a in attempts)
        super().__init__(message)
        self.attempts = attempts
        self.retry_after = retry_after
        if rate_limited:
            # As OpenAI answers a rate-limited request.
            self.status, self.type, self.code = 429, "requests", "rate_limit_exceeded"
        elif auth_failed:
            # The providers refused the gateway's own credentials: a bad gateway.
            self.status, self.type, self.code = 502, "server_error", "upstream_auth_failed"

    def to_body(self) -> dict[str, Any]:
        """OpenAI's error object plus `attempts`."""
        return _with_attempts(super().to_body(), self.attempts)

    def headers(self) -> dict[str, str]:
        """`Retry-After` when we know when to come back."""
        if self.retry_after is None:
            return {}
        return {"retry-after": str(max(1, round(self.retry_after)))}


def _with_attempts(body: dict[str, Any], attempts: tuple[Attempt, ...]) -> dict[str, Any]:
    # Structured too, so clients need not parse the message (an extension of OpenAI's shape).
    body["error"]["attempts"] = [
        {"deployment": a.deployment, "outcome": a.outcome, "status": a.status, "reason": a.reason}
        for a in attempts
    ]
    return body
