"""One Redis pub/sub channel replicas tell each other changes on at once (circuits, keys),
served by a lifespan task for as long as Redis is up.

Two loops: the publisher sends what changed here whenever woken; the listener subscribes,
catches up from the current state kept beside the channel (what was missed while not
listening), then hands each message over. On any failure the backend is marked down, and
both wait until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..tracebacks import one_line
from .redis_conn import RedisConnection, StateUnavailable

__all__ = ["listen", "send", "serve_channel"]

log = logging.getLogger("tokenlane.state")

_LISTEN_S = 0.5  # one wait for a message; the loop sees Redis go down within about this


async def send(conn: RedisConnection, channel: str, message: bytes,
               write: Callable[[Any], object]) -> bool:
    """One round trip: `write(pipeline)` (the current state kept beside the channel), then
    PUBLISH `message`; False when Redis failed (the caller keeps it for later)."""

    async def op(redis: Any) -> None:
        pipe = redis.pipeline(transaction=False)
        write(pipe)
        pipe.publish(channel, message)
        await pipe.execute()

    try:
        await conn.call(op)
    except StateUnavailable:
        return False
    return True


async def serve_channel(conn: RedisConnection, channel: str, what: str, *, up: asyncio.Event,
                        wake: asyncio.Event, publish: Callable[[], Awaitable[Any]],
                        catch_up: Callable[[], Awaitable[Any]],
                        take: Callable[[bytes], Any]) -> None:
    """Both loops (cancel to stop): `publish()` each time `wake` is set while Redis is up;
    `listen` whenever `up` is (the owner sets and clears both from the backend's health)."""
    if conn.up:
        up.set()

    async def publishing() -> None:
        while True:
            await wake.wait()
            wake.clear()
            if conn.up:
                await publish()

    await asyncio.gather(publishing(), listen(conn, channel, up, what, catch_up, take))


async def listen(conn: RedisConnection, channel: str, up: asyncio.Event, what: str,
                 catch_up: Callable[[], Awaitable[Any]],
                 take: Callable[[bytes], Any]) -> None:
    """Subscribe to `channel` whenever `up` is set; on every (re)connection, `catch_up()`
    first, then `take(message)` for each message (awaited when it is a coroutine)."""
    while True:
        await up.wait()
        pubsub = conn.client.pubsub()
        try:
            await asyncio.wait_for(pubsub.subscribe(channel), conn.settings.timeout_s)
            await catch_up()
            while conn.up:
                message = await pubsub.get_message(ignore_subscribe_messages=True,
                                                   timeout=_LISTEN_S)
                if message is not None and message.get("type") == "message":
                    taken = take(message["data"])
                    if inspect.isawaitable(taken):
                        await taken
        except StateUnavailable:
            pass  # logged once by the connection
        except conn.errors as exc:
            conn.failed(exc)
        except Exception as exc:  # noqa: BLE001 - sharing must never take the gateway down
            log.error("%s listener failed: %s", what, one_line(exc))
            conn.failed(exc)
        finally:
            await _close(pubsub)


async def _close(pubsub: Any) -> None:
    with contextlib.suppress(Exception):  # a connection already gone needs no goodbye
        await asyncio.wait_for(pubsub.aclose(), 1.0)
