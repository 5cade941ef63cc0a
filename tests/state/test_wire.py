"""What replicas publish: observations keep their age, circuit changes their meaning, key
records their every field (the secret's hash, never the secret), and anything malformed from
a peer is dropped rather than raised."""

from __future__ import annotations

import orjson
import pytest

from tokenlane.keys.records import KeySpec, VirtualKey
from tokenlane.keys.secrets import hash_secret, new_key_id, new_secret, shown_prefix
from tokenlane.routing.circuit import CircuitChange
from tokenlane.state.wire import (
    decode_circuit_change,
    decode_key,
    decode_observations,
    encode_circuit_change,
    encode_key,
    encode_observations,
)
from tokenlane.stats.observation import Observation

KNOWN = frozenset({"p/m", "q/m"})


def test_observations_travel_with_their_age() -> None:
    sent = [Observation("p/m", at=100.0, outcome="ok", prompt_tokens=12, output_tokens=40,
                        ttft_s=0.2, decode_tps=300.0, total_s=0.33, cost=1e-5, status=200,
                        model="m", chunks=40, queue_s=0.01),
            Observation("q/m", at=103.5, outcome="timeout", total_s=2.0)]
    data = encode_observations(sent, now=104.0)
    # Another clock altogether: the ages (4 s and 0.5 s) are what carries over.
    got = decode_observations(data, now=5000.0, known=KNOWN)
    assert [o.at for o in got] == [4996.0, 4999.5]
    assert [o.__class__(**{**_fields(o), "at": 0}) for o in got] == [
        o.__class__(**{**_fields(o), "at": 0}) for o in sent]


def _fields(o: Observation) -> dict[str, object]:
    return {name: getattr(o, name) for name in o.__slots__}


@pytest.mark.parametrize("data", [
    b"not json", b"{}", b"[1, 2]",
    orjson.dumps([["x/unknown", 0, "ok", 0, 0, None, None, 0, 0, None, "", 0, None]]),
    orjson.dumps([["p/m", 0, "exploded", 0, 0, None, None, 0, 0, None, "", 0, None]]),
    orjson.dumps([["p/m", -1, "ok", 0, 0, None, None, 0, 0, None, "", 0, None]]),
    orjson.dumps([["p/m", 0, "ok", "12", 0, None, None, 0, 0, None, "", 0, None]]),
    orjson.dumps([["p/m", 0, "ok", 0, 0, None, None, 0, 0, None, "", 0]]),
])
def test_malformed_observations_are_dropped(data: bytes) -> None:
    assert decode_observations(data, now=10.0, known=KNOWN) == []


def test_circuit_changes_round_trip_and_junk_is_dropped() -> None:
    change = CircuitChange("p/m", "open", 2.5, 2.0, rate_limited=True)
    assert decode_circuit_change(encode_circuit_change("r1", change), KNOWN) == ("r1", change)
    for junk in (b"[]", b"nope", orjson.dumps({"r": "r1", "d": "p/m", "s": "ajar"}),
                 orjson.dumps({"r": "r1", "d": "zz/m", "s": "open"}),
                 orjson.dumps({"r": 5, "d": "p/m", "s": "closed"})):
        assert decode_circuit_change(junk, KNOWN) is None


def test_key_records_round_trip_without_the_secret_and_junk_is_dropped() -> None:
    key_id = new_key_id()
    secret = new_secret(key_id)
    spec = KeySpec(name="team", models=["m"], rpm=10, budget_usd={"day": 1.5},
                   max_options={"max_attempts": 2}, metadata={"owner": "ana"},
                   expires_at=1_900_000_000)
    key = VirtualKey(key_id, hash_secret(secret), shown_prefix(secret), spec, 1_800_000_000.5,
                     revoked_at=1_800_000_100.25)
    message = encode_key("r1", key)
    assert secret.encode() not in message
    assert decode_key(message) == ("r1", key)
    assert decode_key(encode_key("r2", VirtualKey(key_id, "h", "p", KeySpec(), 1.0))) == (
        "r2", VirtualKey(key_id, "h", "p", KeySpec(), 1.0))
    good = orjson.loads(message)
    for junk in (b"[]", b"nope", orjson.dumps({**good, "h": None}),
                 orjson.dumps({**good, "c": "yesterday"}), orjson.dumps({**good, "x": -1}),
                 orjson.dumps({**good, "s": {"rpm": -3}}),
                 orjson.dumps({**good, "s": {"unknown_field": 1}}),
                 orjson.dumps({k: v for k, v in good.items() if k != "s"})):
        assert decode_key(junk) is None, junk
