"""The routing decision as a client sees it: parsed from the gateway's `x-tokenlane-route`
header, or taken from the in-process engine's decision record (pure; no I/O).

The header (see `tokenlane.routing.decision`) looks like

    policy=balanced; chosen=blaze/llama-3.3-70b; why=policy;
    candidates=blaze/llama-3.3-70b ttft=0.312 tps=1790 usd=0.000160 n=42,swift/... n=0

Fields this version does not know are kept (`RouteInfo.extra`, `RouteCandidate.extra`), so a
newer gateway does not break an older client.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["ROUTE_HEADER", "RouteCandidate", "RouteInfo", "parse_route_header"]

ROUTE_HEADER = "x-tokenlane-route"

# Header key → (RouteCandidate field, type).
_CANDIDATE_KEYS: dict[str, tuple[str, type[float | int]]] = {
    "ttft": ("ttft_s", float),
    "tps": ("decode_tps", float),
    "usd": ("cost_usd", float),
    "n": ("samples", int),
}


@dataclass(frozen=True, slots=True)
class RouteCandidate:
    """One deployment the router considered, with what it predicted for this request.

    `score` (what the policy ranked by, lower is better) and `duration_s` (predicted total
    time) are known in-process only; the gateway's header does not carry them.
    """

    deployment: str
    ttft_s: float | None = None
    decode_tps: float | None = None
    cost_usd: float | None = None
    samples: int = 0
    score: float | None = None
    duration_s: float | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def provider(self) -> str:
        """The provider part of the deployment id (`blaze` of `blaze/llama-3.3-70b`)."""
        return self.deployment.partition("/")[0]


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """Why a deployment was chosen: the policy, the reason and the candidates, best first.

    `why` is `policy` (ranked first), `explore`, `cold` (never measured), `order` or `only`.
    From the gateway's header at most five candidates are listed; in-process, all of them.
    """

    policy: str
    chosen: str
    why: str
    candidates: tuple[RouteCandidate, ...] = ()
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def provider(self) -> str:
        """The chosen deployment's provider name."""
        return self.chosen.partition("/")[0]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RouteInfo:
        """From `Decision.to_dict()` (the in-process engine's record) or `to_dict()` output."""
        return cls(
            policy=str(data.get("policy", "")),
            chosen=str(data.get("chosen", "")),
            why=str(data.get("why", "")),
            candidates=tuple(
                RouteCandidate(
                    deployment=str(c["deployment"]),
                    ttft_s=c.get("ttft_s"),
                    decode_tps=c.get("decode_tps"),
                    cost_usd=c.get("cost_usd"),
                    samples=int(c.get("samples") or 0),
                    score=c.get("score"),
                    duration_s=c.get("duration_s"),
                    extra=dict(c.get("extra") or {}),
                )
                for c in data.get("candidates") or ()
            ),
            extra=dict(data.get("extra") or {}),
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict in the shape of `Decision.to_dict()` (plus `extra`);
        `from_dict` reads it back."""
        return asdict(self)


def parse_route_header(value: str) -> RouteInfo:
    """Parse an `x-tokenlane-route` header value; ValueError when it is not one."""
    fields: dict[str, str] = {}
    rest = value.strip()
    # `candidates` has spaces and commas in its value: split it off first (it runs to the
    # next `; ` field, or to the end).
    head, sep, candidates = rest.partition("candidates=")
    if sep and head and not head.rstrip().endswith(";"):
        raise ValueError(f"not an {ROUTE_HEADER} header: {value!r}")
    candidates, _, tail = candidates.partition(";")
    for part in (*head.split(";"), *tail.split(";")):
        part = part.strip()
        if not part:
            continue
        key, eq, val = part.partition("=")
        if not eq:
            raise ValueError(f"not an {ROUTE_HEADER} header (field {part!r}): {value!r}")
        fields[key.strip()] = val.strip()
    if "policy" not in fields or "chosen" not in fields:
        raise ValueError(f"not an {ROUTE_HEADER} header (no policy/chosen): {value!r}")
    policy, chosen = fields.pop("policy"), fields.pop("chosen")
    why = fields.pop("why", "")
    parsed = tuple(_candidate(c, value) for c in candidates.strip().split(",") if c.strip())
    return RouteInfo(policy=policy, chosen=chosen, why=why, candidates=parsed, extra=fields)


def _candidate(text: str, header: str) -> RouteCandidate:
    deployment, *pairs = text.split()
    values: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for pair in pairs:
        key, eq, raw = pair.partition("=")
        if not eq:
            raise ValueError(f"bad candidate {text!r} in {ROUTE_HEADER}: {header!r}")
        known = _CANDIDATE_KEYS.get(key)
        if known is None:
            extra[key] = raw
            continue
        name, kind = known
        try:
            values[name] = kind(raw)
        except ValueError:
            raise ValueError(f"bad {key}={raw!r} in {ROUTE_HEADER}: {header!r}") from None
    return RouteCandidate(deployment=deployment, extra=extra, **values)
