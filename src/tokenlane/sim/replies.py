"""What a simulated provider decided to answer: plain immutable data, no logic, no imports.

`plan` produces these, `faults` rewrites them, `wire` encodes them and `chat` sends them.
They live apart from `plan` so `faults` (which `spec` needs for its list of names) can build
replies without an import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["Broken", "Completion", "Failure", "Reply", "StreamFault", "ToolCall"]


@dataclass(frozen=True, slots=True)
class Failure:
    """An error reply in OpenAI's shape: `{"error": {message, type, param, code}}`."""

    status: int
    message: str
    type: str
    param: str | None = None
    code: str | None = None
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class ToolCall:
    """The single function call a forced `tool_choice` produces (its id is minted on send)."""

    name: str
    arguments: str  # the JSON text actually sent; cut short when the token limit hits


StreamFaultAction = Literal["stall", "garbage", "error_event", "truncate", "reset"]


@dataclass(frozen=True, slots=True)
class StreamFault:
    """What goes wrong in a reply once its first chunk and `after` content tokens are out.

    The sender acts it out; everything before it is sent as planned:

        stall        `stall` seconds of silence, then the rest as planned
        garbage      one SSE event whose data is not JSON, then the rest as planned
        error_event  one `data: {"error": ...}` event, then the body ends (no finish, no [DONE])
        truncate     the body ends cleanly right there (no finish chunk, no [DONE])
        reset        the TCP connection is aborted (RST) right there

    A non-streamed reply carries only `stall` (a longer wait), `garbage` or `truncate` (its
    JSON body cut after `after` tokens); the other non-stream analogues are other replies.
    """

    action: StreamFaultAction
    after: int  # content tokens (text words or argument fragments) sent before it strikes
    stall: float = 0.0  # seconds, already multiplied by time_scale (action "stall" only)


@dataclass(frozen=True, slots=True)
class Completion:
    """A successful reply, token by token.

    Token 0 is the first content word, or for a tool call the chunk that names the function;
    `pieces` holds the content words, or the argument fragments that follow the name.
    `delays[i]` is the wait before token i and `delays[-1]` the wait before the closing
    chunk, so `sum(delays)` is the whole generation time (plus a `fault`'s stall, if any).
    """

    model: str
    stream: bool
    include_usage: bool
    pieces: tuple[str, ...]
    tool_call: ToolCall | None
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    delays: tuple[float, ...]
    fault: StreamFault | None = None
    usage_details: bool = False  # also report `*_tokens_details` in usage
    cache_write_tokens: int = 0  # reported as written to the prompt cache (part of the prompt)
    n: int = 1  # choices, each the same answer
    logprobs: bool = False  # report a logprob per token
    # Cerebras's time_info (queue, prompt, completion, total seconds), when reported.
    time_info: tuple[float, float, float, float] | None = None
    headers: tuple[tuple[str, str], ...] = ()  # extra response headers (x-ratelimit-*)

    @property
    def total_delay(self) -> float:
        stall = self.fault.stall if self.fault is not None else 0.0
        return sum(self.delays) + stall


@dataclass(frozen=True, slots=True)
class Broken:
    """A reply no well-formed HTTP response describes; the sender acts it out after `delay`.

    reset     the TCP connection is aborted (RST) before any response byte
    bad_json  HTTP 200, `application/json`, a body that is not JSON
    """

    kind: Literal["reset", "bad_json"]
    delay: float = 0.0


Reply = Completion | Failure | Broken
