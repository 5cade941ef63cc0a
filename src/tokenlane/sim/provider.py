"""The run-time state of one simulated provider: its current spec and its random stream."""

from __future__ import annotations

from collections.abc import Mapping
from random import Random
from typing import Any

from pydantic import ValidationError

from .loader import SimConfigError, describe_validation_error
from .spec import SimProviderSpec

__all__ = ["ProviderState"]


class ProviderState:
    """Mutable holder of an immutable spec.

    Requests read `spec` once when they start; `update` swaps in a whole new spec, so a
    reply never mixes old and new numbers. One seeded `Random` per provider keeps each
    provider's error draws and jitter reproducible regardless of the others' traffic.
    """

    __slots__ = ("rng", "spec")

    def __init__(self, spec: SimProviderSpec) -> None:
        self.spec = spec
        self.rng = Random(spec.seed)

    def update(self, fields: Mapping[str, Any]) -> SimProviderSpec:
        """Validate `fields` against the current spec and make the result current."""
        name = self.spec.name
        if "name" in fields and fields["name"] != name:
            raise SimConfigError(f"sim provider {name!r}: name: cannot be changed at run time")
        try:
            spec = SimProviderSpec.model_validate({**self.spec.model_dump(), **fields})
        except ValidationError as exc:
            _, message = describe_validation_error(exc)
            raise SimConfigError(f"sim provider {name!r}: {message}") from None
        if spec.seed != self.spec.seed:
            self.rng = Random(spec.seed)
        self.spec = spec
        return spec
