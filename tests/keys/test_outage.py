"""What a replica spent while Redis was away, waiting to be pushed (pure bookkeeping)."""

from __future__ import annotations

import itertools

import pytest

from tokenlane.keys.outage import LocalSpend

DAY, MONTH = 1_799_971_200.0, 1_798_761_600.0


def test_spend_is_summed_per_key_and_period_and_a_failed_push_keeps_its_id() -> None:
    ids = (f"b{i}" for i in itertools.count())
    spend = LocalSpend(new_id=lambda: next(ids))
    spend.add("k1", DAY, MONTH, 0.25)
    spend.add("k1", DAY, MONTH, 0.5)
    spend.add("k1", DAY + 86400, MONTH, 0.125)  # after midnight: its own batch
    spend.add("k2", DAY, MONTH, 0.0)  # nothing spent: nothing to push
    assert spend.usd() == pytest.approx(0.875)
    first = spend.take()
    assert [(b.key_id, b.day, b.usd, b.id) for b in first] == [
        ("k1", DAY, 0.75, "b0"), ("k1", DAY + 86400, 0.125, "b1")]
    assert not spend
    spend.add("k1", DAY + 86400, MONTH, 1.0)  # spent while the push was under way
    spend.unsent(first[1:])  # that one's push failed (or its answer was lost)
    again = spend.take()
    # The failed batch is sent again under its id (pushed twice, counted once), the new
    # spend under a new one.
    assert [(b.usd, b.id) for b in again] == [(0.125, "b1"), (1.0, "b2")]
    assert not spend and spend.take() == []
