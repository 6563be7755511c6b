"""GNSS receivers that stream NMEA 0183 over a UART: where a child tracker or a bus is.

A receiver (u-blox, Quectel L76/L80, MediaTek, ...) sends a burst of sentences once per fix
interval, an *epoch*: typically RMC, VTG, GGA, GSA and one GSV series per constellation. Sentences
are read with pynmea2; the talker says which constellations the receiver used (GP GPS, GL
GLONASS, GA Galileo, GB/BD BeiDou, GQ QZSS — Japan's みちびき — and GN for a combined solution).

An epoch becomes a ``Fix`` only when the receiver says it has one: RMC status ``A`` (and, from
NMEA 2.3, a mode indicator other than ``N``) and GGA quality above 0. When both sentences are in
the epoch both must agree; one saying "no fix" wins. HDOP and the number of satellites used are
kept, so the city can judge how far to trust the position (``Fix.accuracy_m``).

An epoch's sentences are merged by their UTC time (RMC and GGA carry it; GSA, VTG and GSV join the
epoch being read). It ends when a sentence with another time arrives, or when the line goes quiet
for ``EPOCH_GAP_S``.

Damaged input never becomes a position. Each is counted (``counters``) and logged at debug:

``checksum``      the ``*hh`` checksum does not match the sentence (NMEA 0183 §5.3.1).
``no_checksum``   the sentence has no ``*hh``: a receiver talking NMEA always sends one, so a
                  sentence without it was cut short.
``run_together``  two sentences on one line: a line end was lost, and with it perhaps bytes.
``garbage``       a line that is not an NMEA sentence (noise, a wrong baud rate, a binary UBX).
``malformed``     a sentence with a good checksum whose fields do not parse (an impossible time,
                  a latitude of 91°): firmware bugs are rare, but they must not move a child.
``unsupported``   a good sentence of a type this driver does not use (GLL, TXT, ZDA, PUBX...).

and ``sentences`` (used), ``fixes``, ``no_fix`` (epochs without a fix), ``timeout`` and ``port``.
Line ends may be CRLF (the standard), LF or CR.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from typing import Literal, Protocol

import pynmea2

from edge.drivers.closing import Closing
from edge.drivers.serialport import PortError, SerialPort

log = logging.getLogger(__name__)

SENTENCES = ("RMC", "GGA", "GSA", "VTG", "GSV")
TALKERS = ("GP", "GL", "GA", "GB", "BD", "GQ", "GN")
ERRORS = ("checksum", "no_checksum", "run_together", "garbage", "malformed", "unsupported")
COUNTERS = ("sentences", "fixes", "no_fix", *ERRORS, "timeout", "port")
# The sentences of one epoch follow each other within a few tens of ms at 9600 baud; the next
# epoch starts a second (or 0.1 s at 10 Hz) later. A quiet line this long ends the epoch.
EPOCH_GAP_S = 0.2
# Nobody sends lines this long: without a line end in sight it is noise.
MAX_LINE = 256
# User equivalent range error, 1 sigma, for a single-frequency receiver in the open (metres).
# Horizontal uncertainty ~ HDOP x UERE: what OwnTracks calls ``acc`` and Android "accuracy".
UERE_M = 5.0
KNOT_MPS = 1852 / 3600

_SENTENCE = re.compile(rb"^\$(?P<body>[^$*]*)\*(?P<sum>[0-9A-Fa-f]{2})$")
_NMEA_START = re.compile(rb"\$[A-Z]{5},")

Status = Literal["fix", "no_fix", "timeout", "port"]


@dataclass(frozen=True)
class Fix:
    """A position the receiver vouched for, at the time it was measured (UTC).

    ``hdop`` and ``satellites`` (used in the solution) say how good it is; ``quality`` is GGA's
    indicator (1 GPS, 2 DGPS/SBAS, 4 RTK fixed, 5 RTK float, 6 dead reckoning) and ``mode``
    GSA's 2D/3D. Fields a receiver did not send are None.
    """

    ts: datetime
    lat: float
    lon: float
    hdop: float | None = None
    satellites: int | None = None
    altitude_m: float | None = None
    speed_mps: float | None = None
    course_deg: float | None = None
    quality: int | None = None
    mode: Literal["2d", "3d"] | None = None
    satellites_in_view: int | None = None
    talker: str = "GP"
    source: str = "nmea"

    @property
    def accuracy_m(self) -> float | None:
        """Estimated horizontal uncertainty (1 sigma, metres): HDOP x ``UERE_M``."""
        return None if self.hdop is None else round(self.hdop * UERE_M, 1)


class Gnss(Protocol):
    """What a tracker needs from any position source: the NMEA receiver below, or the GNSS
    built into a cellular modem (``edge.drivers.cellular``)."""

    status: Status
    counters: dict[str, int]

    def read(self, timeout_s: float = ...) -> Fix | None: ...

    def close(self) -> None: ...


@dataclass
class _Epoch:
    """The sentences of one epoch read so far."""

    time: str | None = None  # the UTC time field exactly as sent, the epoch's key
    rmc: pynmea2.RMC | None = None
    gga: pynmea2.GGA | None = None
    gsa: pynmea2.GSA | None = None
    vtg: pynmea2.VTG | None = None
    in_view: dict[str, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.rmc is None and self.gga is None


class NmeaParser:
    """NMEA bytes in, fixes out: the receiver's logic without a port, so it can be fed a log.

    ``today`` gives the UTC date for receivers that send GGA but no RMC (the tracker's clock is
    set over the network); an RMC date, once seen, is used instead.
    """

    def __init__(self, today: Callable[[], date] = lambda: datetime.now(UTC).date()) -> None:
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self.satellites_in_view: int | None = None  # of the last complete epoch, fix or not
        self._today = today
        self._buf = bytearray()
        self._epoch = _Epoch()
        self._last_date: date | None = None
        self._last_clock: dtime | None = None

    def feed(self, data: bytes) -> list[Fix]:
        """Take bytes as they came off the wire; the fixes of the epochs they completed."""
        self._buf += data
        fixes: list[Fix] = []
        while (end := _line_end(self._buf)) >= 0:
            line = bytes(self._buf[:end]).strip()
            del self._buf[: end + 1]
            if line and (fix := self._line(line)) is not None:
                fixes.append(fix)
        if len(self._buf) > MAX_LINE:
            self._reject("garbage", bytes(self._buf[:40]))
            self._buf.clear()
        return fixes

    def flush(self) -> Fix | None:
        """End the epoch being read (the line went quiet); its fix, if it has one."""
        return self._close_epoch()

    def reset(self) -> None:
        """Forget partial input (the port was reopened)."""
        self._buf.clear()
        self._epoch = _Epoch()

    def _line(self, line: bytes) -> Fix | None:
        if line.count(b"$") > 1 or len(_NMEA_START.findall(line)) > 1:
            return self._reject("run_together", line)
        if not line.startswith(b"$"):
            return self._reject("garbage", line)
        if b"*" not in line:
            return self._reject("no_checksum" if _NMEA_START.match(line) else "garbage", line)
        if not _SENTENCE.match(line):
            return self._reject("garbage", line)
        try:
            msg = pynmea2.parse(line.decode("ascii"), check=True)
        except pynmea2.ChecksumError:
            return self._reject("checksum", line)
        except pynmea2.SentenceTypeError:
            return self._reject("unsupported", line)
        except (pynmea2.ParseError, UnicodeDecodeError):
            return self._reject("garbage", line)
        kind = getattr(msg, "sentence_type", None)
        if kind not in SENTENCES or getattr(msg, "talker", None) not in TALKERS:
            return self._reject("unsupported", line)
        try:
            return self._sentence(kind, msg)
        except (ValueError, TypeError, ArithmeticError):
            return self._reject("malformed", line)

    def _sentence(self, kind: str, msg: pynmea2.TalkerSentence) -> Fix | None:
        closed = None
        if kind in ("RMC", "GGA"):
            key = msg.data[0]  # the UTC time as sent, empty before the first fix
            new_time = self._epoch.time is not None and key != self._epoch.time
            if new_time or getattr(self._epoch, kind.lower()) is not None:  # or a repeat
                closed = self._close_epoch()
            self._epoch.time = key
            setattr(self._epoch, kind.lower(), msg)
        elif kind == "GSA":
            self._epoch.gsa = self._epoch.gsa or msg  # GN receivers send one per constellation
        elif kind == "VTG":
            self._epoch.vtg = msg
        else:
            self._epoch.in_view[msg.talker] = int(msg.num_sv_in_view or 0)
        self.counters["sentences"] += 1
        return closed

    def _close_epoch(self) -> Fix | None:
        epoch, self._epoch = self._epoch, _Epoch()
        if epoch.empty:
            return None
        if epoch.in_view:
            self.satellites_in_view = sum(epoch.in_view.values())
        try:
            fix = self._fix(epoch)
        except (ValueError, TypeError, ArithmeticError) as exc:
            log.debug("gnss: epoch at %s does not parse: %s", epoch.time, exc)
            self.counters["malformed"] += 1
            return None
        self.counters["fixes" if fix else "no_fix"] += 1
        return fix

    def _fix(self, epoch: _Epoch) -> Fix | None:
        rmc, gga = epoch.rmc, epoch.gga
        if rmc is not None and (rmc.status != "A" or rmc.mode_indicator == "N"):
            return None
        if gga is not None and _integer(gga.data[5]) in (None, 0):
            return None
        if epoch.gsa is not None and epoch.gsa.mode_fix_type == "1":
            return None
        where = gga if gga is not None else rmc
        assert where is not None  # an empty epoch never gets here
        speed = course = None
        if rmc is not None:
            speed, course = _number(rmc.data[6], KNOT_MPS), _number(rmc.data[7])
        if epoch.vtg is not None:  # VTG: course true, T, magnetic, M, knots, N, km/h, K
            speed = _number(epoch.vtg.data[6], 1 / 3.6) if speed is None else speed
            course = _number(epoch.vtg.data[0]) if course is None else course
        hdop = _number(gga.data[7]) if gga is not None else None
        if hdop is None and epoch.gsa is not None:
            hdop = _number(epoch.gsa.hdop)
        mode_fix = epoch.gsa.mode_fix_type if epoch.gsa is not None else None
        return Fix(
            ts=self._timestamp(where.data[0], rmc.data[8] if rmc is not None else None),
            lat=degrees_from_nmea(where.lat, where.lat_dir, 90),
            lon=degrees_from_nmea(where.lon, where.lon_dir, 180),
            hdop=hdop,
            satellites=_integer(gga.data[6]) if gga is not None else None,
            altitude_m=_number(gga.data[8]) if gga is not None else None,
            speed_mps=None if speed is None else round(speed, 2),
            course_deg=course,
            quality=_integer(gga.data[5]) if gga is not None else None,
            mode={"2": "2d", "3": "3d"}.get(mode_fix or ""),
            satellites_in_view=sum(epoch.in_view.values()) if epoch.in_view else None,
            talker=where.talker,
        )

    def _timestamp(self, hhmmss: str, ddmmyy: str | None) -> datetime:
        """The fix time in UTC. Without an RMC date: the last one seen (or the host's), moved
        over midnight when the time of day wrapped."""
        if not re.fullmatch(r"\d{6}(\.\d+)?", hhmmss):
            raise ValueError(f"not a UTC time: {hhmmss!r}")
        clock = dtime(
            int(hhmmss[:2]), int(hhmmss[2:4]), int(hhmmss[4:6]), round(float(hhmmss[6:] or 0) * 1e6)
        )
        if ddmmyy:
            if not re.fullmatch(r"\d{6}", ddmmyy):
                raise ValueError(f"not a date: {ddmmyy!r}")
            yy = int(ddmmyy[4:])  # two digits: 80..99 are 1980.. (GPS time starts 1980)
            day = date(yy + (1900 if yy >= 80 else 2000), int(ddmmyy[2:4]), int(ddmmyy[:2]))
        else:
            day = self._last_date or self._today()
            if self._last_clock is not None and clock < self._last_clock:
                day += timedelta(days=1)
        self._last_date, self._last_clock = day, clock
        return datetime.combine(day, clock, tzinfo=UTC)

    def _reject(self, reason: str, line: bytes) -> None:
        self.counters[reason] += 1
        log.debug("gnss: %s: %r", reason, line[:40])  # the first 40 bytes: never a whole position
        return None


class NmeaReceiver(Closing):
    """A GNSS receiver streaming NMEA on a ``SerialPort``.

    ``read()`` returns the first fix of an epoch that ends *after the call*: sentences already
    buffered are parsed and counted but are old news for a tracker that woke up to report where
    the child is now. ``status`` says what the last read found: ``fix``, ``no_fix`` (the receiver
    is talking but has no position: indoors, a cold start), ``timeout`` (it said nothing) or
    ``port`` (the adapter failed; the next read reopens it).
    """

    baudrate = 9600

    def __init__(self, port: SerialPort, parser: NmeaParser | None = None) -> None:
        self.port = port
        self.parser = parser or NmeaParser()
        self.counters = self.parser.counters
        self.status: Status = "timeout"

    @property
    def satellites_in_view(self) -> int | None:
        return self.parser.satellites_in_view

    def read(self, timeout_s: float = 2.0) -> Fix | None:
        """The next fix within ``timeout_s``; None with ``status`` saying why not."""
        deadline = time.monotonic() + timeout_s
        try:
            while stale := self.port.read(0):
                self.parser.feed(stale)
            no_fix, heard = self.counters["no_fix"], False
            while True:
                data = self.port.read(max(0.0, min(EPOCH_GAP_S, deadline - time.monotonic())))
                if data:
                    heard, fixes = True, self.parser.feed(data)
                elif heard:
                    fixes = [self.parser.flush()]
                else:  # an epoch begun before the call and silence since: old news
                    self.parser.flush()
                    no_fix, fixes = self.counters["no_fix"], []
                if (fix := next((f for f in reversed(fixes) if f is not None), None)) is not None:
                    self.status = "fix"
                    return fix
                if self.counters["no_fix"] > no_fix:
                    self.status = "no_fix"
                    return None
                if time.monotonic() >= deadline:
                    self.status = "no_fix" if heard else "timeout"
                    if not heard:
                        self.counters["timeout"] += 1
                    return None
        except PortError:
            self.parser.reset()
            self.status = "port"
            self.counters["port"] += 1
            return None

    def close(self) -> None:
        self.port.close()


def open_receiver(port: str, baudrate: int = NmeaReceiver.baudrate) -> NmeaReceiver:
    """An NMEA receiver on the serial device at ``port``, opened lazily by the first read."""
    return NmeaReceiver(SerialPort(port, baudrate))


def _line_end(buf: bytearray) -> int:
    cr, lf = buf.find(b"\r"), buf.find(b"\n")
    return min(cr, lf) if cr >= 0 and lf >= 0 else max(cr, lf)


def degrees_from_nmea(value: str, hemisphere: str, limit: int) -> float:
    """``ddmm.mmmm`` (or ``dddmm.mmmm``) and N/S/E/W to signed decimal degrees."""
    if hemisphere not in ("N", "S", "E", "W") or "." not in value:
        raise ValueError(f"not a coordinate: {value!r} {hemisphere!r}")
    head = value.index(".")
    degrees, minutes = int(value[: head - 2]), float(value[head - 2 :])
    if minutes >= 60 or degrees + minutes / 60 > limit:
        raise ValueError(f"coordinate out of range: {value!r}")
    result = degrees + minutes / 60
    return round(-result if hemisphere in ("S", "W") else result, 7)


def _number(text: str | None, scale: float = 1.0) -> float | None:
    """A numeric field; empty is None, anything else that is not a number raises ValueError."""
    return float(text) * scale if text else None


def _integer(text: str | None) -> int | None:
    return int(text) if text else None
