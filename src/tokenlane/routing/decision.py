"""The decision record: why a deployment was chosen. Sent as `x-tokenlane-route`, logged.

Header format (compact, one line, `; `-separated fields):

    policy=balanced; chosen=blaze/llama-3.3-70b; why=policy;
    candidates=blaze/llama-3.3-70b ttft=0.312 tps=1790 usd=0.000160 n=42,swift/... n=0

`why` is `policy` (ranked first), `explore` (exploration share), `cold` (no samples yet),
`confirm` (its latest samples say it got better: settling whether it did), `recheck` (due a
re-measurement and no prober running), `trial` (its circuit's half-open trial), `probe` (the
gateway's own re-measurement), `order` (the request's order) or `only` (a single candidate
left). `demoted=` lists deployments put last whatever the policy said (`first token overdue`,
`trickling`, `failing`, `does not support logprobs`, `no headroom ...`); `excluded=` deployments
left out for what the request uses; `dropped=` parameters left out of one deployment's body
(`groq/x logprobs+logit_bias`); `note=` what happened after planning (a non-streaming request
restarted elsewhere because its first deployment was trickling). Candidates are listed
best first (at most five); `ttft` seconds at p50 for this prompt, `tps` decode tokens/s,
`usd` predicted cost of this request, `n` samples behind the estimate (0 = prior).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .policies import Candidate

__all__ = ["Decision"]

_HEADER_CANDIDATES = 5


@dataclass(frozen=True, slots=True)
class Decision:
    policy: str
    why: str
    plan: tuple[Candidate, ...]
    # Deployments put after the healthy ones whatever the policy said, and why.
    demoted: tuple[tuple[str, str], ...] = ()
    # What happened after planning that the client should know (a restart elsewhere).
    notes: tuple[str, ...] = ()
    # Deployments left out for what the request uses, and why (tokenlane.capabilities).
    excluded: tuple[tuple[str, str], ...] = ()
    # Parameters left out of the body sent to a deployment (its `drop` rule), comma-joined.
    dropped: tuple[tuple[str, str], ...] = ()

    @property
    def chosen(self) -> str:
        return self.plan[0].deployment.id if self.plan else ""

    def header(self) -> str:
        parts = []
        for c in self.plan[:_HEADER_CANDIDATES]:
            p = c.prediction
            n = c.estimate.samples if c.estimate else 0
            parts.append(f"{c.deployment.id} ttft={p.ttft_s:.3f} tps={p.decode_tps:.0f} "
                         f"usd={p.cost_usd:.6f} n={n}")
        out = (f"policy={self.policy}; chosen={self.chosen}; why={self.why}; "
               f"candidates={','.join(parts)}")
        if self.demoted:
            out += "; demoted=" + ",".join(f"{d} {reason}" for d, reason in self.demoted)
        if self.excluded:
            out += "; excluded=" + ",".join(f"{d} {_header_safe(r)}" for d, r in self.excluded)
        if self.dropped:
            out += "; dropped=" + ",".join(f"{d} {f.replace(',', '+')}" for d, f in self.dropped)
        for note in self.notes:
            out += f"; note={_header_safe(note)}"
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "chosen": self.chosen,
            "why": self.why,
            "demoted": [{"deployment": d, "reason": r} for d, r in self.demoted],
            "notes": list(self.notes),
            "excluded": [{"deployment": d, "reason": r} for d, r in self.excluded],
            "dropped": [{"deployment": d, "parameters": f.split(",")} for d, f in self.dropped],
            "candidates": [
                {
                    "deployment": c.deployment.id,
                    "ttft_s": c.prediction.ttft_s,
                    "decode_tps": c.prediction.decode_tps,
                    "cost_usd": c.prediction.cost_usd,
                    "duration_s": c.prediction.duration_s,
                    "score": c.score,
                    "samples": c.estimate.samples if c.estimate else 0,
                }
                for c in self.plan
            ],
        }


def _header_safe(text: str) -> str:
    """One header field: no `;` (the field separator) and printable ASCII only."""
    return "".join(c if " " <= c <= "~" and c != ";" else " " for c in text)
