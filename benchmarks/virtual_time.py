"""An asyncio event loop on virtual time, and a `tokenlane.clock.Clock` that reads it.

`loop.time()` is a number this loop keeps itself. When the loop has nothing runnable and would
block in its selector until the next timer, it moves its time forward to that timer instead of
waiting. So `asyncio.sleep(10)` returns at once in wall time, with `loop.time()` exactly 10 s
later; concurrent sleeps overlap as in real time (they do not add up, unlike `ManualClock`);
and `asyncio.timeout`, `asyncio.wait(..., timeout=...)` and every deadline computed from
`loop.time()` run on the same virtual time. A whole gateway plus simulated providers can run
minutes of scenario time in seconds, exactly and repeatably.

The rule that makes it measure right: time moves only when *nothing* is runnable. A simulated
provider that sends a token and then sleeps cannot race ahead of the gateway reading that
token: the reader is runnable, so the sleep's timer does not fire until it has run.

Limits, on purpose: there must be no real I/O (sockets would never be waited for; use an
in-process transport, see `asgi_stream.py`), and work in threads is not waited for when a
timer is pending (only when nothing at all is scheduled). A loop with nothing scheduled,
nothing ready and no thread reporting back within `idle_wall_s` is deadlocked: that raises.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["LoopClock", "VirtualTimeLoop", "run_virtual"]

T = TypeVar("T")


class _VirtualSelector(selectors.DefaultSelector):
    """The loop's own selector (its self-pipe, for thread wake-ups) polled without waiting;
    a wait for a timer becomes a jump of the loop's virtual time."""

    def __init__(self, idle_wall_s: float) -> None:
        super().__init__()
        self.loop: VirtualTimeLoop | None = None
        self._idle_wall_s = idle_wall_s

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout == 0:
            # Callbacks are ready: run them. Only threads write to the self-pipe, and they are
            # heard the moment the loop next runs out of work (below), before time moves.
            return []
        ready = super().select(0)
        if ready:
            return ready
        if timeout is None:  # nothing scheduled: only a thread can still wake the loop
            ready = super().select(self._idle_wall_s)
            if not ready:
                raise RuntimeError("virtual-time loop deadlocked: nothing ready, nothing "
                                   "scheduled, no thread reported back")
            return ready
        assert self.loop is not None
        self.loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop whose clock is virtual (see the module docstring)."""

    def __init__(self, start: float = 1000.0, idle_wall_s: float = 5.0) -> None:
        selector = _VirtualSelector(idle_wall_s)
        super().__init__(selector)
        selector.loop = self
        self._virtual_now = start

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        self._virtual_now += max(0.0, seconds)


class LoopClock:
    """`tokenlane.clock.Clock` on a loop's time: `now()` is `loop.time()`, `sleep` is
    `asyncio.sleep`. Shared by the simulator and the gateway, so what one sleeps the other
    measures, and the engine's asyncio timeouts agree with both."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def now(self) -> float:
        return self._loop.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


def run_virtual(main: Coroutine[Any, Any, T], start: float = 1000.0) -> T:
    """`asyncio.run` on a fresh `VirtualTimeLoop`."""
    with asyncio.Runner(loop_factory=lambda: VirtualTimeLoop(start)) as runner:
        return runner.run(main)
