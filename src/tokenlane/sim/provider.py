"""The run-time state of one simulated provider: its current spec and its random stream."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Iterator, Mapping
from random import Random
from typing import Any

from pydantic import ValidationError

from ..yamlfile import describe_validation_error
from .loader import SimConfigError
from .ratelimits import RateWindow
from .spec import SimProviderSpec

__all__ = ["RECEIVED_KEPT", "ProviderState"]

RECEIVED_KEPT = 64


class ProviderState:
    """Mutable holder of an immutable spec.

    Requests read `current` once when they start; `update` swaps in a whole new spec, so a
    reply never mixes old and new numbers. One seeded `Random` per provider keeps each
    provider's error draws and jitter reproducible regardless of the others' traffic.

    Beside the spec sits the counter that numbers planned requests for faults on a schedule
    (`flap`). It restarts whenever an update sets `fault` or `flap_period`, so switching a
    provider into a mode starts that mode from its beginning; spec and counter are swapped
    as one pair, so a request never numbers itself on the wrong mode's counter.
    """

    __slots__ = ("_current", "received", "rng", "window")

    def __init__(self, spec: SimProviderSpec) -> None:
        self._current = (spec, itertools.count())
        self.rng = Random(spec.seed)
        self.window = RateWindow()  # per-minute limits, when the spec sets any
        # The raw ASGI headers of the latest requests, newest last: what a gateway in front
        # sent upstream (tests check which client headers were forwarded). Bounded, and one
        # append of a list the server already built, so the hot path does not notice.
        self.received: deque[list[tuple[bytes, bytes]]] = deque(maxlen=RECEIVED_KEPT)

    @property
    def spec(self) -> SimProviderSpec:
        return self._current[0]

    @property
    def current(self) -> tuple[SimProviderSpec, Iterator[int]]:
        """The spec and the request counter, read together; `next(counter)` numbers one."""
        return self._current

    def update(self, fields: Mapping[str, Any]) -> SimProviderSpec:
        """Validate `fields` against the current spec and make the result current."""
        old, counter = self._current
        name = old.name
        if "name" in fields and fields["name"] != name:
            raise SimConfigError(f"sim provider {name!r}: name: cannot be changed at run time")
        try:
            spec = SimProviderSpec.model_validate({**old.model_dump(), **fields})
        except ValidationError as exc:
            _, message = describe_validation_error(exc)
            raise SimConfigError(f"sim provider {name!r}: {message}") from None
        if spec.seed != old.seed:
            self.rng = Random(spec.seed)
        if "fault" in fields or "flap_period" in fields:
            counter = itertools.count()
        self._current = (spec, counter)
        return spec
