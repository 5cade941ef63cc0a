"""The seams of the keys room: where keys and the ledger persist, and where limits are counted.

Two small interfaces, so another backend (Redis, for replicas sharing limits and budgets) can
be added without touching callers: `KeyStore` persists keys and ledger rows (SQLite by
default, `sqlite.py`); `Limiter` holds the fast-moving numbers (token buckets, spend,
reservations) that admission reads on every request (in-process by default, `limiter.py`).
Store calls block (they are disk I/O): callers run them off the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from .records import Period, VirtualKey

__all__ = ["GROUPS", "Admission", "KeyStore", "LedgerRow", "Limiter", "SpendQuery"]


@dataclass(frozen=True, slots=True)
class LedgerRow:
    """One request's spend and measurements (no prompt or answer content)."""

    request_id: str
    key_id: str | None  # None: a master key's request
    model: str
    deployment: str | None  # the one that served; None when none did
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cache_write_tokens: int  # prompt tokens written to the provider's prompt cache
    reasoning_tokens: int
    cost: float  # USD, every attempt that was billed
    ttft_s: float | None
    decode_tps: float | None
    outcome: str  # the serving attempt's outcome, or the error code when none served
    attempts: int
    at: float  # Unix seconds the request ended
    surface: str  # chat.completions, messages, responses
    stream: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


Group = Literal["key", "model", "deployment", "day"]
GROUPS: tuple[Group, ...] = ("key", "model", "deployment", "day")


@dataclass(frozen=True, slots=True)
class SpendQuery:
    key_id: str | None = None
    model: str | None = None
    deployment: str | None = None
    since: float | None = None  # Unix seconds, inclusive
    until: float | None = None  # exclusive
    group_by: Group | None = None


class KeyStore(Protocol):
    def load_keys(self) -> list[VirtualKey]:
        """Every key, revoked ones included."""
        ...

    def put_key(self, key: VirtualKey) -> None:
        """Insert or replace a key (and bump `keys_generation`, in the same transaction)."""
        ...

    def keys_generation(self) -> int:
        """A number that changes whenever any process writes a key to this store: cheap to
        read, so processes sharing the store poll it to notice each other's key changes."""
        ...

    def append(self, rows: Sequence[LedgerRow]) -> None:
        """Write ledger rows, all or none."""
        ...

    def spend(self, query: SpendQuery) -> list[dict[str, Any]]:
        """Totals (requests, cost, tokens) matching `query`, one row per group."""
        ...

    def spent_by_key(self, since: float) -> dict[str, float]:
        """USD per key in the ledger from `since` on."""
        ...

    def latest(self, limit: int, key_id: str | None = None) -> list[LedgerRow]:
        """The newest ledger rows (of one key), newest first."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Admission:
    """What admission took from a key's limits, to be settled when the request ends."""

    key_id: str
    cost: float  # USD reserved
    tokens: int  # tokens taken from the tpm bucket
    headers: tuple[tuple[bytes, bytes], ...] = ()  # x-ratelimit-* for the response
    # The shared backend's id of the reservation (settling it twice is then a no-op); None:
    # taken from this process's own counts.
    reservation: str | None = None


class Limiter(Protocol):
    def load(self, key_id: str, spent: dict[Period, float]) -> None:
        """Start a key's spend from what the ledger says was spent in its current periods."""
        ...

    async def admit(self, key: VirtualKey, cost: float, tokens: int) -> Admission:
        """Take one request, `tokens` and a `cost` reservation from the key's limits, or raise
        BudgetExceeded / RateLimitExceeded and take nothing. (Awaitable so that a shared
        backend can ask Redis; the in-process one never suspends.)"""
        ...

    def settle(self, admission: Admission, cost: float, tokens: int) -> None:
        """Replace the reservation with what the request really cost and used. Never waits:
        a shared backend sends it in the background."""
        ...

    async def usage(self, key_id: str) -> tuple[dict[Period, float], float]:
        """(USD spent per current period, USD reserved by requests in flight)."""
        ...

    async def aclose(self) -> None:
        """Finish what is in flight (settlements not yet sent)."""
        ...
