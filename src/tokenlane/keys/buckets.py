"""A token bucket, as OpenAI meters requests and tokens per minute: pure, time passed in.

Full at `capacity`, refilled continuously at `capacity` per minute. A request takes what it
needs when there is enough; a token count settled later may take more than was there (the
level goes below zero and the next requests wait for the refill), or give back what was
reserved and not used.
"""

from __future__ import annotations

__all__ = ["TokenBucket", "format_reset"]


class TokenBucket:
    __slots__ = ("_at", "_level", "capacity", "rate")

    def __init__(self, per_minute: int, now: float) -> None:
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0  # per second
        self._level = self.capacity
        self._at = now

    @classmethod
    def at_level(cls, per_minute: int, level: float, now: float) -> TokenBucket:
        """A bucket as another holder of it (Redis) reported it: `level` at `now`."""
        bucket = cls(per_minute, now)
        bucket._level = level
        return bucket

    def level(self, now: float) -> float:
        if now > self._at:
            self._level = min(self.capacity, self._level + (now - self._at) * self.rate)
            self._at = now
        return self._level

    def can_take(self, amount: float, now: float) -> bool:
        """Enough for `amount` (capped at capacity, so one big request can pass a full bucket
        rather than never)?"""
        return self.level(now) >= min(amount, self.capacity)

    def take(self, amount: float, now: float) -> None:
        self._level = self.level(now) - amount

    def give(self, amount: float, now: float) -> None:
        self._level = min(self.capacity, self.level(now) + amount)

    def remaining(self, now: float) -> int:
        return max(0, int(self.level(now)))

    def full_in(self, now: float) -> float:
        """Seconds until the bucket is full again (OpenAI's `x-ratelimit-reset-*`)."""
        return (self.capacity - self.level(now)) / self.rate

    def available_in(self, amount: float, now: float) -> float:
        """Seconds until `amount` can be taken."""
        missing = min(amount, self.capacity) - self.level(now)
        return max(0.0, missing / self.rate)


def format_reset(seconds: float) -> str:
    """OpenAI's duration format for reset headers: `20ms`, `1s`, `6m0s`, `1h2m3s`."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
