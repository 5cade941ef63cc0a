"""`tokenlane serve --workers N`: N processes serving one port, and the supervisor running them.

Sockets. Each worker binds its own listening socket to the port with SO_REUSEPORT, and the
kernel spreads new connections over the workers' accept queues by connection hash. With one
accept queue shared by every worker instead, whichever worker wakes first takes a whole burst
of connections (asyncio accepts up to its backlog per wake-up), so one core ends up with most
of a thousand streams opened at once. The supervisor first binds the port itself, without
listening: a port already taken fails once, before any worker starts; port 0 is resolved
once; and the port stays ours while a worker is being replaced. A bound socket that does not
listen is never handed a connection.

Processes. Workers are started with `spawn` (a fresh interpreter, nothing inherited from the
supervisor's state or threads); each one builds its own app from the config. A worker tells
the supervisor it is ready over its own pipe; the supervisor notices an exit through the
process sentinel, both as event-loop readers (no polling). SIGTERM or SIGINT to the supervisor
is passed to every worker as one SIGTERM, and a worker drains like a single-process gateway
(server/drain.py); a second signal is passed on too and cuts the drain short. Workers ignore
SIGINT, so Ctrl-C in a terminal, which signals the whole process group, still reaches each
worker once. A worker that exits while serving is replaced; one that exits before it was ever
ready stops the whole gateway (it would fail again the same way). A worker whose supervisor
dies (SIGKILL, OOM) sees its sentinel close and shuts down too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

__all__ = ["Supervisor", "Worker", "WorkerTarget", "reserve_port", "workers_warning"]

log = logging.getLogger("tokenlane.workers")

_READY = "ready"


def workers_warning(backend: str, workers: int) -> str | None:
    """What an operator must know before running `workers` processes on `backend` state."""
    if workers < 2 or backend != "local":
        return None
    return (f"warning: {workers} workers with state.backend local: each worker keeps its own "
            "measurements, circuits, probes, rate limits and budgets (a 10 rpm key admits up "
            f"to {10 * workers} rpm in all), and keys created through the admin API reach "
            "only the worker that served the call until a restart. Set state: {backend: "
            "redis, url: redis://...} so the workers share them.")


def _socket_for(host: str) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    return sock


def _bind(host: str, port: int) -> socket.socket:
    if not hasattr(socket, "SO_REUSEPORT"):  # pragma: no cover - Linux, BSDs and macOS have it
        raise OSError("--workers needs SO_REUSEPORT, which this platform lacks")
    sock = _socket_for(host)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def reserve_port(host: str, port: int) -> socket.socket:
    """Bind `host:port` (0: any free port) for the workers without listening on it; keep the
    returned socket open while they serve. OSError when the port is taken."""
    return _bind(host, port)


@dataclass
class Worker:
    """A worker process's view of itself, handed to the target the supervisor runs."""

    index: int  # 1..count
    count: int
    _ready: Connection = field(repr=False)

    @property
    def label(self) -> str:
        """`1/2; pid=4242`: who served a response (the `x-tokenlane-worker` header)."""
        return f"{self.index}/{self.count}; pid={os.getpid()}"

    def listen_socket(self, host: str, port: int) -> socket.socket:
        """This worker's own socket on the shared port (the server listens on it)."""
        return _bind(host, port)

    def ready(self) -> None:
        """Tell the supervisor this worker accepts requests."""
        self._ready.send(_READY)

    def stop_on_signals(self, stop: Callable[[], None]) -> None:
        """Call `stop` on SIGTERM and when the supervisor dies (on the running event loop)."""
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop)
        parent = multiprocessing.parent_process()
        if parent is not None:
            def orphaned() -> None:
                loop.remove_reader(parent.sentinel)
                log.warning("worker %d: the supervisor is gone; shutting down", self.index)
                stop()

            loop.add_reader(parent.sentinel, orphaned)


# The target runs in the worker: target(payload, worker) -> exit code. Both must pickle (a
# module-level function and plain data), since `spawn` sends them to a new interpreter.
WorkerTarget = Callable[[Any, Worker], "int | None"]


