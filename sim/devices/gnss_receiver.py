"""A GNSS receiver on a pty, streaming NMEA 0183 (RMC + GGA, GPS talker) once a second.

Where it is comes from a callable (a bus on its timetable, a child walking to school), asked
each epoch for ``(lat, lon, speed_mps, course_deg)`` at the simulation clock's time, or None
for no fix (a tunnel: the receiver keeps talking, with status ``V`` and quality 0).
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from datetime import UTC, datetime

from edge.runtime.clock import Clock
from sim.serial_pty import PtyDevice

KNOT_MPS = 1852 / 3600
Where = Callable[[datetime], tuple[float, float, float, float] | None]


def sentence(body: str) -> bytes:
    """``$body*hh`` + CRLF; the checksum is the XOR of the bytes between ``$`` and ``*``."""
    checksum = functools.reduce(operator.xor, body.encode("ascii"), 0)
    return f"${body}*{checksum:02X}\r\n".encode("ascii")


def _angle(value: float, degree_digits: int, hemispheres: str) -> str:
    hemisphere = hemispheres[0] if value >= 0 else hemispheres[1]
    value = abs(value)
    degrees = int(value)
    minutes = (value - degrees) * 60
    return f"{degrees:0{degree_digits}d}{minutes:08.5f},{hemisphere}"


def epoch(at: datetime, fix: tuple[float, float, float, float] | None) -> bytes:
    """One second of a receiver's output: RMC then GGA (NMEA 0183 v4.10 fields, UTC)."""
    at = at.astimezone(UTC)
    hhmmss = at.strftime("%H%M%S.") + f"{at.microsecond // 10000:02d}"
    ddmmyy = at.strftime("%d%m%y")
    if fix is None:
        return sentence(f"GPRMC,{hhmmss},V,,,,,,,{ddmmyy},,,N") + sentence(
            f"GPGGA,{hhmmss},,,,,0,00,99.99,,,,,,"
        )
    lat, lon, speed, course = fix
    where = f"{_angle(lat, 2, 'NS')},{_angle(lon, 3, 'EW')}"
    knots = speed / KNOT_MPS
    return sentence(f"GPRMC,{hhmmss},A,{where},{knots:.3f},{course:.2f},{ddmmyy},,,A") + sentence(
        f"GPGGA,{hhmmss},{where},1,09,0.9,212.0,M,39.0,M,,"
    )


class GnssSim(PtyDevice):
    def __init__(
        self,
        where: Where,
        clock: Clock,
        name: str = "ttyGNSS",
        period_s: float = 1.0,
        link_dir: str | None = None,
    ) -> None:
        self.where = where
        self.clock = clock
        super().__init__(name, link_dir=link_dir)
        self.stream(clock.real_seconds(period_s), self._epoch)

    def _epoch(self) -> bytes:
        now = self.clock.now()
        return epoch(now, self.where(now))
