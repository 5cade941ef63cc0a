"""Keep upstream secrets out of what upstreams say back.

Providers echo keys in their error messages ("Incorrect API key provided: sk-proj-****abcd"),
and those messages go on to clients (an upstream 4xx passes through) and into logs. Whatever
looks like a key is replaced before the message leaves the provider layer.
"""

from __future__ import annotations

import re

__all__ = ["REDACTED", "redact"]

REDACTED = "[redacted]"

_SECRETISH = re.compile(
    r"""(?ix)
      bearer\s+[^\s"',;]+                              # an Authorization header's value
    | [^\s"',;:]*\*{3,}[^\s"',;.]*                     # a masked key: sk-proj-****abcd
    | \b(?:sk|csk|gsk|fw|rk|pk|key)[-_][a-z0-9._-]{8,}  # a well-known key prefix
    """
)


def redact(text: str, secret: str | None = None) -> str:
    """`text` with `secret` (the provider's own key) and anything key-like replaced."""
    if secret:
        text = text.replace(secret, REDACTED)
    return _SECRETISH.sub(REDACTED, text)
