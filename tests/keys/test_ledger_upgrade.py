"""A ledger file written before `cache_write_tokens` existed opens, keeps its rows (read as
0 cache writes) and takes new rows with the column."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from tokenlane.keys.sqlite import SqliteStore
from tokenlane.keys.store import LedgerRow

# The ledger table as the first release created it.
OLD_LEDGER = """
CREATE TABLE ledger (
    request_id TEXT NOT NULL, key_id TEXT, model TEXT NOT NULL, deployment TEXT,
    prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL,
    cached_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL, cost REAL NOT NULL,
    ttft_s REAL, decode_tps REAL, outcome TEXT NOT NULL, attempts INTEGER NOT NULL,
    at REAL NOT NULL, surface TEXT NOT NULL, stream INTEGER NOT NULL
);
INSERT INTO ledger VALUES ('old', NULL, 'm', 'a/m', 100, 10, 50, 0, 0.5, 0.1, 90.0, 'ok', 1,
                           1000.0, 'chat.completions', 0);
"""


def test_an_old_ledger_gains_the_cache_write_column(tmp_path: Path) -> None:
    path = str(tmp_path / "keys.db")
    with sqlite3.connect(path) as db:
        db.executescript(OLD_LEDGER)
    store = SqliteStore(path)
    try:
        [old] = store.latest(10)
        assert old.request_id == "old" and old.cache_write_tokens == 0
        assert old.cached_tokens == 50 and old.stream is False
        new = replace(old, request_id="new", cache_write_tokens=40, at=2000.0, stream=True)
        store.append([new])
        assert [r.cache_write_tokens for r in store.latest(10)] == [40, 0]
    finally:
        store.close()
    reopened = SqliteStore(path)  # a second open finds the column there: nothing to add
    try:
        assert isinstance(reopened.latest(1)[0], LedgerRow)
    finally:
        reopened.close()
