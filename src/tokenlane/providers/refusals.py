"""Upstream 4xx answers that mean "this provider can't", not "this request is wrong" (pure).

An upstream 4xx normally goes back to the client unchanged: the request would fail the same way
anywhere. Two kinds are about the provider instead, and the next deployment should be tried
before the first token:

- `model_unavailable`: the model is retired or unknown there (any 404 to a chat-completions
  POST, whose path is fixed; Groq's 400 `model_decommissioned`; OpenAI's 403 "does not have
  access to model"). The deployment is kept last until re-checked.
- `unsupported_parameter`: the provider rejects a parameter another provider accepts (OpenAI's
  `unsupported_parameter` / `unsupported_value` codes, Groq's "property 'name' is unsupported",
  "'n' : number must be at most 1", Cerebras's "... is not supported").

Everything else (invalid messages, a prompt over the context window, bad JSON) stays the
client's own fault.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from .headroom import error_object

__all__ = ["Refusal", "classify_refusal"]

Refusal = Literal["model_unavailable", "unsupported_parameter"]

_MODEL_CODES = frozenset({"model_not_found", "model_decommissioned", "model_not_available",
                          "model_deprecated", "model_retired"})
_PARAMETER_CODES = frozenset({"unsupported_parameter", "unsupported_value", "wrong_api_format"})
_MODEL_WORDS = re.compile(
    r"decommissioned|deprecated|retired|no longer (?:supported|available)|"
    r"model\b.*\b(?:does not exist|not found|not available)|access to (?:the )?model|"
    r"no endpoints found", re.IGNORECASE)
_PARAMETER_WORDS = re.compile(
    r"unsupported|not supported|is not allowed|not permitted|unknown (?:parameter|field)|"
    r"unrecognized (?:parameter|field|request argument)|must be at most 1|must be equal to 1",
    re.IGNORECASE)
# The client's own mistakes, even when phrased like the above: these fail anywhere.
_CLIENT_WORDS = re.compile(r"context length|context window|context size|maximum context|"
                           r"too many tokens|"
                           r"prompt is too long|exceeds? the (?:maximum|limit)", re.IGNORECASE)


def classify_refusal(status: int, body: Mapping[str, Any] | None) -> Refusal | None:
    """Whether an upstream 4xx is the provider's refusal (try elsewhere) and which kind; None
    when it is the client's fault and goes back unchanged."""
    if status == 404:
        return "model_unavailable"
    if status not in (400, 403, 422):
        return None
    err = error_object(body)
    code = str(err.get("code") or "").lower()
    message = str(err.get("message") or "")
    if code in _MODEL_CODES or _MODEL_WORDS.search(message):
        return "model_unavailable"
    if status == 403:
        return None
    if _CLIENT_WORDS.search(message):
        return None
    if code in _PARAMETER_CODES or _PARAMETER_WORDS.search(message):
        return "unsupported_parameter"
    return None
