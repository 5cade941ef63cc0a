"""One Redis connection pool per gateway, every call bounded and watched.

`RedisConnection` builds a `redis.asyncio.Redis` from the `state:` section with connect and
reply timeouts of `timeout_s` (250 ms by default) and no retries of its own: a slow Redis
must cost a request-path caller at most one timeout, after which the backend is marked down
(`BackendHealth`) and every caller goes local at once. While it is down, `run` (a lifespan
task) PINGs it every `retry_s`; the first answer brings it back up and the health listeners
resync. The one log line per transition is written here.

redis-py is an optional dependency (`tokenlane[redis]`): imported only when the backend is
`redis`, with an error that says what to install.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ..clock import Clock
from ..config import ConfigError, StateSettings
from .health import BackendHealth, StateUnavailable

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = ["RedisConnection", "StateUnavailable"]

log = logging.getLogger("tokenlane.state")

T = TypeVar("T")

# Connections per gateway process: Redis answers a script in well under a millisecond, so
# this many in flight carry thousands of calls a second without one waiting long.
_POOL_SIZE = 64


def _redis_module() -> Any:
    try:
        import redis.asyncio
    except ImportError:
        raise ConfigError("state.backend: redis needs the redis client: "
                          "pip install 'tokenlane[redis]'") from None
    return redis


def _shown(url: str) -> str:
    """The URL for log lines: never a password, whatever the config validator let through."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{netloc}"))


class RedisConnection:
    """The gateway's Redis: a client with bounded timeouts, its health, its key namespace."""

    def __init__(self, settings: StateSettings, clock: Clock, env: Mapping[str, str], *,
                 source: str = "<config>") -> None:
        assert settings.url is not None  # the config demands it for backend redis
        redis = _redis_module()
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        self.settings = settings
        self.clock = clock
        self.health = BackendHealth()
        self.shown_url = _shown(settings.url)
        # No retries inside redis-py (its default retries three times): a retry is one more
        # timeout paid by whoever is waiting. Going local is the retry.
        # A blocking pool: a burst of more concurrent calls than connections (every keyed
        # request admits through Redis) waits its turn within timeout_s; redis-py's default
        # pool would refuse call 101 at once, and that would take the backend down.
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            settings.url, password=settings.password(env, source=source),
            max_connections=_POOL_SIZE, timeout=settings.timeout_s,
            socket_timeout=settings.timeout_s, socket_connect_timeout=settings.timeout_s,
            retry=Retry(NoBackoff(), 0), retry_on_timeout=False, health_check_interval=0)
        self.client: Redis = redis.asyncio.Redis.from_pool(pool)
        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError,
                                                         asyncio.TimeoutError)

    @property
    def up(self) -> bool:
        return self.health.up

    @property
    def errors(self) -> tuple[type[BaseException], ...]:
        """What a failed Redis call raises (for code that talks to the client directly)."""
        return self._errors

    def key(self, *parts: str) -> str:
        """A key or channel name in this fleet's namespace: `<prefix>:<part>:<part>`."""
        return ":".join((self.settings.prefix, *parts))

    async def call(self, op: Callable[[Redis], Awaitable[T]]) -> T:
        """Run `op(client)` within `timeout_s`; StateUnavailable at once while the backend
        is down, or when this call fails (which marks it down)."""
        if not self.health.up:
            raise StateUnavailable("state backend down")
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                return await op(self.client)
        except self._errors as exc:
            self.failed(exc)
            raise StateUnavailable(str(exc) or type(exc).__name__) from exc

    def failed(self, exc: BaseException) -> None:
        """Report a failed call made outside `call` (a pub/sub reader, a pipeline)."""
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if self.health.failed(error, self.clock.now()):
            log.warning("state backend redis at %s unreachable (%s): running on local state "
                        "until it answers", self.shown_url, error)

    async def ping(self) -> bool:
        """One bounded PING (also while down); True when Redis answered."""
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                if not self.health.up:
                    # The pooled connections of before the outage are dead if Redis restarted:
                    # each would fail once, and take the backend down again, after it is back.
                    await self.client.connection_pool.disconnect(inuse_connections=False)
                await self.client.ping()
        except self._errors as exc:
            self.failed(exc)
            return False
        if self.health.reached(self.clock.now()):
            log.info("state backend redis at %s reachable: sharing state", self.shown_url)
        return True

    async def run(self) -> None:
        """Watch the backend (a lifespan task; cancel to stop): PING while down, every
        `retry_s`, until it answers. Real time, not the injected clock: an outage of the
        network lasts wall seconds however a test drives the gateway's clock."""
        while True:
            if not self.health.up:
                await self.ping()
            await asyncio.sleep(self.settings.retry_s)

    async def aclose(self) -> None:
        await self.client.aclose()
