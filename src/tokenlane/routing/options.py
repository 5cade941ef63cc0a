"""Per-request routing options: OpenRouter's `provider` object, plus our additions beside it.

Given in the body (`"provider": {...}`, stripped before the body goes upstream) or, for clients
that cannot change the body, as JSON in the `x-tokenlane-provider` header. Parsed only when
present: most requests pay nothing. Unknown names and bad values are a 400 naming the field.
Values are strict JSON types: `true`/`false` for booleans, numbers for numbers, no coercion
from strings ("yes" is not a boolean).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError

from ..errors import InvalidRequest
from ..types import Failover
from ..yamlfile import key_path

__all__ = ["NO_OPTIONS", "Percentiles", "RoutingOptions", "parse_options", "split_model_suffix"]

Sort = Literal["price", "throughput", "latency", "balanced", "order", "weighted"]

# OpenRouter's model-name shortcuts.
_SUFFIXES: dict[str, Sort] = {"nitro": "throughput", "floor": "price"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Percentiles(_Strict):
    """Thresholds by percentile, as OpenRouter takes them. We estimate TTFT at p50 and p90 and
    decode speed at p50: p75/p99 latency thresholds are checked against p90, throughput
    thresholds against p50."""

    p50: float | None = Field(None, gt=0)
    p75: float | None = Field(None, gt=0)
    p90: float | None = Field(None, gt=0)
    p99: float | None = Field(None, gt=0)


class MaxPrice(_Strict):
    """US dollars per million tokens; deployments priced above are never used."""

    prompt: float | None = Field(None, ge=0)
    completion: float | None = Field(None, ge=0)
    # Accepted for OpenRouter clients and ignored: deployments carry no per-request or
    # per-image price.
    request: float | None = Field(None, ge=0)
    image: float | None = Field(None, ge=0)


class Require(_Strict):
    """Hard constraints (our addition): a deployment predicted to miss any is never used."""

    min_throughput: float | None = Field(None, gt=0, description="decode tokens/s, p50")
    max_latency: float | None = Field(None, gt=0, description="TTFT seconds, p50")
    max_cost: float | None = Field(None, ge=0, description="USD for this request")


# A soft threshold is a number (p50) or percentiles. The union is tagged by the value's JSON
# type so a bad value gets the one error that applies (`p50: -1` -> "greater than 0") instead
# of pydantic trying each branch; the tags are dropped from the error's `param`.
_NUMBER, _PERCENTILES = "number-threshold", "percentiles-threshold"


def _threshold_kind(value: Any) -> str | None:
    if isinstance(value, (dict, Percentiles)):
        return _PERCENTILES
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _NUMBER
    return None


def _by_kind(unit: str) -> Discriminator:
    return Discriminator(
        _threshold_kind, custom_error_type="threshold_type",
        custom_error_message=f"should be a number of {unit} (p50) or an object "
                             "{p50, p75, p90, p99} of them")


_Threshold = Annotated[float, Field(gt=0), Tag(_NUMBER)] | Annotated[Percentiles, Tag(_PERCENTILES)]
Throughput = Annotated[_Threshold, _by_kind("tokens/s")]
Latency = Annotated[_Threshold, _by_kind("seconds")]


class RoutingOptions(_Strict):
    """Per-request routing options: OpenRouter's `provider` object plus ours (`require`,
    `value_of_time`, failure-handling overrides). Unknown fields are an error naming them."""

    # Any sequence of names from Python (a tuple too); JSON only has arrays anyway.
    order: list[str] | None = Field(None, strict=False)
    only: list[str] | None = Field(None, strict=False)
    ignore: list[str] | None = Field(None, strict=False)
    allow_fallbacks: bool = True
    # Only deployments that support every parameter the request uses (tokenlane.capabilities).
    require_parameters: bool = False
    # OpenRouter fields accepted so its clients work unchanged, and ignored here (deployments
    # carry no quantization or data-policy metadata); forwarded when the upstream is
    # OpenRouter itself (see `upstream_object`).
    quantizations: list[str] | None = Field(None, strict=False)
    data_collection: Literal["allow", "deny"] | None = None
    zdr: bool | None = None
    sort: Sort | None = None
    max_price: MaxPrice | None = None
    preferred_min_throughput: Throughput | None = None
    preferred_max_latency: Latency | None = None
    # Our additions.
    require: Require | None = None
    value_of_time: float | None = Field(None, ge=0, description="USD per hour of waiting")
    # Failure handling for this request (overrides the model's `failover`).
    max_attempts: int | None = Field(None, ge=1, le=20)
    deadline_s: float | None = Field(None, gt=0)
    ttft_timeout_s: float | None = Field(None, gt=0)
    stall_timeout_s: float | None = Field(None, gt=0)
    connect_timeout_s: float | None = Field(None, gt=0)
    hedge: bool | None = None
    hedge_delay_s: float | None = Field(None, ge=0)

    def upstream_object(self) -> dict[str, Any]:
        """The OpenRouter fields the client set, for an upstream that is OpenRouter."""
        return self.model_dump(mode="json", exclude_unset=True, include=OPENROUTER_FIELDS)

    def failover(self, default: Failover) -> Failover:
        """The model's failover settings with this request's overrides applied."""
        overrides = {k: getattr(self, k) for k in _FAILOVER_FIELDS if getattr(self, k) is not None}
        return replace(default, **overrides) if overrides else default


NO_OPTIONS = RoutingOptions()
# The `provider` fields that are OpenRouter's own (the rest are our additions).
OPENROUTER_FIELDS = frozenset({
    "order", "only", "ignore", "allow_fallbacks", "require_parameters", "data_collection",
    "zdr", "quantizations", "sort", "max_price", "preferred_min_throughput",
    "preferred_max_latency"})
_FAILOVER_FIELDS = ("max_attempts", "deadline_s", "ttft_timeout_s", "stall_timeout_s",
                    "connect_timeout_s", "hedge", "hedge_delay_s")


def parse_options(body_value: Any, header_value: str | None) -> RoutingOptions:
    """Merge header options under body options (the body wins field by field)."""
    if body_value is None and not header_value:
        return NO_OPTIONS
    merged: dict[str, Any] = {}
    if header_value:
        try:
            from_header = orjson.loads(header_value)
        except orjson.JSONDecodeError:
            raise InvalidRequest("x-tokenlane-provider header is not valid JSON",
                                 param="x-tokenlane-provider") from None
        merged.update(_object(from_header, "x-tokenlane-provider"))
    if body_value is not None:
        merged.update(_object(body_value, "provider"))
    if isinstance(sort := merged.get("sort"), dict):
        # OpenRouter's object form, {"by": "price", "partition": ...}: the order it names.
        merged["sort"] = sort.get("by")
    try:
        return RoutingOptions.model_validate(merged)
    except ValidationError as exc:
        err = exc.errors()[0]
        path = key_path(("provider", *(p for p in err["loc"] if p not in (_NUMBER, _PERCENTILES))))
        message = _PLAIN.get(err["type"]) or err["msg"]
        raise InvalidRequest(f"Invalid routing option {path}: {message}", param=path,
                             code="invalid_routing_option") from None


# Clearer words than pydantic's for the mistakes clients make most.
_PLAIN = {"extra_forbidden": "unknown field", "bool_type": "should be true or false"}


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidRequest(f"{where} must be a JSON object", param=where)
    return value


def split_model_suffix(model: str) -> tuple[str, Sort | None]:
    """`llama-3.3-70b:nitro` → (`llama-3.3-70b`, "throughput")."""
    base, sep, suffix = model.rpartition(":")
    if sep and suffix in _SUFFIXES:
        return base, _SUFFIXES[suffix]
    return model, None
