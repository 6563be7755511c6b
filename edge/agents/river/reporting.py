"""When a gauge speaks: Japan's crisis-management water-level gauge (危機管理型水位計) practice.

Below the observation-start level (観測開始水位) the river is of no concern: the gauge measures
every ``interval_s`` but sends only a daily heartbeat, which keeps a radio link's airtime and a
battery for the storm. At or above it, every reading is sent every ``interval_s``; on a flashy
river, or whenever the water rises faster than ``fast_rise_m_per_h``, every ``fast_interval_s``.
Crossing any of the four warning levels (水防団待機, 氾濫注意, 避難判断, 氾濫危険), up or down,
sends an event at once; the link sends events confirmed. A level counts as crossed downward only
``hysteresis_m`` below it, so waves at a threshold do not send a storm of events.

A gauge that starts above a level reports that crossing, rising, with its first reading: after a
power cut in a storm a repeated warning is harmless, a missed one is not. A site without levels
sends every reading (the behaviour of a gauge on a wired link that need not save airtime).

The policy is pure: it is given readings and times and says what to send and when to measure next.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from edge.agents.river.config import Levels, ReportingConfig
from edge.agents.river.measurement import Reading
from edge.protocol.river import WARNING_KEYS


@dataclass(frozen=True)
class Decision:
    """What one reading leads to: the crossing events to send, whether to send the reading, and
    how long until the next measurement."""

    events: list[dict[str, Any]] = field(default_factory=list)
    send_reading: bool = True
    next_in_s: float = 600.0
    mode: str = "active"  # quiet (heartbeat only), active or fast


class ReportingPolicy:
    def __init__(self, levels: Levels | None, config: ReportingConfig) -> None:
        self.config = config
        self.thresholds = levels.values() if levels else []
        if config.observe_from_m is not None:
            self.observe_from: float | None = config.observe_from_m
        else:
            self.observe_from = self.thresholds[0] if self.thresholds else None
        self.above = 0  # how many warning levels the water is above
        self.observing = self.observe_from is None
        self._history: deque[tuple[float, float]] = deque()  # (t, level) of valid readings
        self._last_sent_at: float | None = None
        self._last_sent_ok: bool | None = None

    def decide(self, t: float, reading: Reading, interval_s: float) -> Decision:
        """``t``: the measurement time in clock seconds; ``interval_s``: the normal cadence."""
        events: list[dict[str, Any]] = []
        was_observing = self.observing
        if reading.ok and reading.level_m is not None:
            events = self._crossings(reading.level_m)
            self._remember(t, reading.level_m)
            self._update_observing(reading.level_m)
        fast = self.rise_rate_m_per_h() > self.config.fast_rise_m_per_h or (
            self.config.flashy and self.observing
        )
        mode = "fast" if fast else "active" if self.observing else "quiet"
        send = (
            mode != "quiet"
            or was_observing  # the first reading back below the observation level is news
            or self._last_sent_at is None
            or t - self._last_sent_at >= self.config.heartbeat_s
            or reading.ok != self._last_sent_ok  # the sensor failed, or came back
        )
        if send:
            self._last_sent_at, self._last_sent_ok = t, reading.ok
        next_in = min(self.config.fast_interval_s, interval_s) if fast else interval_s
        return Decision(events, send, next_in, mode)

    def rise_rate_m_per_h(self) -> float:
        """How fast the water rose over the last ``rise_window_s`` (negative: falling)."""
        if len(self._history) < 2:
            return 0.0
        (t0, level0), (t1, level1) = self._history[0], self._history[-1]
        if t1 - t0 < self.config.rise_window_s / 2:  # too short a history to trust
            return 0.0
        return (level1 - level0) / (t1 - t0) * 3600

    def _remember(self, t: float, level: float) -> None:
        self._history.append((t, level))
        while t - self._history[0][0] > self.config.rise_window_s:
            self._history.popleft()

    def _update_observing(self, level: float) -> None:
        if self.observe_from is None:
            return
        if level >= self.observe_from:
            self.observing = True
        elif level < self.observe_from - self.config.hysteresis_m:
            self.observing = False

    def _crossings(self, level: float) -> list[dict[str, Any]]:
        events = []
        while self.above < len(self.thresholds) and level >= self.thresholds[self.above]:
            events.append(self._event(level, self.above, "rising"))
            self.above += 1
        hysteresis = self.config.hysteresis_m
        while self.above > 0 and level < self.thresholds[self.above - 1] - hysteresis:
            self.above -= 1
            events.append(self._event(level, self.above, "falling"))
        return events

    @staticmethod
    def _event(level: float, index: int, direction: str) -> dict[str, Any]:
        return {"level_m": level, "threshold": WARNING_KEYS[index], "direction": direction}
