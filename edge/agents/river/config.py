"""The ``river:`` section of a gauge's config file: sensor, site geometry, levels, reporting.

Every number a technician sets on site lives here, with the unit in its name; the checks in
``__post_init__`` turn a wrong file into ``config error: FILE: river: ...`` before the agent runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edge.protocol.river import WARNING_KEYS


@dataclass
class SensorConfig:
    model: str = "a02yyuw"  # a02yyuw (DFRobot A02YYUW / JSN-SR04T UART) or mb7389 (MaxBotix)
    port: str = "/dev/ttyAMA0"
    baudrate: int | None = None  # None: the model's own default (9600 for both)


@dataclass
class TemperatureConfig:
    """Where the air temperature for the speed-of-sound correction comes from.

    ``none``: no correction (the sensor compensates itself, as the MB7389 does). ``fixed``: the
    site's typical temperature, ``celsius``. ``file``: a number read from ``path`` every cycle and
    multiplied by ``scale`` (0.001 for a DS18B20's ``/sys/bus/w1/devices/28-*/temperature``, which
    is in millidegrees); when it cannot be read, ``celsius`` stands in and ``temperature_error`` is
    counted. ``reference_c`` is the temperature the sensor's own time-to-distance conversion
    assumes.
    """

    source: Literal["none", "fixed", "file"] = "none"
    celsius: float = 20.0
    path: Path | None = None
    scale: float = 1.0
    reference_c: float = 20.0

    def __post_init__(self) -> None:
        if self.source == "file" and self.path is None:
            raise ValueError("temperature source 'file' needs a path")
        for name in ("celsius", "reference_c"):
            if not -40.0 <= getattr(self, name) <= 60.0:
                raise ValueError(f"temperature.{name} must be -40..60 °C")


@dataclass
class Levels:
    """The site's four warning levels, metres above its gauge datum, lowest first."""

    standby: float  # 水防団待機水位
    caution: float  # 氾濫注意水位
    evacuation: float  # 避難判断水位
    danger: float  # 氾濫危険水位

    def __post_init__(self) -> None:
        values = self.values()
        if any(b <= a for a, b in zip(values, values[1:], strict=False)):
            raise ValueError("levels must rise: standby < caution < evacuation < danger")

    def values(self) -> list[float]:
        return [getattr(self, key) for key in WARNING_KEYS]


@dataclass
class ReportingConfig:
    observe_from_m: float | None = None  # 観測開始水位; None: the standby level
    heartbeat_s: float = 86400.0  # below it, one reading a day
    fast_interval_s: float = 300.0  # 5 min; 120 on the flashiest rivers
    flashy: bool = False  # fast interval whenever at or above the observation-start level
    fast_rise_m_per_h: float = 0.3  # rising faster than this is fast at any level
    rise_window_s: float = 1800.0  # the rise rate is taken over this much history
    hysteresis_m: float = 0.05

    def __post_init__(self) -> None:
        if not 60 <= self.fast_interval_s <= 3600:
            raise ValueError("reporting.fast_interval_s must be 60..3600 seconds")
        if self.heartbeat_s < 600:
            raise ValueError("reporting.heartbeat_s must be at least 600 seconds")
        if self.hysteresis_m < 0 or self.fast_rise_m_per_h <= 0 or self.rise_window_s <= 0:
            raise ValueError(
                "reporting needs hysteresis_m >= 0, fast_rise_m_per_h > 0, rise_window_s > 0"
            )


@dataclass
class RiverConfig:
    sensor: SensorConfig = field(default_factory=SensorConfig)
    # Height of the sensor face above the site's gauge datum (量水標零点高), metres.
    mount_height_m: float = 5.0
    interval_s: float = 600.0  # one measurement every 10 minutes
    burst: int = 9  # samples per measurement
    min_valid: int = 5  # fewer usable samples than this makes the measurement 欠測
    sample_timeout_s: float = 1.0
    outlier_k: float = 3.0  # samples further than k robust deviations from the median are dropped
    outlier_floor_mm: float = 10.0  # ... where a deviation is never taken as less than this
    min_level_m: float | None = None  # the site's plausible range; outside it is out_of_range
    max_level_m: float | None = None
    stuck_cycles: int = 6  # one exact value this many cycles running is a stuck sensor; 0: off
    temperature: TemperatureConfig = field(default_factory=TemperatureConfig)
    levels: Levels | None = None  # None: no warning levels, every reading is sent
    reporting: ReportingConfig = field(default_factory=ReportingConfig)

    def __post_init__(self) -> None:
        if not 1 <= self.min_valid <= self.burst:
            raise ValueError("need 1 <= min_valid <= burst")
        if self.interval_s <= 0:
            raise ValueError("interval_s must be > 0")
        if self.outlier_k <= 0 or self.outlier_floor_mm < 0 or self.stuck_cycles < 0:
            raise ValueError("need outlier_k > 0, outlier_floor_mm >= 0, stuck_cycles >= 0")
        low, high = self.min_level_m, self.max_level_m
        if low is not None and high is not None and low >= high:
            raise ValueError("min_level_m must be below max_level_m")
        if high is not None and high > self.mount_height_m:
            raise ValueError("max_level_m cannot be above the sensor (mount_height_m)")
