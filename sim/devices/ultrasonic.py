"""Ultrasonic level sensors on a pty: the frames a real A02YYUW or MB7389 would put on the wire.

The distance comes from a callable so a scenario can drive a flood curve; faults are the ones seen
on real gauges: noise, spikes (an echo off a branch or a bridge pier), a stuck reading, corrupted
and truncated frames, plus the line faults of ``PtyDevice`` (garbage, silence, unplug/replug).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sim.serial_pty import PtyDevice


@dataclass(frozen=True)
class Format:
    """How one model puts a distance on the wire."""

    period_s: float
    no_echo_mm: int  # what the sensor sends when nothing echoes
    min_mm: int  # closer targets read as this
    max_mm: int  # farther targets get no echo
    encode: Callable[[int], bytes]
    corrupt: Callable[[bytes], bytes]  # damage a detectable driver must reject


def _a02_encode(mm: int) -> bytes:
    high, low = mm >> 8 & 0xFF, mm & 0xFF
    return bytes((0xFF, high, low, (0xFF + high + low) & 0xFF))


FORMATS = {
    "a02yyuw": Format(
        period_s=0.1,
        no_echo_mm=0,
        min_mm=0,  # inside its 30 mm blind zone it still reports what it measures
        max_mm=4500,
        encode=_a02_encode,
        corrupt=lambda frame: frame[:3] + bytes((frame[3] ^ 0x5A,)),
    ),
    "mb7389": Format(
        period_s=0.15,
        no_echo_mm=5000,
        min_mm=300,
        max_mm=5000,
        encode=lambda mm: b"R%04d\r" % mm,
        corrupt=lambda frame: frame[:2] + b"?" + frame[3:],
    ),
}


class UltrasonicSim(PtyDevice):
    """A sensor streaming frames of ``model`` at its own rate, distance from ``distance_mm()``.

    ``distance_mm()`` returning None means nothing to echo off. ``noise_mm`` is the standard
    deviation of seeded Gaussian noise. ``last_mm`` is the value of the last frame sent.
    """

    def __init__(
        self,
        model: str,
        distance_mm: Callable[[], float | None],
        *,
        noise_mm: float = 0.0,
        seed: int | None = 0,
        name: str = "ttyUSB0",
        link_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        try:
            self.format = FORMATS[model]
        except KeyError:
            choices = ", ".join(FORMATS)
            raise ValueError(f"unknown model {model!r}; choose one of: {choices}") from None
        self.model = model
        self.distance_mm = distance_mm
        self.noise_mm = noise_mm
        self.last_mm: int | None = None
        self._spike_probability = 0.0
        self._spike_mm = 0.0
        self._stuck = False
        self._faults: deque[str] = deque()  # frame faults to apply, one per frame, in order
        super().__init__(name, link_dir=link_dir, seed=seed)
        self.stream(self.format.period_s, self._emit)

    def spikes(self, probability: float, offset_mm: float = -1000.0) -> None:
        """Each frame, with ``probability``, reads ``offset_mm`` off (negative: a nearer echo)."""
        self._spike_probability, self._spike_mm = probability, offset_mm

    def stuck(self, on: bool = True) -> None:
        """Repeat the last value sent, whatever the water does (a fouled transducer)."""
        self._stuck = on

    def corrupt_next(self, frames: int = 1) -> None:
        """Damage the next frames on the wire (A02YYUW: checksum; MB7389: a non-digit)."""
        self._faults.extend(["corrupt"] * frames)

    def truncate_next(self, frames: int = 1) -> None:
        """Send only the first half of the next frames, as if bytes were lost."""
        self._faults.extend(["truncate"] * frames)

    def _measure(self) -> int:
        fmt = self.format
        if self._stuck and self.last_mm is not None:
            return self.last_mm
        distance = self.distance_mm()
        if distance is None:
            return fmt.no_echo_mm
        distance += self.rng.gauss(0.0, self.noise_mm) if self.noise_mm else 0.0
        if self.rng.random() < self._spike_probability:
            distance += self._spike_mm
        if distance > fmt.max_mm:
            return fmt.no_echo_mm
        return max(fmt.min_mm, round(distance))

    def _emit(self) -> bytes:
        self.last_mm = self._measure()
        frame = self.format.encode(self.last_mm)
        try:
            fault = self._faults.popleft()
        except IndexError:  # deque, not a counter: the test thread adds while this thread takes
            return frame
        return self.format.corrupt(frame) if fault == "corrupt" else frame[: len(frame) // 2]
