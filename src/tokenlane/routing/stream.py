"""A committed stream: one deployment's output on its way to the client, measured as it goes.

Once the first token has been handed out there is no switching provider. If the upstream breaks
after that, iteration raises `StreamBroken` (the server turns it into one final SSE error event)
and the attempt is recorded as failed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from ..assemble import CompletionAssembler, has_token
from ..clock import Clock
from ..errors import TokenlaneError
from ..pricing import cost_of, tokens_of
from ..providers.base import UpstreamBadResponse, UpstreamError, UpstreamStream
from ..providers.headroom import parse_time_info
from ..request import ChatRequest
from ..stats.observation import Observation
from ..types import Deployment
from .watchdog import StallWatchdog

if TYPE_CHECKING:
    from .decision import Decision

__all__ = ["AttemptMeter", "ChatStream", "StreamBroken"]


class UpstreamStalled(UpstreamError):
    outcome = "stall"


class DeadlinePassed(UpstreamError):
    """The request's own overall deadline ran out while its stream was still going: the
    client's time budget, not a stall of the deployment."""

    outcome = "deadline"


class StreamBroken(TokenlaneError):
    """The upstream failed after output had already reached the client."""

    status = 502
    type = "server_error"
    code = "upstream_stream_broken"


class AttemptMeter:
    """Timestamps and token counts of one attempt; turns them into an `Observation`."""

    __slots__ = (
        "chunks",
        "clock",
        "deployment",
        "finish_reason",
        "first_at",
        "last_at",
        "model",
        "overdue_at",
        "probe",
        "prompt_estimate",
        "queue_s",
        "sent_at",
        "usage",
    )

    def __init__(
        self, deployment: Deployment, clock: Clock, prompt_estimate: int, model: str = "",
        *, probe: bool = False,
    ) -> None:
        self.deployment = deployment
        self.probe = probe  # the gateway's own measurement, not a user's request
        # Clock time from which a first token is overdue (set when the attempt is hedged):
        # cancelled after that without one, the attempt counts as timed out, not cancelled.
        self.overdue_at: float | None = None
        self.model = model
        self.clock = clock
        self.sent_at = clock.now()
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.chunks = 0
        self.usage: dict[str, Any] | None = None
        self.prompt_estimate = prompt_estimate
        self.finish_reason: str | None = None
        self.queue_s: float | None = None  # provider-reported (time_info), when it says

    def see(self, chunk: dict[str, Any], now: float | None = None) -> bool:
        """Record one chunk (arrived `now`, clock time: the chunks of one read share the
        read's time; default the clock's); True when it carries generated output."""
        usage = chunk.get("usage")
        if usage:
            self.usage = usage
            # Cerebras reports time_info beside the usage, on the last chunk.
            if "time_info" in chunk and (timing := parse_time_info(chunk)) is not None:
                self.queue_s = timing.queue_s
        choices = chunk.get("choices")
        if choices:
            first = choices[0]
            if finish := first.get("finish_reason"):
                self.finish_reason = finish
            # The common chunk, one choice with text, without a call; anything else asks
            # has_token.
            delta = first.get("delta")
            if not (delta and delta.get("content")) and not has_token(chunk):
                return False
        else:
            return False
        if now is None:  # stamp_output, inline: once per chunk
            now = self.clock.now()
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        self.chunks += 1
        return True

    def stamp_output(self) -> None:
        """One chunk carrying output arrived now (the first one is the first token)."""
        now = self.clock.now()
        if self.first_at is None:
            self.first_at = now
        self.last_at = now
        self.chunks += 1

    def overdue(self) -> bool:
        """No first token, and past the time one was due."""
        return (self.first_at is None and self.overdue_at is not None
                and self.clock.now() >= self.overdue_at)

    def decode_tps_so_far(self, tokens_per_chunk: float, min_seconds: float) -> float | None:
        """Tokens per second since the first token, once it has run `min_seconds`."""
        if self.first_at is None:
            return None
        elapsed = self.clock.now() - self.first_at
        if elapsed < min_seconds:
            return None
        return max(self.chunks - 1, 0) * tokens_per_chunk / elapsed

    @property
    def output_tokens(self) -> int:
        reported = self.usage.get("completion_tokens") if self.usage else None
        return reported if isinstance(reported, int) else self.chunks

    @property
    def prompt_tokens(self) -> int:
        reported = self.usage.get("prompt_tokens") if self.usage else None
        return reported if isinstance(reported, int) else self.prompt_estimate

    def observe(self, outcome: str, status: int | None = None) -> Observation:
        now = self.clock.now()
        output = self.output_tokens
        ttft = None if self.first_at is None else self.first_at - self.sent_at
        decode = None
        if self.first_at is not None and self.last_at is not None and output > 1:
            span = self.last_at - self.first_at
            if span > 0:
                decode = (output - 1) / span
        prompt = self.prompt_tokens
        return Observation(
            deployment=self.deployment.id,
            at=now,
            outcome=outcome,
            prompt_tokens=prompt,
            output_tokens=output,
            ttft_s=ttft,
            decode_tps=decode,
            total_s=now - self.sent_at,
            # From the usage, so cached prompt tokens are priced at the cached rate.
            cost=cost_of(tokens_of(self.usage, prompt, output), self.deployment.price),
            status=status,
            model=self.model,
            chunks=self.chunks,
            queue_s=self.queue_s,
        )


