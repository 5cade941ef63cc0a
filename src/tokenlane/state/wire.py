"""What replicas say to each other through Redis, as bytes (pure: times passed in).

Observations travel with their *age* instead of their time: every replica has its own
monotonic clock (another machine, another process, a test's ManualClock), so a time means
nothing elsewhere, while "measured 0.4 s before it was published" does. The reader adds how
long the entry sat in Redis (from the stream entry's id and Redis's own clock) and places
the observation on its own clock.

A peer is trusted to be a tokenlane replica, not to be well-formed: anything malformed (an
older version, a stray writer) is dropped, never raised into the sync loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from ..keys.records import KeySpec, VirtualKey
from ..routing.circuit import CircuitChange
from ..stats.observation import OUTCOMES, Observation

__all__ = ["decode_circuit_change", "decode_key", "decode_observations",
           "encode_circuit_change", "encode_key", "encode_observations"]

_OUTCOMES = frozenset(OUTCOMES)


def encode_observations(observations: Iterable[Observation], now: float) -> bytes:
    """A batch of observations, each aged as of `now` (the publisher's clock)."""
    return orjson.dumps([
        [o.deployment, max(0.0, now - o.at), o.outcome, o.prompt_tokens, o.output_tokens,
         o.ttft_s, o.decode_tps, o.total_s, o.cost, o.status, o.model, o.chunks, o.queue_s]
        for o in observations])


def decode_observations(data: bytes, now: float, known: frozenset[str]) -> list[Observation]:
    """The batch's observations of deployments in `known`, timed on the reader's clock:
    `now` minus their age (the caller has added the time the batch waited in Redis)."""
    try:
        rows = orjson.loads(data)
    except orjson.JSONDecodeError:
        return []
    out = []
    for row in rows if isinstance(rows, list) else ():
        observation = _observation(row, now, known)
        if observation is not None:
            out.append(observation)
    return out


def _observation(row: Any, now: float, known: frozenset[str]) -> Observation | None:
    if not isinstance(row, list) or len(row) != 13:
        return None
    (deployment, age, outcome, prompt, output, ttft, tps, total, cost, status, model, chunks,
     queue) = row
    if deployment not in known or outcome not in _OUTCOMES or not _number(age):
        return None
    if not all(_number(v) for v in (prompt, output, total, cost, chunks)):
        return None
    if not all(v is None or _number(v) for v in (ttft, tps, status, queue)):
        return None
    return Observation(
        deployment=deployment, at=now - max(0.0, age), outcome=outcome,
        prompt_tokens=int(prompt), output_tokens=int(output), ttft_s=ttft, decode_tps=tps,
        total_s=total, cost=cost, status=None if status is None else int(status),
        model=model if isinstance(model, str) else "", chunks=int(chunks), queue_s=queue)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def encode_circuit_change(replica: str, change: CircuitChange) -> bytes:
    return orjson.dumps({"r": replica, "d": change.deployment, "s": change.state,
                         "t": change.seconds, "o": change.open_for, "rl": change.rate_limited,
                         "a": change.auth_failed})


def decode_circuit_change(data: bytes, known: frozenset[str]) -> tuple[str, CircuitChange] | None:
    """(the sending replica, its change), or None when malformed or of an unknown deployment."""
    try:
        m = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(m, dict) or m.get("d") not in known or m.get("s") not in ("open",
                                                                                  "closed"):
        return None
    replica, seconds, open_for = m.get("r"), m.get("t", 0.0), m.get("o", 0.0)
    if not isinstance(replica, str) or not _number(seconds) or not _number(open_for):
        return None
    return replica, CircuitChange(m["d"], m["s"], float(seconds), float(open_for),
                                 m.get("rl") is True, m.get("a") is True)


def encode_key(replica: str, key: VirtualKey) -> bytes:
    """A virtual key's record as the store keeps it: the hash of its secret, never the secret."""
    return orjson.dumps({"r": replica, "id": key.id, "h": key.secret_hash, "p": key.prefix,
                         "c": key.created_at, "x": key.revoked_at,
                         "s": key.spec.model_dump()})


def decode_key(data: bytes) -> tuple[str, VirtualKey] | None:
    """(the writing replica, the key), or None when malformed (a spec ours would refuse)."""
    try:
        m = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(m, dict):
        return None
    replica, key_id, secret_hash, prefix = m.get("r"), m.get("id"), m.get("h"), m.get("p")
    created, revoked = m.get("c"), m.get("x")
    if not all(isinstance(v, str) for v in (replica, key_id, secret_hash, prefix)):
        return None
    if not _number(created) or not (revoked is None or _number(revoked)):
        return None
    try:
        spec = KeySpec.model_validate_json(orjson.dumps(m.get("s")))
    except ValueError:
        return None
    return replica, VirtualKey(key_id, secret_hash, prefix, spec, float(created),
                               None if revoked is None else float(revoked))
