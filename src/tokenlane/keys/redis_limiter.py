"""`RedisLimiter`: rate limits and budgets shared by every replica, through Redis.

Each admission is one Lua script (`redis_lua.ADMIT`, by EVALSHA, pipelined with the other
calls of the same loop turn: `redis_batch`) that checks the key's budgets, rpm and tpm and
takes a reservation in one atomic step, so limits hold across any
number of replicas. Each reservation has an id and a lease: settling it (in the background,
after the response) is idempotent, and a crashed replica's reservations lapse by themselves.

Redis failing never fails a request. A call that errs or takes longer than `state.timeout_s`
marks the backend down (`tokenlane.state`: one log line, a metric) and the request is
admitted by this replica's own `LocalLimiter`, started from the fleet's spend as last seen;
while down, requests never wait on Redis. When the connection's watcher finds Redis again,
this limiter sends the settlements that could not be sent and pushes what was spent locally
(each batch once, by its id): the fleet's budgets then include it.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any

from ..clock import Clock
from ..state.redis_conn import RedisConnection, StateUnavailable
from .buckets import TokenBucket
from .budgets import Overrun, PeriodStarts
from .limiter import LocalLimiter
from .outage import Batch, LocalSpend
from .records import PERIODS, Period, VirtualKey
from .redis_batch import ScriptBatch
from .redis_layout import KeyLayout, Seeds, admit_args, period_ttls, settle_args
from .redis_lua import ADMIT, RECONCILE, SETTLE, USAGE
from .refusals import budget_refusal, rate_headers, rate_refusal
from .store import Admission

__all__ = ["LimitsHealth", "RedisLimiter"]

log = logging.getLogger("tokenlane.keys")

# A pushed batch's marker outlives any retry of that push.
_PUSHED_TTL_S = 86400


@dataclass(slots=True)
class LimitsHealth:
    """What the metrics read at scrape time."""

    local_admissions: int = 0  # requests admitted from local counts: Redis was out of reach
    reconciled_usd: float = 0.0  # USD spent locally, since added to the fleet's in Redis


@dataclass(frozen=True, slots=True)
class _Settlement:
    key_id: str
    reservation: str
    usd: float
    tokens: int
    wall: float  # when the request ended: the periods its spend belongs to
    # A try of it failed after it was sent: it may have landed, its reply lost. A retry then
    # trusts Redis's reservations to tell whether it did.
    sent: bool = False


class RedisLimiter:
    def __init__(self, redis: RedisConnection, *, clock: Clock, wall: Callable[[], float],
                 lease_s: float = 900.0) -> None:
        """`lease_s`: how long a reservation holds budget unsettled (longer than any request
        lasts; a crashed replica's hold that long)."""
        self._redis = redis
        self._wall = wall  # shared by replicas: buckets, leases, budget periods
        self._lease = lease_s
        self._local = LocalLimiter(clock, wall)
        self._scripts = ScriptBatch(redis, {"admit": ADMIT, "settle": SETTLE,
                                            "reconcile": RECONCILE, "usage": USAGE})
        self._starts = PeriodStarts()
        # The fleet's spend as Redis last told it (the ledger's, at start-up): where local
        # counting starts in an outage, and what a spend key Redis lost starts from.
        self._fleet = Seeds()
        self._spent_locally = LocalSpend()
        self._unsent: dict[str, _Settlement] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.health = LimitsHealth()
        redis.health.on_change(self._backend_changed)

    # -- the Limiter interface --------------------------------------------------------------

    def load(self, key_id: str, spent: dict[Period, float]) -> None:
        self._fleet.load(key_id, spent, self._starts(self._wall()))
        self._local.load(key_id, spent)

    async def admit(self, key: VirtualKey, cost: float, tokens: int) -> Admission:
        if not self._redis.up:
            return self._take_locally(key, cost, tokens)
        wall = self._wall()
        starts = self._starts(wall)
        layout = self._layout(key.id)
        reservation = secrets.token_hex(8)
        args = admit_args(key, cost, tokens, reservation, wall, self._lease,
                          self._fleet.of(key.id, starts), period_ttls(starts, wall))
        try:
            reply = await self._call("admit", layout.limit_keys(starts), args)
        except StateUnavailable:
            # The script may have run before the reply was lost: release what it may hold.
            self._unsent[reservation] = _Settlement(key.id, reservation, 0.0, 0, wall, True)
            return self._take_locally(key, cost, tokens)
        return self._admitted(key, cost, tokens, reservation, wall, starts, reply)

    def settle(self, admission: Admission, cost: float, tokens: int) -> None:
        wall = self._wall()
        if admission.reservation is None:  # admitted from local counts
            self._local.settle(admission, cost, tokens)
            starts = self._starts(wall)
            self._spent_locally.add(admission.key_id, starts["day"], starts["month"], cost)
            if self._redis.up:  # admitted during the outage, ended after it
                self._spawn(self._push())
            return
        settlement = _Settlement(admission.key_id, admission.reservation, cost, tokens, wall)
        if self._redis.up:
            self._spawn(self._send(settlement))
        else:
            self._keep_unsent(settlement)

    async def usage(self, key_id: str) -> tuple[dict[Period, float], float]:
        """The fleet's numbers, once this replica's own settlements have been sent (and what
        it counted locally pushed: while down, an admin read tries Redis once)."""
        await self._settled()
        if not self._redis.up and await self._redis.ping():
            await self._settled()  # the resync the way up started
        if self._redis.up:
            wall = self._wall()
            starts = self._starts(wall)
            args = [repr(wall), repr(self._lease), *self._fleet.of(key_id, starts),
                    *period_ttls(starts, wall)]
            try:
                reply = await self._call("usage", self._layout(key_id).usage_keys(starts), args)
            except StateUnavailable:
                pass
            else:
                spent = dict(zip(PERIODS, map(float, reply[:3]), strict=True))
                self._fleet.load(key_id, spent, starts)
                return spent, float(reply[3])
        return await self._local.usage(key_id)

    async def aclose(self) -> None:
        """Send what is in flight and what waits, if Redis answers."""
        await self._settled()
        if self._unsent or self._spent_locally:
            if self._redis.up:
                await self._resync()
            elif await self._redis.ping():
                await self._settled()
        if self._unsent or self._spent_locally:
            log.warning("limits: Redis is out of reach at shutdown; $%.6f spent locally is not "
                        "in the fleet's budgets (the ledger has it)",
                        self._spent_locally.usd() + sum(s.usd for s in self._unsent.values()))

    # -- Redis ------------------------------------------------------------------------------

    def _layout(self, key_id: str) -> KeyLayout:
        return KeyLayout(self._redis.key("limits", f"{{{key_id}}}"))

    async def _call(self, script: str, keys: list[str], args: list[str]) -> Any:
        return await self._scripts.call(script, keys, args)

    def _admitted(self, key: VirtualKey, cost: float, tokens: int, reservation: str,
                  wall: float, starts: dict[Period, float], reply: list[Any]) -> Admission:
        verdict = _text(reply[0])
        if verdict == "budget":
            period = PERIODS[int(reply[1]) - 1]
            over = Overrun(period, float(reply[2]), float(reply[3]), float(reply[4]))
            raise budget_refusal(key, over, cost, wall)
        levels = reply[1:3] if verdict == "ok" else reply[2:4]
        requests = _bucket(key.spec.rpm, float(levels[0]), wall)
        tokens_ = _bucket(key.spec.tpm, float(levels[1]), wall)
        if verdict == "rate":
            kind = _text(reply[1])
            raise rate_refusal(key, kind, 1 if kind == "requests" else tokens, requests,
                               tokens_, wall)
        self._fleet.load(key.id, dict(zip(PERIODS, map(float, reply[4:7]), strict=True)), starts)
        headers = tuple((k.encode(), v.encode())
                        for k, v in rate_headers(requests, tokens_, wall))
        return Admission(key.id, cost, int(reply[3]), headers, reservation)

    async def _send(self, settlement: _Settlement) -> None:
        try:
            await self._settle_remote(settlement)
        except StateUnavailable:
            self._keep_unsent(replace(settlement, sent=True))

    async def _settle_remote(self, s: _Settlement) -> None:
        starts = self._starts(s.wall)
        await self._call("settle", self._layout(s.key_id).limit_keys(starts), settle_args(
            s.reservation, s.usd, s.tokens, s.wall, self._fleet.of(s.key_id, starts),
            period_ttls(starts, self._wall()), fresh=not s.sent))

    async def _resync(self) -> None:
        """Redis is back: the settlements that waited, then what was spent locally."""
        for reservation, settlement in list(self._unsent.items()):
            try:
                await self._settle_remote(settlement)
            except StateUnavailable:
                return  # down again: the next way up carries on
            self._unsent.pop(reservation, None)
        await self._push()

    async def _push(self) -> None:
        """Add what was spent locally to the fleet's numbers (one pipeline, one log line)."""
        batches = self._spent_locally.take()
        if not batches:
            return
        results = await asyncio.gather(*(self._reconcile(b) for b in batches),
                                       return_exceptions=True)
        self._spent_locally.unsent([b for b, r in zip(batches, results, strict=True)
                                    if isinstance(r, BaseException)])
        pushed = [b for b, r in zip(batches, results, strict=True)
                  if not isinstance(r, BaseException)]
        for batch in pushed:
            self.health.reconciled_usd += batch.usd
            # Part of the fleet's spend now: a next outage counts on from it.
            self._fleet.add(batch.key_id, batch.usd, self._batch_starts(batch))
        if pushed:
            log.info("limits: $%.6f spent by %d key(s) while Redis was out of reach added to "
                     "the fleet's budgets", sum(b.usd for b in pushed),
                     len({b.key_id for b in pushed}))

    async def _reconcile(self, batch: Batch) -> None:
        starts = self._batch_starts(batch)
        layout = self._layout(batch.key_id)
        await self._call("reconcile", [layout.pushed(batch.id), *layout.spend(starts)], [
            repr(batch.usd), *self._fleet.of(batch.key_id, starts),
            *period_ttls(starts, self._wall()), str(_PUSHED_TTL_S)])

    @staticmethod
    def _batch_starts(batch: Batch) -> dict[Period, float]:
        return {"day": batch.day, "month": batch.month, "total": 0.0}

    # -- local mode -------------------------------------------------------------------------

    def _backend_changed(self, up: bool) -> None:
        if up:
            self._spawn(self._resync())
            return
        # Local counts start from the fleet's spend as last seen (reservations in flight on
        # other replicas are not known here: while down, limits are this replica's alone).
        starts = self._starts(self._wall())
        for key_id in self._fleet.key_ids():
            self._local.load(key_id, self._fleet.spent(key_id, starts))

    def _take_locally(self, key: VirtualKey, cost: float, tokens: int) -> Admission:
        admission = self._local.take(key, cost, tokens)
        self.health.local_admissions += 1
        return admission

    def _keep_unsent(self, settlement: _Settlement) -> None:
        """A Redis-admitted request ended while Redis is out: its spend counts locally now and
        is settled in Redis (by its reservation id, once) when Redis answers."""
        self._unsent[settlement.reservation] = settlement
        self._local.settle(Admission(settlement.key_id, 0.0, 0), settlement.usd, 0)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _settled(self) -> None:
        """Wait for the settlements and pushes in flight (each bounded by `timeout_s`; ones
        started meanwhile by other requests too, a few rounds at most)."""
        for _ in range(4):
            if not self._tasks:
                return
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _bucket(per_minute: int | None, level: float, wall: float) -> TokenBucket | None:
    return TokenBucket.at_level(per_minute, level, wall) if per_minute else None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
