"""A GNSS receiver on a pty, streaming NMEA 0183 the way a u-blox or Quectel L76 does.

Each epoch is RMC, VTG, GGA, GSA and a GSV per constellation, CRLF-ended with checksums
(NMEA 0183 §5.3), from a ``where(moment)`` callable — usually ``ChildDay.sky`` — at the times of a
``Clock`` (so a demo running at 60x streams a minute of the day per real second). The talker is
``GN`` for a multi-constellation receiver or ``GP`` for GPS only. Faults: the pty's own (garbage,
silence, unplug); ``drop_line_end()`` runs the next two sentences together.
"""

from __future__ import annotations

import functools
import math
import operator
import os
from collections.abc import Callable
from datetime import UTC, datetime

from edge.runtime.clock import Clock
from sim.child_day import Sky
from sim.serial_pty import PtyDevice

KMH_PER_MPS = 3.6
KNOTS_PER_MPS = 3600 / 1852


def sentence(body: str) -> bytes:
    """``$body*hh\\r\\n``: hh is the XOR of every byte between ``$`` and ``*``."""
    checksum = functools.reduce(operator.xor, body.encode("ascii"), 0)
    return f"${body}*{checksum:02X}\r\n".encode("ascii")


def epoch(moment: datetime, sky: Sky, talker: str = "GN", speed_mps: float = 0.0) -> bytes:
    """One second of receiver output for ``sky`` at ``moment``."""
    at = moment.astimezone(UTC)
    hhmmss = f"{at:%H%M%S}.{at.microsecond // 10000:02d}"
    if sky.fix:
        where = f"{ddmm(sky.lat, 2)},{'N' if sky.lat >= 0 else 'S'},"
        where += f"{ddmm(sky.lon, 3)},{'E' if sky.lon >= 0 else 'W'}"
        status, mode, quality, fix_type = "A", "A", 1, 3
    else:
        where, status, mode, quality, fix_type = ",,,", "V", "N", 0, 1
    knots, kmh = speed_mps * KNOTS_PER_MPS, speed_mps * KMH_PER_MPS
    used = ",".join(f"{n:02d}" for n in range(1, min(sky.satellites, 12) + 1))
    used += "," * (12 - min(sky.satellites, 12))
    hdop = f"{sky.hdop:.2f}" if sky.fix else "99.99"
    in_view = max(sky.satellites, 4)
    return b"".join(
        [
            sentence(f"{talker}RMC,{hhmmss},{status},{where},{knots:.3f},,{at:%d%m%y},,,{mode}"),
            sentence(f"{talker}VTG,,T,,M,{knots:.3f},N,{kmh:.3f},K,{mode}"),
            sentence(
                f"{talker}GGA,{hhmmss},{where},{quality},{sky.satellites:02d},{hdop},"
                f"{'212.0' if sky.fix else ''},M,39.0,M,,"
            ),
            sentence(f"{talker}GSA,A,{fix_type},{used}{hdop},{hdop},{hdop}"),
            sentence(
                f"GPGSV,1,1,{in_view:02d},01,40,083,46,02,17,308,41,03,07,344,39,04,22,228,45"
            ),
        ]
    )


class GnssReceiverSim(PtyDevice):
    """Streams an epoch every ``period_s`` real seconds, at ``clock``'s time."""

    def __init__(
        self,
        where: Callable[[datetime], Sky],
        clock: Clock | None = None,
        *,
        period_s: float = 1.0,
        talker: str = "GN",
        name: str = "ttyAMA0",
        link_dir: str | os.PathLike[str] | None = None,
        seed: int | None = None,
    ) -> None:
        self.where = where
        self.clock = clock or Clock()
        self.talker = talker
        self._previous: tuple[datetime, Sky] | None = None
        self._glue = False
        super().__init__(name, link_dir=link_dir, seed=seed)
        self.stream(period_s, self._epoch)

    def drop_line_end(self) -> None:
        self._glue = True

    def _epoch(self) -> bytes:
        now = self.clock.now()
        sky = self.where(now)
        speed = 0.0
        if self._previous is not None and sky.fix and self._previous[1].fix:
            then, before = self._previous
            seconds = (now - then).total_seconds()
            if seconds > 0:
                dlat = (sky.lat - before.lat) * 111_195.0
                dlon = (sky.lon - before.lon) * 111_195.0 * math.cos(math.radians(sky.lat))
                speed = math.hypot(dlat, dlon) / seconds
        self._previous = (now, sky)
        data = epoch(now, sky, self.talker, speed)
        if self._glue:
            self._glue = False
            data = data.replace(b"\r\n", b"", 1)
        return data


def ddmm(value: float, degree_digits: int, decimals: int = 5) -> str:
    """Decimal degrees to NMEA's ``ddmm.mmmmm`` (``dddmm...`` for longitude), sign dropped."""
    value = abs(value)
    degrees = int(value)
    return f"{degrees:0{degree_digits}d}{(value - degrees) * 60:0{decimals + 3}.{decimals}f}"
