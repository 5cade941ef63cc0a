"""What a virtual key is: its spec (what an admin sets) and its record (what the store keeps).

`KeySpec` is validated once, when an admin creates or updates a key (pydantic, unknown fields
refused); the hot path reads the frozen `VirtualKey` built from it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..errors import InvalidRequest
from ..routing.options import parse_options

__all__ = ["PERIODS", "Budgets", "KeySpec", "MaxOptions", "Period", "Scope", "VirtualKey"]

Period = Literal["day", "month", "total"]
Scope = Literal["dashboard"]
PERIODS: tuple[Period, ...] = ("day", "month", "total")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Budgets(_Strict):
    """US dollars a key may spend per UTC day, per UTC month, and in all (None: no limit)."""

    day: float | None = Field(None, ge=0, strict=False)
    month: float | None = Field(None, ge=0, strict=False)
    total: float | None = Field(None, ge=0, strict=False)

    def limits(self) -> dict[Period, float]:
        return {p: v for p in PERIODS if (v := getattr(self, p)) is not None}


class MaxOptions(_Strict):
    """Caps on the routing options a request may ask for (a key cannot raise them)."""

    max_attempts: int | None = Field(None, ge=1, le=20)
    deadline_s: float | None = Field(None, gt=0, strict=False)
    # False: requests of this key are never hedged (a hedge can double the upstream spend).
    hedge: bool | None = None


class KeySpec(_Strict):
    """Everything an admin sets on a key; every field optional (no limits by default)."""

    name: str = Field("", max_length=200)
    # Public model names it may use; None: every configured model.
    models: list[str] | None = Field(None, strict=False)
    # Deployments (provider name or full id) it may be routed to; None: any.
    deployments: list[str] | None = Field(None, strict=False)
    # Routing options applied when a request does not set them (the `provider` object).
    default_options: dict[str, Any] = {}
    max_options: MaxOptions = MaxOptions()
    budget_usd: Budgets = Budgets()
    rpm: int | None = Field(None, gt=0)
    tpm: int | None = Field(None, gt=0)
    expires_at: float | None = Field(None, gt=0, strict=False, description="Unix seconds")
    metadata: dict[str, str] = {}
    # What the key may do besides calling models: `dashboard` lets it see /dashboard, which
    # shows every tenant's traffic (so a tenant's key does not have it unless given).
    scopes: list[Scope] = Field([], strict=False)

    @field_validator("default_options")
    @classmethod
    def _valid_options(cls, value: dict[str, Any]) -> dict[str, Any]:
        try:
            parse_options(value, None)
        except InvalidRequest as exc:
            raise ValueError(exc.message) from None
        return value


@dataclass(frozen=True, slots=True)
class VirtualKey:
    """A stored key: its spec plus identity. The secret itself is never kept, only its hash."""

    id: str
    secret_hash: str = field(repr=False)  # not the secret, still nothing for a log line
    prefix: str
    spec: KeySpec
    created_at: float  # Unix seconds
    revoked_at: float | None = None

    def expired(self, now: float) -> bool:
        return self.spec.expires_at is not None and now >= self.spec.expires_at

    def public(self) -> dict[str, Any]:
        """The key as the admin API shows it: no secret, no hash."""
        return {"id": self.id, "object": "virtual_key", "prefix": self.prefix,
                "created_at": self.created_at, "revoked_at": self.revoked_at,
                **self.spec.model_dump()}
