"""Pure progress rules: the seed's percent formula, the edit cadence, and time estimates from history."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ima.models import ESTIMATED_SECONDS, ModelId

from .texts import Texts

# The seed's cadence for progress edits: Fast every 30 s, Pro every 45 s.
CADENCE_S: dict[ModelId, float] = {ModelId.FAST: 30.0, ModelId.PRO: 45.0}


def percent(elapsed: float, estimated_max: float) -> int:
    """The seed's estimate: P = min(95, floor(elapsed / estimated_max * 100)), never negative."""
    if estimated_max <= 0:
        return 95
    return max(0, min(95, math.floor(elapsed / estimated_max * 100)))


@dataclass(frozen=True)
class Estimate:
    low: int  # seconds
    high: int
    from_history: bool = False
    samples: int = 0


def estimate(model: ModelId, history: Sequence[float], *, min_samples: int = 5) -> Estimate:
    """The expected run-time range: the seed's fixed table until enough jobs of the same kind finished,
    then the 20th-90th percentile of their run times."""
    times = sorted(t for t in history if t > 0)
    if len(times) < max(1, min_samples):
        low, high = ESTIMATED_SECONDS[model]
        return Estimate(low, high)
    low = _quantile(times, 0.2)
    high = max(_quantile(times, 0.9), low + 1)
    return Estimate(int(low), math.ceil(high), from_history=True, samples=len(times))


def _quantile(sorted_values: Sequence[float], q: float) -> float:
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


class Cadence:
    """Decides when a progress edit is due: at most one per interval, and only when the text changed."""

    def __init__(self, interval: float, *, last_at: float | None = None) -> None:
        self.interval = interval
        self._last_at = last_at
        self._last_text: str | None = None

    def ready(self, now: float) -> bool:
        """Whether the interval has passed (checked first, so no text is built between edits)."""
        return self._last_at is None or now - self._last_at >= self.interval

    def due(self, now: float, text: str) -> bool:
        return text != self._last_text and self.ready(now)

    def mark(self, now: float, text: str) -> None:
        self._last_at = now
        self._last_text = text


def format_duration(texts: Texts, seconds: float, locale: str) -> str:
    """Elapsed time in the user's words: `2m 05s` / `2分05秒`; under a minute `45s` / `45秒`."""
    m, s = divmod(max(0, int(seconds)), 60)
    if m:
        return texts("unit.minutes_seconds", locale, m=m, s=f"{s:02d}")
    return texts("unit.seconds", locale, n=s)


def format_range(texts: Texts, low: int, high: int, locale: str) -> str:
    """An estimate range in the user's words: seconds when short, else whole minutes."""
    if high < 90:
        return texts("unit.range_seconds", locale, low=low, high=high)
    lo_m, hi_m = max(1, round(low / 60)), max(1, math.ceil(high / 60))
    if lo_m == hi_m:
        return texts("unit.about_minutes", locale, n=hi_m)
    return texts("unit.range_minutes", locale, low=lo_m, high=hi_m)


def bar(pct: int, width: int = 10) -> str:
    filled = max(0, min(width, round(pct / 100 * width)))
    return "▓" * filled + "░" * (width - filled)
