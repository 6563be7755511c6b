"""The child tracker agent: look at the sky on the policy's clock, send what it says, and an SOS
at once.

The positions leave through the host's outbox like every reading (MQTT over the modem's network
interface); the modem driver here only watches the link and power-cycles a hung modem. Nothing
this agent logs carries a position: a log line says that a position was sent, never where.
"""

from __future__ import annotations

import logging
import threading

from gpiozero import Button
from gpiozero.exc import GPIOZeroError

from edge.agents.tracker.config import TrackerConfig
from edge.agents.tracker.reporting import ReportingPolicy
from edge.drivers.battery import SysfsBattery
from edge.drivers.cellular import MODEMS, CellularModem, LinkHealth, open_modem
from edge.drivers.gnss import Fix, Gnss, open_receiver
from edge.protocol.tracker import POSITION, SOS, STATE, Position
from edge.runtime.host import AgentHost

log = logging.getLogger(__name__)
POLL_S = 0.25  # real seconds between looks at the SOS button while waiting


class TrackerError(RuntimeError):
    """A part the config names cannot be used (a wrong GPIO pin)."""


class TrackerAgent:
    Config = TrackerConfig

    def __init__(self, host: AgentHost, config: TrackerConfig) -> None:
        self.host = host
        self.config = config
        self.policy = ReportingPolicy(config.reporting)
        self.modem: CellularModem | None = None
        if config.modem is not None:
            m = config.modem
            self.modem = open_modem(m.port, m.baudrate, m.power)
            self.modem.command_timeout_s = m.command_timeout_s
        self.gnss: Gnss
        if config.gnss.source == "nmea":
            self.gnss = open_receiver(config.gnss.port, config.gnss.baudrate)
        else:
            assert self.modem is not None  # the config checks it
            self.gnss = MODEMS[config.gnss.source](self.modem)
        self.battery = SysfsBattery(config.battery) if config.battery else None
        self.last_fix: Fix | None = None
        self.link: LinkHealth | None = None
        self._sos = threading.Event()
        self.button: Button | None = None
        if config.sos_pin is not None:
            try:
                self.button = Button(config.sos_pin, pull_up=True, bounce_time=0.05)
            except GPIOZeroError as exc:
                raise TrackerError(f"SOS button on pin {config.sos_pin!r}: {exc}") from exc
            self.button.when_pressed = self._sos.set
        self._low_battery = False

    def run(self, stop: threading.Event) -> None:
        clock = self.host.clock
        next_state = clock.monotonic()
        try:
            while not stop.is_set():
                if self._sos.is_set():
                    self._send_sos()
                wait = self.look()
                if clock.monotonic() >= next_state or self._battery_fell():
                    self.send_state()
                    next_state = clock.monotonic() + self.config.reporting.state_every_s
                if self._wait(wait, stop):
                    return
        finally:
            self.close()

    def look(self) -> float:
        """Read the receiver once and send what the policy says; seconds until the next look."""
        clock = self.host.clock
        fix = self.gnss.read(self.config.gnss.fix_timeout_s)
        if fix is not None:
            self.last_fix = fix
        decision = self.policy.decide(fix, clock.now(), clock.monotonic())
        if decision.send and fix is not None:
            self.host.publish("telemetry", POSITION, self._position(fix, decision.why), fix.ts)
            self.host.health.count(f"position_{decision.why}")
        elif fix is None:
            self.host.health.count(f"gnss_{self.gnss.status}")
        return decision.next_in_s

    def send_state(self) -> None:
        """Battery, cellular link and receiver health: for the city's device list, not the map."""
        data: dict[str, object] = {"gnss": self.gnss.status}
        if self.battery is not None:
            data |= self.battery.read().data()
        if self.modem is not None:
            self.link = self.modem.health()
            data |= self.link.data()
            data["cycles"] = self.modem.counters["power_cycles"]
        self.host.publish("telemetry", STATE, data)

    def _send_sos(self) -> None:
        self._sos.clear()
        clock = self.host.clock
        self.policy.sos(clock.monotonic())
        data: dict[str, object] = {}
        if self.last_fix is not None:
            data = self._position(self.last_fix, "sos")
            data["age_s"] = round((clock.now() - self.last_fix.ts).total_seconds())
        self.host.publish("event", SOS, data)
        self.host.health.count("sos")
        log.warning("SOS pressed: event queued")

    def _position(self, fix: Fix, why: str) -> dict[str, object]:
        source = "gnss" if fix.source == "nmea" else "modem"
        acc, hdop, sats = fix.accuracy_m, fix.hdop, fix.satellites
        return Position(fix.lat, fix.lon, acc, fix.speed_mps, source, why, hdop, sats).data()

    def _battery_fell(self) -> bool:
        """True once when the battery falls below the low mark (the state goes out at once)."""
        if self.battery is None:
            return False
        percent = self.battery.read().percent
        low = percent is not None and percent < self.config.low_battery_pct
        fell, self._low_battery = low and not self._low_battery, low
        return fell

    def _wait(self, seconds: float, stop: threading.Event) -> bool:
        """Sleep ``seconds`` of clock time, waking early for SOS; True when stopped."""
        clock = self.host.clock
        until = clock.monotonic() + seconds
        while (left := until - clock.monotonic()) > 0:
            if stop.wait(min(POLL_S, clock.real_seconds(left))):
                return True
            if self._sos.is_set():
                return False
        return stop.is_set()

    def close(self) -> None:
        self.gnss.close()
        if self.modem is not None:  # closing twice is harmless: the modem GNSS closes it too
            self.modem.close()
        if self.button is not None:
            self.button.close()
