"""The default `KeyStore`: one SQLite file in WAL mode holding keys and the spend ledger.

WAL lets the admin API read while the ledger writer commits; `synchronous=NORMAL` keeps every
committed batch across a crash of the gateway (a power cut may lose the last ones). Each batch
is one transaction, so a killed gateway leaves whole rows or none. Every key write bumps
`keys_generation` in its own transaction: the other workers sharing the file poll that one
integer (not PRAGMA data_version, which every ledger batch would bump too) to reload keys. One connection, shared
under a lock, by whichever worker thread runs a call.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson

from .records import KeySpec, VirtualKey
from .store import LedgerRow, SpendQuery

__all__ = ["SqliteStore"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    prefix TEXT NOT NULL,
    created_at REAL NOT NULL,
    revoked_at REAL,
    spec TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ledger (
    request_id TEXT NOT NULL,
    key_id TEXT,
    model TEXT NOT NULL,
    deployment TEXT,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL,
    cost REAL NOT NULL,
    ttft_s REAL,
    decode_tps REAL,
    outcome TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    at REAL NOT NULL,
    surface TEXT NOT NULL,
    stream INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_key_at ON ledger (key_id, at);
CREATE INDEX IF NOT EXISTS ledger_at ON ledger (at);
CREATE TABLE IF NOT EXISTS keys_generation (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO keys_generation (id, value) VALUES (0, 0);
"""

_COLUMNS = tuple(LedgerRow.__dataclass_fields__)
# (column, declaration) added to the ledger after its first release, oldest first.
_ADDED_COLUMNS = (("cache_write_tokens", "INTEGER NOT NULL DEFAULT 0"),)
_INSERT = (f"INSERT INTO ledger ({', '.join(_COLUMNS)}) "
           f"VALUES ({', '.join('?' for _ in _COLUMNS)})")
_GROUP_EXPR = {"key": "key_id", "model": "model", "deployment": "deployment",
               "day": "strftime('%Y-%m-%d', at, 'unixepoch')"}
_FILTERS = (("key_id", "key_id = ?"), ("model", "model = ?"), ("deployment", "deployment = ?"),
            ("since", "at >= ?"), ("until", "at < ?"))


class SqliteStore:
    def __init__(self, path: str) -> None:
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)
        self._add_missing_columns()

    def _add_missing_columns(self) -> None:
        """A ledger written by an older tokenlane lacks the columns added since: add them
        (their rows read 0), so upgrading keeps the file."""
        have = {row[1] for row in self._db.execute("PRAGMA table_info(ledger)")}
        for column, decl in _ADDED_COLUMNS:
            if column not in have:
                self._db.execute(f"ALTER TABLE ledger ADD COLUMN {column} {decl}")

    def load_keys(self) -> list[VirtualKey]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, secret_hash, prefix, created_at, revoked_at, spec FROM keys "
                "ORDER BY created_at, id").fetchall()
        return [VirtualKey(id=r[0], secret_hash=r[1], prefix=r[2], created_at=r[3],
                           revoked_at=r[4], spec=KeySpec.model_validate_json(r[5]))
                for r in rows]

    def put_key(self, key: VirtualKey) -> None:
        spec = orjson.dumps(key.spec.model_dump()).decode()
        with self._lock, self._transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO keys (id, secret_hash, prefix, created_at, revoked_at, "
                "spec) VALUES (?, ?, ?, ?, ?, ?)",
                (key.id, key.secret_hash, key.prefix, key.created_at, key.revoked_at, spec))
            self._db.execute("UPDATE keys_generation SET value = value + 1 WHERE id = 0")

    def keys_generation(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM keys_generation WHERE id = 0").fetchone()
        return int(row[0])

    def append(self, rows: Sequence[LedgerRow]) -> None:
        values = [tuple(getattr(row, c) for c in _COLUMNS) for row in rows]
        with self._lock, self._transaction():
            self._db.executemany(_INSERT, values)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT (ROLLBACK on any error); the caller holds the lock."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def spend(self, query: SpendQuery) -> list[dict[str, Any]]:
        where, params = [], []
        for field, clause in _FILTERS:
            value = getattr(query, field)
            if value is not None:
                where.append(clause)
                params.append(value)
        group = _GROUP_EXPR[query.group_by] if query.group_by else "NULL"
        sql = (f"SELECT {group}, COUNT(*), COALESCE(SUM(cost), 0), "
               "COALESCE(SUM(prompt_tokens), 0), COALESCE(SUM(completion_tokens), 0), "
               "COALESCE(SUM(cached_tokens), 0), COALESCE(SUM(reasoning_tokens), 0) "
               f"FROM ledger {'WHERE ' + ' AND '.join(where) if where else ''} "
               f"{'GROUP BY 1 ORDER BY 3 DESC' if query.group_by else ''}")
        with self._lock:
            rows = self._db.execute(sql, params).fetchall()
        out = []
        for r in rows:
            row: dict[str, Any] = {query.group_by: r[0]} if query.group_by else {}
            row.update(requests=r[1], cost_usd=r[2], prompt_tokens=r[3],
                       completion_tokens=r[4], cached_tokens=r[5], reasoning_tokens=r[6])
            out.append(row)
        return out

    def spent_by_key(self, since: float) -> dict[str, float]:
        with self._lock:
            rows = self._db.execute(
                "SELECT key_id, SUM(cost) FROM ledger WHERE at >= ? AND key_id IS NOT NULL "
                "GROUP BY key_id", (since,)).fetchall()
        return {key_id: cost for key_id, cost in rows}

    def latest(self, limit: int, key_id: str | None = None) -> list[LedgerRow]:
        where, params = ("WHERE key_id = ? ", [key_id]) if key_id is not None else ("", [])
        with self._lock:
            found = self._db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM ledger {where}"
                "ORDER BY at DESC, rowid DESC LIMIT ?", (*params, limit)).fetchall()
        return [LedgerRow(*r[:-1], stream=bool(r[-1])) for r in found]

    def close(self) -> None:
        with self._lock:
            self._db.close()
