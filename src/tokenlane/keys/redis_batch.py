"""The limiter's script calls, sent to Redis together: every call made in one turn of the event
loop goes in one pipeline, on one pooled connection, in one round trip.

A burst of keyed requests then costs Redis and the gateway one exchange per loop turn rather
than one per request (and no wait for a pooled connection each); a lone request waits one
loop turn, no more. Each call keeps its own answer: one script refusing (or failing) does not
touch the others in the batch. The batch as a whole is bounded and watched like any Redis call
(`RedisConnection.call`): past `timeout_s`, every call in it fails with StateUnavailable.
"""

from __future__ import annotations

import asyncio
from typing import Any

from redis.exceptions import NoScriptError

from ..state.redis_conn import RedisConnection, StateUnavailable

__all__ = ["ScriptBatch"]

_Call = tuple[str, list[str], list[str], "asyncio.Future[Any]"]


class ScriptBatch:
    def __init__(self, redis: RedisConnection, scripts: dict[str, str]) -> None:
        """`scripts`: Lua source by name, run by SHA (EVALSHA); loaded (SCRIPT LOAD) when
        Redis does not know it yet, or any more after a restart."""
        self._redis = redis
        self._scripts = {name: redis.client.register_script(source)
                         for name, source in scripts.items()}
        self._pending: list[_Call] = []
        self._sending: set[asyncio.Task[None]] = set()

    async def call(self, name: str, keys: list[str], args: list[str]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((name, keys, args, future))
        if len(self._pending) == 1:  # the first of this turn sends the lot at its end
            loop.call_soon(self._send_pending)
        return await future

    def _send_pending(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.ensure_future(self._send(batch))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, batch: list[_Call]) -> None:
        replies: list[Any] | None = None
        try:
            replies = await self._redis.call(lambda client: self._run(client, batch))
        except StateUnavailable as exc:
            replies = [StateUnavailable(str(exc)) for _ in batch]
        finally:
            if replies is None:  # cancelled (at shutdown): nobody is left waiting unanswered
                for *_, future in batch:
                    _answer(future, StateUnavailable("cancelled"))
        for (*_, future), reply in zip(batch, replies, strict=True):
            if isinstance(reply, Exception) and not isinstance(reply, StateUnavailable):
                # A script that errs is a fault of ours or of Redis: the backend is treated
                # as down (one log line), the request admitted locally.
                self._redis.failed(reply)
                reply = StateUnavailable(f"{type(reply).__name__}: {reply}")
            _answer(future, reply)

    async def _run(self, client: Any, batch: list[_Call]) -> list[Any]:
        replies = await self._pipeline(client, batch)
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:  # a Redis that restarted has forgotten the scripts: load, send again
            for name in {batch[i][0] for i in missing}:
                script = self._scripts[name]
                script.sha = await client.script_load(script.script)
            again = await self._pipeline(client, [batch[i] for i in missing])
            for i, reply in zip(missing, again, strict=True):
                replies[i] = reply
        return replies

    async def _pipeline(self, client: Any, batch: list[_Call]) -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for name, keys, args, _ in batch:
            pipe.evalsha(self._scripts[name].sha, len(keys), *keys, *args)
        return list(await pipe.execute(raise_on_error=False))


def _answer(future: asyncio.Future[Any], reply: Any) -> None:
    if future.done():  # its request was cancelled (the client went away)
        return
    if isinstance(reply, BaseException):
        future.set_exception(reply)
    else:
        future.set_result(reply)
