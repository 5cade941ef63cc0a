"""Failure modes a simulated provider can be switched into (`SimProviderSpec.fault`).

A fault is a pure function over the planned reply: it gets the reply the provider would have
given (a `Completion` with its per-token delays, or a `Failure`) and returns the reply to give
instead. Stalls, outages, slow drifts and truncated streams all fit that shape, because the
plan already holds every delay and every token before anything is sent.

Adding a mode is one entry in `FAULTS`: the spec validator accepts exactly these names and
`plan.plan_reply` applies the chosen one last. None are defined yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from random import Random
from types import MappingProxyType
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .plan import Reply
    from .spec import SimProviderSpec

__all__ = ["FAULTS", "Fault"]


class Fault(Protocol):
    def __call__(self, reply: Reply, spec: SimProviderSpec, rng: Random) -> Reply:
        """Return the reply to give instead of `reply` (pure: randomness only from `rng`)."""
        ...


# Read-only so no code path can register a mode at run time: the set of modes is code.
FAULTS: Mapping[str, Fault] = MappingProxyType({})
