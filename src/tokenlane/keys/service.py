"""`KeyService`: the keys room as the gateway uses it. Keys live in memory (read on every
request, no disk I/O on the request path) and in the store (written by admin calls); limits
in the `Limiter`; spend in the ledger, written in batches.

Other processes change keys too (`serve --workers N` on one SQLite file, replicas on Redis):
`watch` polls the store's `keys_generation` every `RELOAD_S` and takes what changed; a
replica's `KeySync` (state/key_sync.py) hands over what the others published (`adopt`). Both
off the request path.

Blocking store calls run on one worker thread, in order.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
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
from .records import PERIODS, KeySpec, Period, VirtualKey
from .secrets import hash_secret, key_id_of, new_key_id, new_secret, secret_matches, shown_prefix
from .sqlite import SqliteStore
from .store import KeyStore, LedgerRow, Limiter, SpendQuery

if TYPE_CHECKING:
    from ..request_log import RequestLog  # it imports this room's records
    from ..state.redis_conn import RedisConnection
    from .redis_limiter import LimitsHealth

log = logging.getLogger("tokenlane.keys")

__all__ = ["RELOAD_S", "KeyNotFound", "KeyService"]

# How often a process looks for key changes other processes wrote to the shared store: a
# revocation on one worker is refused by the others within about this (one tiny SELECT).
RELOAD_S = 0.5


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
        self._generation = store.keys_generation()  # before the read: no change is missed
        self._keys: dict[str, VirtualKey] = {}
        self._load_limits(store.load_keys())
        self._flushing: asyncio.Task[None] | None = None
        self._watching: asyncio.Task[None] | None = None
        # Called with each key written here (a replica's KeySync publishes it); never waits.
        self.on_change: Callable[[VirtualKey], None] | None = None
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
        self._watching = asyncio.create_task(self.watch())

    async def stop(self) -> None:
        """Write what is queued, then close the store."""
        for task in (self._watching, self._flushing):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
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
        if self.on_change is not None:
            self.on_change(key)

    # -- other processes' key changes ---------------------------------------------------------

    async def watch(self) -> None:
        """Reload what other processes wrote to the store (a lifespan task; cancel to stop).
        Real time, not the injected clock: another process writes in wall seconds."""
        while True:
            await asyncio.sleep(RELOAD_S)
            try:
                await self.reload()
            except sqlite3.Error as exc:  # a busy or locked file: the next tick tries again
                log.warning("keys: reloading from the store failed (%s)", exc)

    async def reload(self) -> int:
        """Take the keys changed in the store since the last look; how many changed."""
        generation = await self._offload(self._store.keys_generation)
        if generation == self._generation:
            return 0
        stored: list[VirtualKey] = await self._offload(self._store.load_keys)
        self._generation = generation
        return await self.adopt(stored, persist=False)

    async def adopt(self, keys: list[VirtualKey], *, persist: bool) -> int:
        """Take key records written by other processes; how many changed anything here. A
        revocation is never undone by an older record that still lacks it. `persist`: also
        write them to this process's store (a replica's own file), for its next start."""
        merged = (_merged(self._keys.get(record.id), record) for record in keys)
        changed = [key for key in merged if self._keys.get(key.id) != key]
        new = [k for k in changed if k.id not in self._keys]
        if new:  # their limits start from the ledger before any request can use them
            spent = await self._offload(self._spent_in_ledger)
            self._load_limits(new, spent)
        for key in changed:
            self._keys[key.id] = key
        if persist:
            for key in changed:
                await self._offload(self._store.put_key, key)
        return len(changed)

    def _load_limits(self, keys: list[VirtualKey],
                     spent: dict[Period, dict[str, float]] | None = None) -> None:
        spent = self._spent_in_ledger() if spent is None else spent
        for key in keys:
            self._limiter.load(key.id, {p: spent[p].get(key.id, 0.0) for p in PERIODS})
            self._keys[key.id] = key

    def _spent_in_ledger(self) -> dict[Period, dict[str, float]]:
        """USD per key in each current period (blocking: the store)."""
        now = self._wall()
        return {p: self._store.spent_by_key(period_start(p, now)) for p in PERIODS}

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


def _merged(known: VirtualKey | None, record: VirtualKey) -> VirtualKey:
    """`record`, unless it would bring a key revoked here back: revocation is final."""
    if known is not None and known.revoked_at is not None and record.revoked_at is None:
        return replace(record, revoked_at=known.revoked_at)
    return record
