"""Ultrasonic distance sensors that stream over a UART: the river gauges' water-level probe.

The sensor hangs over the water looking down and reports, many times a second, the distance to
the surface; turning that into a level is the agent's business. Two families are supported:

* ``a02yyuw`` — DFRobot A02YYUW (and JSN-SR04T-style sensors in UART auto mode): binary frames
  ``FF H L SUM`` every ~100 ms at 9600 8N1, distance = ``H*256+L`` mm,
  ``SUM = (0xFF+H+L) & 0xFF``. Rated 30..4500 mm; it reports 0 when nothing echoed.
* ``mb7389`` — MaxBotix HRXL-MaxSonar-WRMT: ASCII ``R`` + four digits (mm) + CR at 9600 baud,
  ~every 150 ms. 300 means "300 or closer", 5000 (its maximum) means no target. The stock part
  has RS-232 polarity; on a Pi UART use the TTL variant or an inverter.

``read()`` returns the first frame that *arrives after the call* (of frames arriving together, the
newest good one): bytes that were already buffered are parsed and their errors counted, but not
returned, because an agent that samples every ten minutes wants the water level now, not a queue
of old frames. A bad frame is reported, never turned into a reading. ``Sample.error`` names, also
keys of ``counters``:

``checksum``  an A02YYUW frame whose SUM byte does not match.
``malformed`` an MB7389 frame of the right length that is not ``R`` + four digits + CR.
``partial``   a frame cut short: it stopped for longer than a frame takes (``FRAME_GAP_S``), or an
              MB7389 frame ended or restarted early.
``no_echo``   the sensor saw no target: its no-target value, or a distance outside its range.
``timeout``   no frame within ``timeout_s``: a silent sensor, or wiring.
``port``      the port failed or cannot be opened; the next read tries to open it again.

``counters`` also has ``ok`` (good frames) and ``garbage_bytes`` (bytes skipped hunting for the
start of a frame).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import ClassVar

from edge.drivers.closing import Closing
from edge.drivers.serialport import PortError, SerialPort

log = logging.getLogger(__name__)

ERRORS = ("checksum", "malformed", "partial", "no_echo", "timeout", "port")
COUNTERS = ("ok", "garbage_bytes", *ERRORS)
# A frame takes ~5 ms at 9600 baud and frames come every 100-150 ms: a longer silence inside a
# frame means the rest was lost.
FRAME_GAP_S = 0.05


@dataclass(frozen=True)
class Sample:
    """A distance, or the reason there is none (one of ``ERRORS``)."""

    distance_mm: int | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class UltrasonicSensor(Closing):
    """A streaming ultrasonic sensor on a ``SerialPort``. Subclasses decode one model's frames."""

    model: ClassVar[str]
    baudrate: ClassVar[int] = 9600
    min_mm: ClassVar[int]
    max_mm: ClassVar[int]

    def __init__(self, port: SerialPort) -> None:
        self.port = port
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._buf = bytearray()
        self._last_rx = 0.0

    def read(self, timeout_s: float = 1.0) -> Sample:
        """The next frame to arrive, as a ``Sample``; never raises for sensor or port trouble."""
        deadline = time.monotonic() + timeout_s
        try:
            while stale := self.port.read(0):
                self._take(stale)
            self._newest()  # complete frames already here are old news
            while True:
                if (sample := self._newest()) is not None:
                    return sample
                now = time.monotonic()
                wait = deadline - now
                if self._buf:  # inside a frame: its rest must follow promptly
                    wait = min(wait, self._last_rx + FRAME_GAP_S - now)
                # Even when time is up, look once more: bytes that came while this process was
                # not scheduled are no gap on the wire.
                if data := self.port.read(max(0.0, wait)):
                    self._take(data)
                elif wait <= 0:
                    error = "partial" if self._buf else "timeout"
                    self._buf.clear()
                    return self._count(Sample(error=error))
        except PortError:
            self._buf.clear()
            return self._count(Sample(error="port"))

    def burst(self, n: int, timeout_s: float = 1.0) -> list[Sample]:
        """``n`` consecutive frames, each within ``timeout_s``; fewer if the port fails."""
        samples: list[Sample] = []
        while len(samples) < n:
            samples.append(self.read(timeout_s))
            if samples[-1].error == "port":
                break
        return samples

    def close(self) -> None:
        self.port.close()

    def _frame(self) -> Sample | None:
        """Consume one frame (or one bad frame) from ``_buf``; None if more bytes are needed."""
        raise NotImplementedError

    def _take(self, data: bytes) -> None:
        if data:
            self._buf += data
            self._last_rx = time.monotonic()

    def _newest(self) -> Sample | None:
        """Decode (and count) every complete frame buffered; the newest good one wins."""
        newest = None
        while (sample := self._frame()) is not None:
            self._count(sample)
            if newest is None or sample.ok or not newest.ok:
                newest = sample
        return newest

    def _count(self, sample: Sample) -> Sample:
        self.counters[sample.error or "ok"] += 1
        if sample.error:
            log.debug("%s on %s: %s", self.model, self.port.path, sample.error)
        return sample

    def _skip_to(self, header: int) -> bool:
        """Drop bytes before the next header; False (buffer empty) if there is none yet."""
        start = self._buf.find(header)
        skipped = len(self._buf) if start < 0 else start
        if skipped:
            self.counters["garbage_bytes"] += skipped
            del self._buf[:skipped]
        return start >= 0

    def _distance(self, mm: int) -> Sample:
        if self.min_mm <= mm <= self.max_mm:
            return Sample(distance_mm=mm)
        return Sample(error="no_echo")


class A02YYUW(UltrasonicSensor):
    model = "a02yyuw"
    min_mm = 30
    max_mm = 4500

    def _frame(self) -> Sample | None:
        if not self._skip_to(0xFF) or len(self._buf) < 4:
            return None
        high, low, checksum = self._buf[1:4]
        if (0xFF + high + low) & 0xFF != checksum:
            del self._buf[:1]  # the 0xFF may have been noise: look for a header inside the rest
            return Sample(error="checksum")
        del self._buf[:4]
        return self._distance(high << 8 | low)


class MB7389(UltrasonicSensor):
    model = "mb7389"
    min_mm = 300
    max_mm = 4999  # 5000 is its "no target" report

    def _frame(self) -> Sample | None:
        if not self._skip_to(ord("R")):
            return None
        stops = [i for i in (self._buf.find(b"R", 1, 6), self._buf.find(b"\r", 1, 6)) if i > 0]
        if not stops:
            if len(self._buf) < 6:
                return None
            del self._buf[:1]
            return Sample(error="malformed")
        stop = min(stops)
        if self._buf[stop] == ord("R"):  # a new frame began before this one ended
            del self._buf[:stop]
            return Sample(error="partial")
        digits = bytes(self._buf[1:stop])
        del self._buf[: stop + 1]
        if len(digits) < 4:
            return Sample(error="partial")
        if not digits.isdigit():
            return Sample(error="malformed")
        return self._distance(int(digits))


MODELS: dict[str, type[UltrasonicSensor]] = {cls.model: cls for cls in (A02YYUW, MB7389)}


def open_sensor(model: str, port: str, baudrate: int | None = None) -> UltrasonicSensor:
    """A driver for ``model`` on the serial device at ``port``, opened lazily by the first read."""
    try:
        cls = MODELS[model.lower()]
    except KeyError:
        raise ValueError(
            f"unknown ultrasonic model {model!r}; choose one of: {', '.join(MODELS)}"
        ) from None
    return cls(SerialPort(port, baudrate or cls.baudrate))
