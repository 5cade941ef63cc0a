"""`KeyService`: the keys room as the gateway uses it. Keys live in memory (read on every
request, no disk I/O on the request path) and in the store (written by admin calls, read once
at start-up); limits in the `Limiter`; spend in the ledger, written in batches.

Blocking store calls run on one worker thread, in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from ..clock import Clock
from ..config import KeysSettings
from ..errors import AuthenticationFailed, InvalidRequest, TokenlaneError
from ..types import Catalog
from .admission import Gate
from .budgets import period_start
from .ledger import LedgerWriter
from .limiter import LocalLimiter
from .records import PERIODS, KeySpec, VirtualKey
from .secrets import hash_secret, key_id_of, new_key_id, new_secret, secret_matches, shown_prefix
from .sqlite import SqliteStore
from .store import KeyStore, LedgerRow, Limiter, SpendQuery

if TYPE_CHECKING:
    from ..request_log import RequestLog  # it imports this room's records
    from ..state.redis_conn import RedisConnection
    from .redis_limiter import LimitsHealth

__all__ = ["KeyNotFound", "KeyService"]


class KeyNotFound(TokenlaneError):
    status = 404
    type = "invalid_request_error"
    code = "key_not_found"


class KeyService:
    def __init__(self, store: KeyStore, limiter: Limiter, catalog: Catalog,
                 settings: KeysSettings, *, wall: Callable[[], float] = time.time,
                 request_log: RequestLog | None = None) -> None:
        self._store = store
        self._limiter = limiter
        self._catalog = catalog
        self._wall = wall
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="tokenlane-keys")
        self.ledger = LedgerWriter(store, self._offload, interval_s=settings.flush_interval_s,
                                   max_rows=settings.flush_rows)
        self.gate = Gate(catalog, limiter, self.ledger.add,
                         reserve_output_tokens=settings.reserve_output_tokens, wall=wall,
                         request_log=request_log)
        self._keys = {k.id: k for k in store.load_keys()}
        now = wall()
        spent = {p: store.spent_by_key(period_start(p, now)) for p in PERIODS}
        for key_id in self._keys:
            limiter.load(key_id, {p: spent[p].get(key_id, 0.0) for p in PERIODS})
        self._flushing: asyncio.Task[None] | None = None
        # The shared limiter's counters, for /metrics (None: limits in-process).
        self.shared_limits: LimitsHealth | None = None

    @classmethod
    def open(cls, settings: KeysSettings, catalog: Catalog, clock: Clock, *,
             wall: Callable[[], float] = time.time, request_log: RequestLog | None = None,
             redis: RedisConnection | None = None) -> KeyService:
        """The configured store (SQLite in `settings.data_dir`); limits in-process, or shared
        by every replica through `redis` (the `state:` backend)."""
        if redis is None:
            return cls(SqliteStore(settings.db_path()), LocalLimiter(clock, wall), catalog,
                       settings, wall=wall, request_log=request_log)
        from .redis_limiter import RedisLimiter  # redis-py: only with the redis backend

        limiter = RedisLimiter(redis, clock=clock, wall=wall)
        service = cls(SqliteStore(settings.db_path()), limiter, catalog, settings, wall=wall,
                      request_log=request_log)
        service.shared_limits = limiter.health
        return service

    # -- lifecycle (the app's lifespan) ---------------------------------------------------

    def start(self) -> None:
        self._flushing = asyncio.create_task(self.ledger.run())

    async def stop(self) -> None:
        """Write what is queued, then close the store."""
        if self._flushing is not None:
            self._flushing.cancel()
            await asyncio.gather(self._flushing, return_exceptions=True)
        await self._limiter.aclose()  # settlements still to send to a shared backend
        await self.ledger.flush()
        await self._offload(self._store.close)
        self._worker.shutdown(wait=True)

    # -- the request path -----------------------------------------------------------------

    def authenticate(self, secret: str) -> VirtualKey | None:
        """The key a presented secret belongs to; None when it is not one of ours. A revoked
        or expired key is refused outright."""
        key_id = key_id_of(secret)
        key = self._keys.get(key_id) if key_id is not None else None
        if key is None or not secret_matches(secret, key.secret_hash):
            return None
        if key.revoked_at is not None:
            raise AuthenticationFailed("This API key has been revoked.")
        if key.expired(self._wall()):
            raise AuthenticationFailed("This API key has expired.")
        return key

    # -- the admin API ----------------------------------------------------------------------

    async def create(self, spec: KeySpec) -> tuple[VirtualKey, str]:
        """A new key and its secret (the only time the secret exists outside its owner)."""
        self._check_models(spec)
        key_id = new_key_id()
        while key_id in self._keys:
            key_id = new_key_id()
        secret = new_secret(key_id)
        key = VirtualKey(key_id, hash_secret(secret), shown_prefix(secret), spec, self._wall())
        await self._put(key)
        return key, secret

    def get(self, key_id: str) -> VirtualKey:
        key = self._keys.get(key_id)
        if key is None:
            raise KeyNotFound(f"No key with id {key_id!r}.", param="key_id")
        return key

    def list(self) -> list[VirtualKey]:
        return list(self._keys.values())

    async def update(self, key_id: str, changes: dict[str, Any]) -> VirtualKey:
        key = self._live(key_id)
        spec = KeySpec.model_validate({**key.spec.model_dump(), **changes})
        self._check_models(spec)
        key = replace(key, spec=spec)
        await self._put(key)
        return key

    async def revoke(self, key_id: str) -> VirtualKey:
        """Refused from the next request on (requests in flight finish and are ledgered)."""
        key = self.get(key_id)
        if key.revoked_at is None:
            key = replace(key, revoked_at=self._wall())
            await self._put(key)
        return key

    async def rotate(self, key_id: str) -> tuple[VirtualKey, str]:
        """A new secret for the same key (limits and spend carry on); the old one stops
        working at once."""
        key = self._live(key_id)
        secret = new_secret(key.id)
        key = replace(key, secret_hash=hash_secret(secret), prefix=shown_prefix(secret))
        await self._put(key)
        return key, secret

    async def usage(self, key_id: str) -> dict[str, Any]:
        """Spend per current period, what is reserved in flight, and what is left."""
        key = self.get(key_id)
        spent, reserved = await self._limiter.usage(key_id)
        limits = key.spec.budget_usd.limits()
        return {"spent_usd": spent, "reserved_usd": reserved,
                "remaining_usd": {p: max(0.0, limit - spent[p] - reserved)
                                  for p, limit in limits.items()}}

    async def spend(self, query: SpendQuery) -> list[dict[str, Any]]:
        await self.ledger.flush()  # every request that has ended is in the answer
        return await self._offload(self._store.spend, query)  # type: ignore[no-any-return]

    async def requests(self, limit: int, key_id: str | None = None) -> list[LedgerRow]:
        """The latest requests' ledger rows, newest first."""
        await self.ledger.flush()
        return await self._offload(self._store.latest, limit, key_id)  # type: ignore[no-any-return]

    def now(self) -> float:
        """Wall-clock Unix seconds, as budgets count them."""
        return self._wall()

    async def _put(self, key: VirtualKey) -> None:
        await self._offload(self._store.put_key, key)
        self._keys[key.id] = key  # after the write: what requests see is what was stored

    def _live(self, key_id: str) -> VirtualKey:
        key = self.get(key_id)
        if key.revoked_at is not None:
            raise InvalidRequest(f"Key {key_id} is revoked.", param="key_id",
                                 code="key_revoked")
        return key

    def _check_models(self, spec: KeySpec) -> None:
        unknown = sorted(set(spec.models or ()) - set(self._catalog.models))
        if unknown:
            raise InvalidRequest(
                f"models: unknown model(s) {', '.join(unknown)} (configured: "
                f"{', '.join(sorted(self._catalog.models))})", param="models",
                code="invalid_value")

    async def _offload(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._worker, partial(fn, *args))