class ChatStream:
    """Chunks for the client, model renamed to the public name, usage shown only if asked.

    Always iterate it to the end or `aclose()` it: closing releases the upstream connection
    and records the attempt.
    """

    def __init__(
        self,
        request: ChatRequest,
        deployment: Deployment,
        upstream: UpstreamStream,
        chunks: AsyncIterator[list[dict[str, Any]]],
        head: list[dict[str, Any]],
        meter: AttemptMeter,
        finish: Callable[[AttemptMeter, str, int | None], Observation],
        decision: Decision | None = None,
        *,
        stall_timeout: float | None = None,
        deadline: float | None = None,
        rest: list[dict[str, Any]] | None = None,
    ) -> None:
        self.request = request
        self.deployment = deployment
        self.decision = decision
        self.meter = meter
        self.observation: Observation | None = None
        self._upstream = upstream
        self._chunks = chunks
        self._head = head
        self._rest = rest or []  # the first token's read also brought these (not yet seen)
        self._finish_attempt = finish
        self._stall_timeout = stall_timeout
        self._deadline = deadline  # event-loop time
        self._id: str | None = None
        self._created: int | None = None
        self._presenting = True
        # What the client was sent, assembled (only when the request log keeps content).
        self.kept = CompletionAssembler() if request.keep_text else None

    async def __aiter__(self) -> AsyncIterator[dict[str, Any]]:
        async for batch in self.batches():
            for chunk in batch:
                yield chunk

    async def batches(self, *, present: bool = True) -> AsyncIterator[list[dict[str, Any]]]:
        """Presented chunks, grouped as they arrived (one group per upstream read).
        `present=False`: measured but as the upstream sent them (for whoever builds its own
        answer from them: the non-streaming completion names the model itself)."""
        self._presenting = present
        try:
            # The head was measured while the engine waited for the first token; the rest of
            # that read was not.
            first = self._take(self._head, measured=True) + self._take(self._rest)
            self._head = self._rest = []
            if first:
                yield first
            with StallWatchdog(self._stall_timeout, self._deadline) as watchdog:
                while True:
                    watchdog.waiting()
                    try:
                        batch = await anext(self._chunks)
                    except StopAsyncIteration:
                        break
                    except asyncio.CancelledError:
                        if watchdog.stalled():
                            raise self._stall_error() from None
                        raise
                    finally:
                        watchdog.done_waiting()
                    if outs := self._take(batch):
                        yield outs
        except UpstreamError as exc:
            self._finish(exc.outcome, exc.status)
            raise StreamBroken(f"upstream {self.deployment.id} failed mid-stream: {exc}") from exc
        if self.meter.finish_reason is None and not getattr(self._upstream, "completed", True):
            self._finish(UpstreamBadResponse.outcome)
            raise StreamBroken(
                f"upstream {self.deployment.id} ended the stream without a finish reason or [DONE]"
            )
        if self.request.include_usage and self.meter.usage is None:
            yield [self._synthetic_usage()]
        self._finish("ok")

    def _take(self, batch: list[dict[str, Any]], *, measured: bool = False
              ) -> list[dict[str, Any]]:
        """Measure (unless already done) and present a batch; what the client sees of it."""
        see, model = self.meter.see, self.request.model
        hide_usage = not self.request.include_usage
        now = self.meter.clock.now()  # one read, one arrival time
        if not self._presenting:
            if not measured:
                for chunk in batch:
                    see(chunk, now)
            if self.kept is not None:
                self.kept.add_all(batch)
            return batch
        out = []
        for chunk in batch:
            if not measured:
                see(chunk, now)
            # Presenting, inline (once per chunk): the public model name; the usage only if
            # the client asked (we asked upstream for it, to measure).
            if hide_usage and "usage" in chunk:
                if not chunk.get("choices"):
                    continue
                del chunk["usage"]
            chunk["model"] = model
            out.append(chunk)
        if self._id is None:
            for chunk in out:
                self._id, self._created = chunk.get("id"), chunk.get("created")
                if self._id is not None:
                    break
        if self.kept is not None:
            self.kept.add_all(out)
        return out

    def _stall_error(self) -> UpstreamError:
        """What the watchdog's cancellation was: the request's deadline, or a stall."""
        loop_time = asyncio.get_running_loop().time()
        if self._deadline is not None and self._deadline - loop_time <= 0.001:
            return DeadlinePassed("request deadline passed mid-stream")
        return UpstreamStalled(f"no token for {self._stall_timeout}s (stalled)")

    def _synthetic_usage(self) -> dict[str, Any]:
        prompt, output = self.meter.prompt_tokens, self.meter.output_tokens
        return {
            "id": self._id, "object": "chat.completion.chunk", "created": self._created,
            "model": self.request.model, "choices": [],
            "usage": {"prompt_tokens": prompt, "completion_tokens": output,
                      "total_tokens": prompt + output},
        }

    def _finish(self, outcome: str, status: int | None = None) -> None:
        if self.observation is None:
            self.observation = self._finish_attempt(self.meter, outcome, status)

    async def abandon(self, outcome: str) -> None:
        """Give up on this attempt because the engine will serve the request another way;
        recorded with `outcome` (what it says about the deployment)."""
        self._finish(outcome)
        await self._upstream.aclose()

    async def aclose(self) -> None:
        """Release the upstream; a stream closed before its end counts as cancelled."""
        self._finish("cancelled")
        await self._upstream.aclose()
