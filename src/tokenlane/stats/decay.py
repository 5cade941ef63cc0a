"""Time-decayed estimators (pure; the caller passes the time).

A sample's weight halves every `half_life` seconds, so yesterday's speed fades and this hour's
dominates. Decay is applied lazily on update and on read, so idle estimators cost nothing.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["DecayedMean", "DecayedQuantiles", "DecayedRegression", "LevelShift"]


def _decay(age: float, half_life: float) -> float:
    return math.exp(-math.log(2) * max(0.0, age) / half_life)


class DecayedMean:
    __slots__ = ("_at", "_sum", "_weight", "half_life")

    def __init__(self, half_life: float) -> None:
        self.half_life = half_life
        self._sum = 0.0
        self._weight = 0.0
        self._at = 0.0

    def add(self, value: float, at: float, weight: float = 1.0) -> None:
        factor = _decay(at - self._at, self.half_life) if self._weight else 1.0
        self._sum = self._sum * factor + value * weight
        self._weight = self._weight * factor + weight
        self._at = max(self._at, at)

    def weight(self, now: float) -> float:
        return self._weight * _decay(now - self._at, self.half_life)

    def value(self) -> float | None:
        """The weighted mean (decay scales sum and weight alike, so it needs no `now`)."""
        return self._sum / self._weight if self._weight > 0 else None


class DecayedQuantiles:
    """Weighted quantiles over the most recent `capacity` samples, weights decaying with age."""

    __slots__ = ("_samples", "half_life")

    def __init__(self, half_life: float, capacity: int = 256) -> None:
        self.half_life = half_life
        self._samples: deque[tuple[float, float]] = deque(maxlen=capacity)

    def add(self, value: float, at: float) -> None:
        self._samples.append((at, value))

    def __len__(self) -> int:
        return len(self._samples)

    def forget_before(self, at: float) -> None:
        """Drop samples taken before `at` (a level shift made them describe another regime)."""
        while self._samples and self._samples[0][0] < at:
            self._samples.popleft()

    def quantiles(self, qs: tuple[float, ...], now: float) -> tuple[float, ...] | None:
        if not self._samples:
            return None
        weighted = sorted(
            (value, _decay(now - at, self.half_life)) for at, value in self._samples
        )
        total = sum(w for _, w in weighted)
        out = []
        for q in qs:
            target = q * total
            running = 0.0
            chosen = weighted[-1][0]
            for value, w in weighted:
                running += w
                if running >= target:
                    chosen = value
                    break
            out.append(chosen)
        return tuple(out)


class DecayedRegression:
    """Decayed least squares of y on x: how TTFT grows with prompt length."""

    __slots__ = ("_at", "_w", "_x", "_xx", "_xy", "_y", "half_life")

    def __init__(self, half_life: float) -> None:
        self.half_life = half_life
        self._w = self._x = self._y = self._xx = self._xy = 0.0
        self._at = 0.0

    def add(self, x: float, y: float, at: float) -> None:
        f = _decay(at - self._at, self.half_life) if self._w else 1.0
        self._w = self._w * f + 1.0
        self._x = self._x * f + x
        self._y = self._y * f + y
        self._xx = self._xx * f + x * x
        self._xy = self._xy * f + x * y
        self._at = max(self._at, at)

    def mean_x(self) -> float | None:
        return self._x / self._w if self._w else None

    def slope(self, min_spread: float) -> float:
        """dy/dx, or 0 while the x values are too close together to tell (spread = stddev)."""
        if self._w < 2:
            return 0.0
        mean_x = self._x / self._w
        var = self._xx / self._w - mean_x * mean_x
        if var <= min_spread * min_spread:
            return 0.0
        cov = self._xy / self._w - mean_x * (self._y / self._w)
        return max(0.0, cov / var)  # prompt length never makes the first token come sooner


class LevelShift:
    """Notices when a measured level moves, so history stops outvoting the present.

    Time decay alone adapts slowly under steady traffic: after a deployment's decode speed
    drops, its decayed median moves only once the new samples outweigh every old one still in
    the window (about as many requests as it served in the last half-life). Here, `samples`
    observations in a row that all sit more than `factor` times away from the decayed
    geometric mean, on the same side, are taken as a new level: `add` then returns when the
    run began, and the caller forgets what came before. A run in progress is `pending`.

    With 10% jitter nothing ever comes near a factor of 1.5; a false alarm needs `samples`
    consecutive outliers on one side, and costs only a median rebuilt from those samples.

    A return to the level the last shift left (a provider recovering) needs one sample less:
    that level is not a new claim but one the deployment already held, and every request spent
    confirming it again is a request kept away from a provider that is well.
    """

    __slots__ = ("_log", "_previous", "_run", "_side", "factor", "half_life", "samples",
                 "shifted_at")

    def __init__(self, half_life: float, factor: float, samples: int) -> None:
        self.half_life = half_life
        self.factor = factor
        self.samples = samples
        self._log = DecayedMean(half_life)  # log values: the mean is a geometric mean
        self._run: list[tuple[float, float]] = []  # (at, log value) of the current outliers
        self._side = 0
        self._previous: float | None = None  # log level before the last confirmed shift
        self.shifted_at: float | None = None  # when the last confirmed shift's run began

    def level(self) -> float | None:
        """The current level (decayed geometric mean of the samples it rests on)."""
        center = self._log.value()
        return None if center is None else math.exp(center)

    def previous(self) -> float | None:
        """The level in force before the last confirmed shift, if any."""
        return None if self._previous is None else math.exp(self._previous)

    @property
    def pending(self) -> bool:
        """Some recent samples disagree with the level, not yet enough to call it a shift."""
        return bool(self._run)

    def pending_run(self) -> tuple[int, float, float] | None:
        """The unconfirmed run, if any: its side (+1 above the level, -1 below), its level
        (geometric mean) and when its latest sample was taken."""
        if not self._run:
            return None
        level = math.exp(sum(x for _, x in self._run) / len(self._run))
        return self._side, level, self._run[-1][0]

    def add(self, value: float, at: float) -> float | None:
        """Count one sample; the time the new level began when this one confirms a shift."""
        if value <= 0:
            return None
        x = math.log(value)
        center = self._log.value()
        side = 0
        if center is not None and abs(x - center) > math.log(self.factor):
            side = 1 if x > center else -1
        if side == 0 or self.samples < 1:
            self._run.clear()
            self._log.add(x, at)
            return None
        if side != self._side:
            self._run.clear()
        self._side = side
        self._run.append((at, x))
        if len(self._run) < self._needed():
            return None  # held out of the mean until confirmed: one outlier moves nothing
        began = self._run[0][0]
        self._previous, self.shifted_at = center, began
        self._log = DecayedMean(self.half_life)
        for t, v in self._run:
            self._log.add(v, t)
        self._run.clear()
        return began

    def _needed(self) -> int:
        """Samples that confirm the current run: one fewer when it returns to `previous`."""
        if self._previous is not None and self.samples > 1:
            level = sum(x for _, x in self._run) / len(self._run)
            if abs(level - self._previous) <= math.log(self.factor) / 2:
                return self.samples - 1
        return self.samples
