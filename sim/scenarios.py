"""Water-level scenarios for simulated river gauges: what the river does over (simulated) time."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class FlashFlood:
    """Base flow, then a rise to ``peak_m`` over ``rise_s`` and a slower recession.

    Levels are metres above the gauge datum; times are seconds of simulated time.
    """

    base_m: float = 0.6
    peak_m: float = 3.4
    start_s: float = 3600.0
    rise_s: float = 3 * 3600.0
    fall_s: float = 9 * 3600.0
    ripple_m: float = 0.02  # wind and surface waves

    def level_at(self, t: float) -> float:
        ripple = self.ripple_m * math.sin(t / 37.0)
        if t < self.start_s:
            return self.base_m + ripple
        into = t - self.start_s
        height = self.peak_m - self.base_m
        if into < self.rise_s:
            shape = 0.5 - 0.5 * math.cos(math.pi * into / self.rise_s)
        else:
            shape = math.exp(-3.0 * (into - self.rise_s) / self.fall_s)
        return self.base_m + height * shape + ripple
