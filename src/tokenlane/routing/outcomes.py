"""What a failed attempt means for the walk, and what a walk's failures add up to (pure: the
circuit board is read, nothing is sent). Shared by the chat engine and the pass-through
surfaces, so every surface waits, skips and fails the same way."""

from __future__ import annotations

from ..errors import Attempt, NoDeploymentAvailable
from .attempts import AttemptFailed, PlanWalk
from .circuit import CircuitBoard

__all__ = ["all_failed", "retry_wait"]


def retry_wait(walk: PlanWalk, circuits: CircuitBoard, exc: AttemptFailed, number: int,
               time_left: float) -> float:
    """Seconds to wait before the next attempt after attempt `number` failed with `exc`.

    Only a retry on the same deployment waits (its Retry-After, or a short backoff); falling
    back to another deployment goes at once. A retry that cannot happen in the `time_left`, or
    on a deployment whose circuit is open because it is failing, is not waited for: the
    deployment is dropped from the walk, which moves on."""
    if not walk.next_is_same():
        return 0.0
    deployment = exc.attempt.deployment
    backoff = exc.retry_after if exc.retry_after is not None else 0.1 * number
    if circuits.state(deployment) == "open":
        if not circuits.rate_limited(deployment):
            walk.drop(deployment)
            return 0.0
        backoff = max(backoff, circuits.retry_in(deployment))
    if backoff >= time_left:
        walk.drop(deployment)
        return 0.0
    return max(0.0, backoff)


def all_failed(model: str, attempts: list[Attempt], walk: PlanWalk, circuits: CircuitBoard
               ) -> NoDeploymentAvailable:
    """The error for a walk that served nothing: its attempts, and the deployments it skipped
    with why; a 429 when every one is rate limiting, a 502 when every one refused our
    credentials."""
    skipped = [Attempt(d, "circuit_open", None, "skipped: " + (
        "honouring its Retry-After" if circuits.rate_limited(d) else
        "it refused the gateway's credentials" if circuits.auth_failed(d) else
        "failing")) for d in walk.skipped]
    waits = [w for a in attempts + skipped if (w := circuits.retry_in(a.deployment)) > 0]
    retry_after = min(waits) if waits else None
    if attempts:
        rate_limited = all(a.outcome == "429" for a in attempts)
    else:
        rate_limited = bool(skipped) and all(
            circuits.rate_limited(a.deployment) for a in skipped)
    if rate_limited:
        # Every provider is rate limiting (now, or by a Retry-After we are still honouring):
        # a 429 tells the client to back off.
        return NoDeploymentAvailable(f"All deployments of {model} are rate limited",
                                     tuple(attempts + skipped), retry_after, rate_limited=True)
    if all(a.outcome == "auth" or circuits.auth_failed(a.deployment)
           for a in attempts + skipped):
        # Our credentials, not the client's: a gateway fault (502), never a 401 that
        # would read as the client's own key being wrong.
        return NoDeploymentAvailable(
            f"Every deployment of {model} refused the gateway's upstream credentials",
            tuple(attempts + skipped), None, auth_failed=True)
    if not attempts:
        return NoDeploymentAvailable(
            f"No deployment of {model} is available (circuits open)", tuple(skipped),
            retry_after)
    return NoDeploymentAvailable(f"All deployments of {model} failed",
                                 tuple(attempts + skipped), retry_after)
