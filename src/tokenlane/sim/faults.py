"""Failure modes a simulated provider can be switched into (`SimProviderSpec.fault`).

A fault is a pure function over the planned reply: it gets the reply the provider would have
given (a `Completion` with its per-token delays, or a `Failure`) and returns the reply to give
instead. Stalls, outages, slow drifts and truncated streams all fit that shape, because the
plan already holds every delay and every token before anything is sent. What only the wire
can do (reset a connection, send a line that is not JSON, end a body early) is a marker in
the reply (`StreamFault`, `Broken`) that the sender acts out.

Adding a mode is one entry in `FAULTS`: the spec validator accepts exactly these names and
`plan.plan_reply` applies the chosen one last, to every request that reaches planning (a
request refused for its API key, or whose body is not JSON, is answered before that).

Outages replace whatever the provider would have answered, request errors included:

    http_503                  503 `server_error`, no Retry-After
    http_529                  529, Anthropic's "overloaded" (`overloaded_error` on its route)
    reset_before_headers      TCP reset before any response byte
    bad_json_200              200 `application/json` with a body that is not JSON, sent when a
                              streamed reply would have started (TTFT) or a whole one ended
    flap                      `flap_period` requests answered as planned, then `flap_period`
                              answered 503 (as `http_503`), and so on

Degradations change only successful replies (`Completion`s); "after N tokens" means after the
first chunk (role, or the tool call's name) and `fault_after_tokens` content chunks:

    reset_after_first_chunk   streamed: TCP reset after N tokens; not: reset after its delay
    stall_before_first_token  `stall_s` of silence after the headers, then as planned
    stall_mid_stream          `stall_s` of silence after N tokens, then as planned
    garbage_sse               streamed: `data: {this is not json` after N tokens, then as
                              planned; not: 200 whose JSON body is cut after N tokens
    error_event               streamed: an OpenAI error event after N tokens, then the end;
                              not: 500 `server_error` (at once)
    truncate                  streamed: the body ends cleanly after N tokens (no finish chunk,
                              no [DONE]); not: 200 whose JSON body is cut after N tokens
    trickle                   1 token per second (times `time_scale`), whatever `tokens_per_s`
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from random import Random
from types import MappingProxyType
from typing import Protocol

from .replies import Broken, Completion, Failure, Reply, StreamFault, StreamFaultAction

__all__ = ["FAULTS", "MID_STREAM_FAILURE", "OVERLOADED", "Fault", "FaultKnobs"]


class FaultKnobs(Protocol):
    """What a fault reads of its provider's spec (a `spec.SimProviderSpec` has them all).

    Named here rather than imported: the spec validates its `fault` against `FAULTS`, so
    this module comes first and depends on nothing of the spec's."""

    @property
    def fault_after_tokens(self) -> int: ...
    @property
    def stall_s(self) -> float: ...
    @property
    def flap_period(self) -> int: ...
    @property
    def time_scale(self) -> float: ...
    @property
    def jitter(self) -> float: ...
    @property
    def tokens_per_s(self) -> float: ...


class Fault(Protocol):
    def __call__(self, reply: Reply, spec: FaultKnobs, rng: Random, seq: int) -> Reply:
        """Return the reply to give instead of `reply` (pure: randomness only from `rng`).

        `seq` numbers the provider's planned requests from 0, restarting whenever its
        `fault` or `flap_period` is set, so a mode can follow a schedule (`flap`).
        """
        ...


OVERLOADED = Failure(503, "The server is overloaded or not ready yet.", "server_error")
ANTHROPIC_OVERLOADED = Failure(529, "Overloaded", "overloaded_error")
# The error a streamed `error_event` carries, and the non-streamed analogue's 500.
MID_STREAM_FAILURE = Failure(500, "simulated upstream failure", "server_error")


def _http_503(reply: Reply, spec: FaultKnobs, rng: Random, seq: int) -> Reply:
    return OVERLOADED


def _http_529(reply: Reply, spec: FaultKnobs, rng: Random, seq: int) -> Reply:
    return ANTHROPIC_OVERLOADED


def _flap(reply: Reply, spec: FaultKnobs, rng: Random, seq: int) -> Reply:
    return OVERLOADED if (seq // spec.flap_period) % 2 else reply


def _reset_before_headers(reply: Reply, spec: FaultKnobs, rng: Random, seq: int) -> Reply:
    return Broken("reset")


def _bad_json_200(reply: Reply, spec: FaultKnobs, rng: Random, seq: int) -> Reply:
    if not isinstance(reply, Completion):
        return Broken("bad_json")
    # When the first body byte would have gone out: at TTFT for a stream, at the end if not.
    return Broken("bad_json", reply.delays[0] if reply.stream else reply.total_delay)


def _stall_before_first_token(reply: Reply, spec: FaultKnobs, rng: Random, seq: int) -> Reply:
    if not isinstance(reply, Completion):
        return reply
    delays = reply.delays
    return replace(reply, delays=(delays[0] + spec.stall_s * spec.time_scale, *delays[1:]))


def _trickle(reply: Reply, spec: FaultKnobs, rng: Random, seq: int) -> Reply:
    if not isinstance(reply, Completion):
        return reply
    first, *steps = reply.delays
    if spec.jitter:  # keep each step's drawn spread: step = scale / tokens_per_s * spread
        slow = tuple(step * spec.tokens_per_s for step in steps)
    else:
        slow = (float(spec.time_scale),) * len(steps)
    return replace(reply, delays=(first, *slow))


def _mid_stream(action: StreamFaultAction) -> Fault:
    """A fault that strikes after `fault_after_tokens` content tokens (`StreamFault`)."""

    def fault(reply: Reply, spec: FaultKnobs, rng: Random, seq: int) -> Reply:
        if not isinstance(reply, Completion):
            return reply
        if not reply.stream:  # nothing is sent before the end, so the end is what breaks
            if action == "reset":
                return Broken("reset", reply.total_delay)
            if action == "error_event":
                return MID_STREAM_FAILURE
        after = min(spec.fault_after_tokens, len(reply.pieces))
        stall = spec.stall_s * spec.time_scale if action == "stall" else 0.0
        return replace(reply, fault=StreamFault(action, after, stall))

    return fault


# Read-only so no code path can register a mode at run time: the set of modes is code.
FAULTS: Mapping[str, Fault] = MappingProxyType(
    {
        "http_503": _http_503,
        "http_529": _http_529,
        "reset_before_headers": _reset_before_headers,
        "reset_after_first_chunk": _mid_stream("reset"),
        "stall_before_first_token": _stall_before_first_token,
        "stall_mid_stream": _mid_stream("stall"),
        "garbage_sse": _mid_stream("garbage"),
        "error_event": _mid_stream("error_event"),
        "truncate": _mid_stream("truncate"),
        "trickle": _trickle,
        "flap": _flap,
        "bad_json_200": _bad_json_200,
    }
)
