"""Exceptions summarised in one log line: what, and where it was raised.

The gateway logs no multi-line tracebacks (an operator's log pipeline splits them into noise,
and a frame's source line can hold more than it should). The innermost frame's file, line
and function are enough to find the bug.
"""

from __future__ import annotations

import traceback
from pathlib import PurePath

__all__ = ["one_line"]

_MAX_MESSAGE = 200


def one_line(exc: BaseException) -> str:
    """`KeyError('x') at tokenlane/routing/engine.py:290 in _try`, cut to a sane length."""
    text = repr(exc)
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + "..."
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return text
    last = frames[-1]
    where = "/".join(PurePath(last.filename).parts[-3:])
    return f"{text} at {where}:{last.lineno} in {last.name}"
