"""Injectable time, so a simulation can run a 10-minute reporting cycle in ten seconds.

Agents and the runtime ask the clock for the time and sleep through it; nothing else calls
``time.time`` or ``time.sleep``. In the field the speed is 1.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta


class Clock:
    """Wall clock that may run ``speed`` times faster than real time from the moment it starts."""

    def __init__(
        self, speed: float = 1.0, start: datetime | None = None, *, epoch: datetime | None = None
    ) -> None:
        """``epoch`` (simulation): the real instant the sped-up clock started, so that every
        process of one simulated city given the same epoch tells the same time."""
        if speed <= 0:
            raise ValueError(f"clock speed must be > 0, got {speed}")
        self.speed = speed
        self._origin_wall = start or epoch or datetime.now(UTC)
        self._origin_mono = time.monotonic()
        if epoch is not None:
            self._origin_mono -= (datetime.now(UTC) - epoch).total_seconds()

    def monotonic(self) -> float:
        """Seconds on the (scaled) clock since some fixed point; for intervals."""
        return (time.monotonic() - self._origin_mono) * self.speed

    def now(self) -> datetime:
        return self._origin_wall + timedelta(seconds=self.monotonic())

    def real_seconds(self, seconds: float) -> float:
        """How long ``seconds`` of clock time lasts in real time."""
        return max(0.0, seconds) / self.speed

    def wait(self, seconds: float, stop: threading.Event | None = None) -> bool:
        """Sleep ``seconds`` of clock time; returns True early if ``stop`` is set meanwhile."""
        if stop is None:
            time.sleep(self.real_seconds(seconds))
            return False
        return stop.wait(self.real_seconds(seconds))
