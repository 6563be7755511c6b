"""The river gauge agent: measure on the clock, send what the reporting policy says."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from edge.agents.river.config import RiverConfig
from edge.agents.river.measurement import Measurement, Reading, Thermometer
from edge.agents.river.reporting import ReportingPolicy
from edge.drivers.ultrasonic import open_sensor
from edge.protocol import Envelope, EnvelopeError
from edge.runtime.host import AgentHost
from edge.runtime.outbox import OutboxFull

log = logging.getLogger(__name__)


class RiverAgent:
    Config = RiverConfig

    def __init__(self, host: AgentHost, config: RiverConfig) -> None:
        self.host = host
        self.config = config
        s = config.sensor
        self.sensor = open_sensor(s.model, s.port, s.baudrate)
        self.measurement = Measurement(config, Thermometer(config.temperature), host.health.count)
        self.policy = ReportingPolicy(config.levels, config.reporting)
        self._mode = ""  # quiet, active or fast: logged when it changes
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

    def measure(self) -> tuple[Reading, datetime]:
        """One burst: the reading, and its time, when the middle one of its valid samples came
        (a burst slowed by a silent sensor is not dated by its timeouts)."""
        clock = self.host.clock
        samples, times = [], []
        while len(samples) < self.config.burst:
            samples.append(self.sensor.read(self.config.sample_timeout_s))
            times.append(clock.now())
            if samples[-1].error == "port":  # the adapter is gone: no point waiting for more
                break
        valid = [t for s, t in zip(samples, times, strict=True) if s.ok] or times
        return self.measurement.reading(samples), valid[len(valid) // 2]

    def cycle(self) -> float:
        """Measure once and queue what the policy says; the seconds until the next measurement."""
        reading, at = self.measure()
        decision = self.policy.decide(self.host.clock.monotonic(), reading, self.config.interval_s)
        if decision.mode != self._mode:
            self._mode = decision.mode
            fields = {"mode": decision.mode, "every_s": decision.next_in_s}
            log.info("reporting mode", extra={"fields": fields})
        try:
            for event in decision.events:
                self.host.publish("event", "level_crossing", event, at)
                log.info("level crossing", extra={"fields": event})
            if decision.send_reading:
                self.host.publish("telemetry", "level", reading.data(), at)
        except OutboxFull as exc:  # refused, or the disk is full: counted, and the gauge goes on
            self.host.health.count("outbox_refused")
            self.host.health.error(str(exc))
            log.warning("reading not stored", extra={"fields": {"error": str(exc)}})
        return decision.next_in_s

    def run(self, stop: threading.Event) -> None:
        clock = self.host.clock
        next_at = clock.monotonic()
        try:
            while not stop.is_set():
                next_at = max(next_at + self.cycle(), clock.monotonic())  # late: skip, not burst
                if clock.wait(next_at - clock.monotonic(), stop):
                    return
        finally:
            self.sensor.close()
