"""What one attempt measured."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["OUTCOMES", "Observation"]

# Outcome classes. "cancelled" (the client left, or a hedge lost) says nothing about the
# deployment's health and is kept out of error rates.
# "auth": the provider refused the gateway's own credentials (401/403). "deadline": the
# request's own overall deadline ran out mid-stream (the client's budget, not a failure).
OUTCOMES = ("ok", "4xx", "429", "5xx", "timeout", "connect", "stall", "bad_response", "auth",
            "deadline", "cancelled")


@dataclass(frozen=True, slots=True)
class Observation:
    """What one attempt on one deployment measured, streaming or not: the stats' only input.

    `outcome` is one of `OUTCOMES`; `ttft_s` and `decode_tps` are None when the attempt did not
    get that far; `cost` is in USD from the deployment's configured prices and the tokens the
    upstream reported (counted when it reported none)."""

    deployment: str
    at: float  # clock time the attempt ended
    outcome: str
    prompt_tokens: int = 0
    output_tokens: int = 0
    ttft_s: float | None = None  # request sent → first generated token
    decode_tps: float | None = None  # output tokens after the first / (last − first token time)
    total_s: float = 0.0
    cost: float = 0.0
    status: int | None = None
    model: str = ""  # the public model name the attempt served
    # Chunks that carried output. Providers pack one or several tokens per chunk; tokens per
    # chunk turns the chunk rate of a stream still in flight into tokens/s (see StatsStore).
    chunks: int = 0
    # The provider's own account of its queueing (Cerebras's time_info.queue_time, seconds):
    # a signal of its own, apart from the TTFT the gateway measured.
    queue_s: float | None = None