def _worker_main(target: WorkerTarget, payload: Any, index: int, count: int,
                 ready: Connection) -> None:
    # The supervisor forwards Ctrl-C as SIGTERM; the terminal's own SIGINT would be a second
    # signal and cut the drain short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(target(payload, Worker(index, count, ready)) or 0)


@dataclass
class _Slot:
    process: BaseProcess
    messages: Connection
    ever_ready: bool = False


class Supervisor:
    """Runs `count` workers of `target(payload, worker)` until told to stop."""

    def __init__(self, target: WorkerTarget, payload: Any, count: int) -> None:
        self._target = target
        self._payload = payload
        self._count = count
        self._context = multiprocessing.get_context("spawn")
        self._slots: dict[int, _Slot] = {}
        self._exit_codes: dict[int, int | None] = {}
        self._stopping = False
        self._failed = False
        self._announced = False
        self._on_ready: Callable[[], None] = lambda: None
        self._done: asyncio.Future[None] | None = None

    async def run(self, on_ready: Callable[[], None] = lambda: None) -> int:
        """Start the workers, call `on_ready` once all of them serve, replace any that dies,
        and return once all have exited after a stop: 0 if each exited cleanly, else 1."""
        loop = asyncio.get_running_loop()
        self._on_ready = on_ready
        self._done = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        try:
            for index in range(1, self._count + 1):
                self._start(index)
            await self._done
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        # -SIGTERM: stopped while starting, before its handler was in place (nothing served).
        clean = all(code in (0, -signal.SIGTERM) for code in self._exit_codes.values())
        return 0 if clean and not self._failed else 1

    def stop(self) -> None:
        """Drain every worker (a second call: cut the drains short)."""
        if not self._stopping:
            log.info("stopping %d worker(s)", len(self._slots))
        self._stopping = True
        for slot in self._slots.values():
            if slot.process.pid is not None and slot.process.exitcode is None:
                with contextlib.suppress(ProcessLookupError):  # exited just now
                    os.kill(slot.process.pid, signal.SIGTERM)
        self._finish_if_all_exited()

    def _start(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        messages, ready = self._context.Pipe(duplex=False)
        process = self._context.Process(
            target=_worker_main, name=f"tokenlane-worker-{index}",
            args=(self._target, self._payload, index, self._count, ready))
        process.start()
        ready.close()  # the worker holds the writing end; EOF once it is gone
        self._slots[index] = _Slot(process, messages)
        loop.add_reader(messages.fileno(), self._on_message, index)
        loop.add_reader(process.sentinel, self._on_exit, index)

    def _on_message(self, index: int) -> None:
        slot = self._slots[index]
        try:
            message = slot.messages.recv()
        except (EOFError, OSError):  # the worker is gone: _on_exit sees to it
            asyncio.get_running_loop().remove_reader(slot.messages.fileno())
            return
        if message == _READY:
            slot.ever_ready = True
            if not self._announced and len(self._slots) == self._count and all(
                    s.ever_ready for s in self._slots.values()):
                self._announced = True
                self._on_ready()

    def _on_exit(self, index: int) -> None:
        loop = asyncio.get_running_loop()
        slot = self._slots.pop(index)
        loop.remove_reader(slot.process.sentinel)
        loop.remove_reader(slot.messages.fileno())
        slot.messages.close()
        slot.process.join()
        code = slot.process.exitcode
        if self._stopping:
            self._exit_codes[index] = code
        elif not slot.ever_ready:
            log.error("worker %d (pid %s) exited with code %s before it was ready; stopping",
                      index, slot.process.pid, code)
            self._failed = True
            self.stop()
        else:
            log.warning("worker %d (pid %s) exited with code %s; starting a new one",
                        index, slot.process.pid, code)
            self._start(index)
        self._finish_if_all_exited()

    def _finish_if_all_exited(self) -> None:
        if self._stopping and not self._slots and self._done is not None \
                and not self._done.done():
            self._done.set_result(None)
