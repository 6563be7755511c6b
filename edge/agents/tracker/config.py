"""The ``tracker:`` section of a child tracker's config file: receiver, modem, button, battery,
and the reporting policy's numbers, each with its unit in its name and its default beside it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import time
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from edge.drivers.cellular import PowerConfig

WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


def parse_window(text: str) -> tuple[time, time]:
    """``"07:00-08:45"`` to its two times; a window may cross midnight (``"20:00-06:00"``)."""
    match = WINDOW.match(text)
    if match is None:
        raise ValueError(f"time window {text!r}: expected HH:MM-HH:MM")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    return time(h1, m1), time(h2, m2)


@dataclass
class GnssConfig:
    # nmea: a receiver on its own UART; sim7600 / quectel: the GNSS inside the modem (AT commands)
    source: Literal["nmea", "sim7600", "quectel"] = "nmea"
    port: str = "/dev/ttyAMA0"  # the NMEA receiver's UART (unused for modem GNSS)
    baudrate: int = 9600
    fix_timeout_s: float = 3.0  # how long one reading waits for the receiver


@dataclass
class ModemConfig:
    port: str = "/dev/ttyUSB2"  # the modem's AT port (ttyUSB2 on SIM7600 and EC25 over USB)
    baudrate: int = 115200
    power: PowerConfig = field(default_factory=PowerConfig)
    command_timeout_s: float = 2.0


@dataclass
class ReportingConfig:
    """How often the tracker looks and what makes it send: see reporting.py for the policy."""

    timezone: str = "Asia/Tokyo"
    # Local times, weekdays, when a child walks to and from school: look and send most often.
    school_windows: list[str] = field(default_factory=lambda: ["07:00-08:45", "14:30-17:30"])
    night: str = "20:00-06:00"  # sparse: the child is home (or should be)
    school_every_s: float = 15.0
    moving_every_s: float = 30.0
    still_every_s: float = 120.0
    night_every_s: float = 600.0
    move_m: float = 50.0  # farther than this from the last sent position: send (moving)
    school_move_m: float = 20.0  # ... inside a school window
    moving_mps: float = 0.7  # a speed above this (slow walk) counts as moving
    heartbeat_s: float = 900.0  # a still child's position at least this often
    settle_s: float = 90.0  # still this long after a walk: its end is sent once more
    night_heartbeat_s: float = 3600.0
    state_every_s: float = 1800.0  # battery and link
    sos_follow_s: float = 900.0  # after SOS, positions at school_every_s for this long

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone: unknown zone {self.timezone!r}") from exc
        for window in [*self.school_windows, self.night]:
            parse_window(window)
        intervals = ("school_every_s", "moving_every_s", "still_every_s", "night_every_s")
        if any(not 1 <= getattr(self, name) <= 3600 for name in intervals):
            raise ValueError(f"{', '.join(intervals)} must be 1..3600 seconds")
        if self.move_m <= 0 or self.school_move_m <= 0 or self.moving_mps <= 0:
            raise ValueError("move_m, school_move_m and moving_mps must be > 0")


@dataclass
class TrackerConfig:
    gnss: GnssConfig = field(default_factory=GnssConfig)
    modem: ModemConfig | None = field(default_factory=ModemConfig)  # None: no cellular modem
    sos_pin: int | str | None = 27  # the SOS button, to ground (pull-up); None: no button
    battery: str | None = "/sys/class/power_supply/battery"  # a power_supply directory
    low_battery_pct: int = 15  # a state message is sent at once when it falls below this
    reporting: ReportingConfig = field(default_factory=ReportingConfig)

    def __post_init__(self) -> None:
        if self.gnss.source != "nmea" and self.modem is None:
            raise ValueError(f"gnss.source {self.gnss.source!r} needs the modem section")
        if not 0 <= self.low_battery_pct <= 100:
            raise ValueError("low_battery_pct must be 0..100")
