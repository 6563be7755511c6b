"""From a burst of echoes to a water level that can be trusted, or an honest 欠測 with its reason.

One cycle takes a burst of samples and keeps the valid ones; a burst with too few is missing, named
after the most common sensor error. The rest must agree: a sample further than ``outlier_k``
robust deviations (1.4826 × MAD, at least ``outlier_floor_mm``) from the median is an echo off a
branch, a pier or a raindrop and is dropped; if too few survive, the water is ``unstable`` for this
sensor. The median of the survivors is corrected for the speed of sound at the air temperature,
turned into metres above the gauge datum, and checked against the site's plausible range
(``out_of_range``). A sensor that repeats one exact value for ``stuck_cycles`` cycles while real
water always ripples by a millimetre or two is ``stuck`` (a fouled or iced transducer).
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edge.agents.river.config import RiverConfig, TemperatureConfig
from edge.drivers.ultrasonic import Sample

log = logging.getLogger(__name__)

MAD_TO_SIGMA = 1.4826  # a normal distribution's standard deviation is 1.4826 × its MAD


def speed_of_sound(celsius: float) -> float:
    """Speed of sound in dry air, m/s (the linear approximation, within 0.1 % from -20 to 40 °C)."""
    return 331.3 + 0.606 * celsius


class Thermometer:
    """The air temperature now, per ``TemperatureConfig``; never raises."""

    def __init__(self, config: TemperatureConfig) -> None:
        self.config = config
        self.failed = False  # the last read fell back to the configured value

    def celsius(self) -> float:
        cfg = self.config
        self.failed = False
        if cfg.source != "file" or cfg.path is None:
            return cfg.reference_c if cfg.source == "none" else cfg.celsius
        try:
            value = float(cfg.path.read_text(encoding="ascii").split()[0]) * cfg.scale
        except (OSError, ValueError, IndexError) as exc:
            log.debug("temperature %s unreadable: %s", cfg.path, exc)
            self.failed = True
            return cfg.celsius
        if not -40.0 <= value <= 60.0:  # a disconnected DS18B20 reads 85 °C or -127 °C
            self.failed = True
            return cfg.celsius
        return value

    def correction(self) -> float:
        """Factor from the sensor's reported distance to the true one."""
        return speed_of_sound(self.celsius()) / speed_of_sound(self.config.reference_c)


@dataclass(frozen=True)
class Reading:
    """One cycle's result: a level, or the reason there is none."""

    samples: int
    valid: int
    level_m: float | None = None
    distance_mm: int | None = None
    missing: str | None = None

    @property
    def ok(self) -> bool:
        return self.missing is None

    def data(self) -> dict[str, Any]:
        """The telemetry ``level`` message's data (docs/protocol.md)."""
        if self.missing is not None:
            return {"missing": self.missing, "valid": self.valid, "samples": self.samples}
        return {
            "level_m": self.level_m,
            "distance_mm": self.distance_mm,
            "valid": self.valid,
            "samples": self.samples,
        }


class Measurement:
    """Turns bursts of ``Sample`` into ``Reading``; remembers enough to spot a stuck sensor."""

    def __init__(
        self, config: RiverConfig, thermometer: Thermometer, count: Callable[[str, int], None]
    ) -> None:
        self.config = config
        self.thermometer = thermometer
        self.count = count  # what went wrong, by name, for the health status
        self._recent: deque[frozenset[int]] = deque(maxlen=max(1, config.stuck_cycles))

    def reading(self, samples: list[Sample]) -> Reading:
        cfg = self.config
        valid = [s.distance_mm for s in samples if s.distance_mm is not None]
        errors = Counter(s.error for s in samples if s.error is not None)
        for name, times in errors.items():
            self.count(f"sensor_{name}", times)
        n = len(samples)
        if len(valid) < cfg.min_valid:
            self._recent.clear()
            reason = errors.most_common(1)[0][0] if errors else "no_samples"
            return Reading(n, len(valid), missing=reason)
        kept = self._without_outliers(valid)
        if len(kept) < len(valid):
            self.count("sensor_outlier", len(valid) - len(kept))
        if len(kept) < cfg.min_valid:
            self._recent.clear()
            return Reading(n, len(kept), missing="unstable")
        if self._stuck(kept):
            self.count("sensor_stuck", 1)
            return Reading(n, len(kept), missing="stuck")
        distance_mm = statistics.median(kept) * self.thermometer.correction()
        if self.thermometer.failed:
            self.count("temperature_error", 1)
        level_m = round(cfg.mount_height_m - distance_mm / 1000, 3)
        low, high = cfg.min_level_m, cfg.max_level_m
        if (low is not None and level_m < low) or (high is not None and level_m > high):
            self.count("out_of_range", 1)
            return Reading(n, len(kept), missing="out_of_range")
        return Reading(n, len(kept), level_m=level_m, distance_mm=round(distance_mm))

    def _without_outliers(self, values: list[int]) -> list[int]:
        median = statistics.median(values)
        mad = statistics.median(abs(v - median) for v in values)
        limit = self.config.outlier_k * max(MAD_TO_SIGMA * mad, self.config.outlier_floor_mm)
        return [v for v in values if abs(v - median) <= limit]

    def _stuck(self, kept: list[int]) -> bool:
        if not self.config.stuck_cycles:
            return False
        self._recent.append(frozenset(kept))
        full = len(self._recent) == self._recent.maxlen
        return full and len(frozenset().union(*self._recent)) == 1
