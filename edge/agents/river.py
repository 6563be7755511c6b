"""River gauge: an ultrasonic sensor looks down at the water; the agent reports the water level.

Each cycle takes a burst of samples, keeps the valid ones, and reports their median as the level
above the site's gauge datum. A cycle with too few valid samples is reported as missing (欠測) with
the reason, never as a number.
"""

from __future__ import annotations

import logging
import statistics
import threading
from collections import Counter
from dataclasses import dataclass, field

from edge.drivers.ultrasonic import open_sensor
from edge.protocol import Envelope, EnvelopeError
from edge.runtime.host import AgentHost

log = logging.getLogger(__name__)


@dataclass
class SensorConfig:
    model: str = "a02yyuw"  # a02yyuw (DFRobot A02YYUW / JSN-SR04T UART) or mb7389 (MaxBotix)
    port: str = "/dev/ttyAMA0"
    baudrate: int | None = None  # None: the model's own default (9600 for both)


@dataclass
class RiverConfig:
    sensor: SensorConfig = field(default_factory=SensorConfig)
    # Height of the sensor face above the site's gauge datum (量水標零点高), metres.
    mount_height_m: float = 5.0
    interval_s: float = 600.0  # one measurement cycle every 10 minutes
    burst: int = 9  # samples per cycle
    min_valid: int = 5  # fewer valid samples than this makes the cycle 欠測
    sample_timeout_s: float = 1.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_valid <= self.burst:
            raise ValueError("need 1 <= min_valid <= burst")
        if self.interval_s <= 0:
            raise ValueError("interval_s must be > 0")


class RiverAgent:
    Config = RiverConfig

    def __init__(self, host: AgentHost, config: RiverConfig) -> None:
        self.host = host
        self.config = config
        s = config.sensor
        self.sensor = open_sensor(s.model, s.port, s.baudrate)
        host.on_command("set_interval", self._set_interval)

    def _set_interval(self, command: Envelope) -> None:
        value = command.data.get("interval_s")
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 10 <= value <= 86400
        ):
            raise EnvelopeError("data.interval_s", f"expected 10..86400 seconds, got {value!r}")
        self.config.interval_s = float(value)
        log.info("interval changed", extra={"fields": {"interval_s": value}})

    def measure(self) -> dict[str, object]:
        """One cycle: the level in metres, or ``missing`` with the reason."""
        cfg = self.config
        samples = self.sensor.burst(cfg.burst, cfg.sample_timeout_s)
        valid = [s.distance_mm for s in samples if s.distance_mm is not None]
        errors = Counter(s.error for s in samples if s.error is not None)
        for name, n in errors.items():
            self.host.health.count(f"sensor_{name}", n)
        if len(valid) < cfg.min_valid:
            reason = errors.most_common(1)[0][0] if errors else "no_samples"
            return {"missing": reason, "valid": len(valid), "samples": len(samples)}
        distance_m = statistics.median(valid) / 1000
        return {
            "level_m": round(cfg.mount_height_m - distance_m, 3),
            "distance_mm": round(distance_m * 1000),
            "valid": len(valid),
            "samples": len(samples),
        }

    def run(self, stop: threading.Event) -> None:
        clock = self.host.clock
        next_at = clock.monotonic()
        while not stop.is_set():
            taken_at = clock.now()
            self.host.publish("telemetry", "level", self.measure(), taken_at)
            next_at += self.config.interval_s
            if clock.wait(next_at - clock.monotonic(), stop):
                return
