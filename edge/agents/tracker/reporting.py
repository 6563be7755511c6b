"""When a tracker looks for its position and when it sends it: battery and data against freshness.

A GNSS receiver and an LTE modem are the two big loads on a child's tracker, so the tracker wakes
only as often as the moment needs and sends only what says something new:

* **school** (weekday school windows, and after an SOS): wake every ``school_every_s``; send when
  the child moved ``school_move_m`` — arrival at the gate must reach the guardian quickly;
* **moving** (moved ``move_m`` since the last sent position, or faster than ``moving_mps``):
  wake every ``moving_every_s``, send each time the distance is exceeded;
* **still**: wake every ``still_every_s``, send only a heartbeat every ``heartbeat_s`` — and,
  once, the place where a walk ended after ``settle_s`` without moving (so the city sees the
  child at school twice, which is what confirms an arrival);
* **night** (``night`` window): wake every ``night_every_s``, heartbeat every ``night_heartbeat_s``,
  but a child who moves at night is reported as moving.

The first fix after a start is always sent. Pure logic: times come in, decisions go out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from edge.agents.tracker.config import ReportingConfig, parse_window
from edge.drivers.gnss import Fix

EARTH_RADIUS_M = 6_371_008.8


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine); plenty for the metres a child walks."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(min(1.0, a)))


@dataclass(frozen=True)
class Decision:
    send: bool
    why: str  # first, school, moving, still, night, sos (edge.protocol.tracker.REASONS)
    next_in_s: float


class ReportingPolicy:
    def __init__(self, config: ReportingConfig) -> None:
        self.config = config
        self.zone = ZoneInfo(config.timezone)
        self.school = [parse_window(w) for w in config.school_windows]
        self.night = parse_window(config.night)
        self.last_sent: tuple[float, float, float] | None = None  # lat, lon, monotonic
        self.sos_until = -math.inf
        self._walked = False  # the last position was sent because the child had moved

    def sos(self, now_s: float) -> None:
        """The button was pressed: report at the school pace for ``sos_follow_s``."""
        self.sos_until = now_s + self.config.sos_follow_s

    def mode(self, at: datetime, now_s: float) -> str:
        local = at.astimezone(self.zone)
        if now_s < self.sos_until:
            return "sos"
        if local.weekday() < 5 and any(_inside(local.time(), w) for w in self.school):
            return "school"
        return "night" if _inside(local.time(), self.night) else "day"

    def decide(self, fix: Fix | None, at: datetime, now_s: float) -> Decision:
        """What to do with this look at the sky (``fix`` None: the receiver had no position)."""
        c = self.config
        mode = self.mode(at, now_s)
        if fix is None:
            every = c.night_every_s if mode == "night" else c.moving_every_s
            if mode in ("school", "sos"):
                every = c.school_every_s
            return Decision(False, mode, every)
        if self.last_sent is None:
            school = mode in ("school", "sos")
            return self._sent(fix, now_s, "first", c.school_every_s if school else c.moving_every_s)
        lat, lon, sent_s = self.last_sent
        moved = distance_m(lat, lon, fix.lat, fix.lon)
        fast = fix.speed_mps is not None and fix.speed_mps > c.moving_mps
        # Once after a walk ends: where the child stopped, seen twice, is what lets the city
        # confirm an arrival (two fixes inside the fence a minute apart).
        settled = self._walked and now_s - sent_s >= c.settle_s
        if mode in ("school", "sos"):
            why = "sos" if mode == "sos" else "school"
            beat = now_s - sent_s >= c.heartbeat_s
            if moved >= c.school_move_m or beat or settled or mode == "sos":
                return self._sent(fix, now_s, why, c.school_every_s, moved >= c.school_move_m)
            return Decision(False, why, c.school_every_s)
        moving = moved >= c.move_m or fast
        pace = self._pace(mode, moving)
        if moved >= c.move_m:
            return self._sent(fix, now_s, "moving", pace, walked=True)
        why = "night" if mode == "night" else "still"
        beat = now_s - sent_s >= (c.night_heartbeat_s if mode == "night" else c.heartbeat_s)
        if beat or (settled and not moving):
            return self._sent(fix, now_s, why, pace)
        return Decision(False, "moving" if moving else why, pace)

    def _pace(self, mode: str, moving: bool) -> float:
        c = self.config
        if moving:
            return c.moving_every_s
        return c.night_every_s if mode == "night" else c.still_every_s

    def _sent(
        self, fix: Fix, now_s: float, why: str, next_in_s: float, walked: bool = False
    ) -> Decision:
        self.last_sent = (fix.lat, fix.lon, now_s)
        self._walked = walked
        return Decision(True, why, next_in_s)


def _inside(moment: time, window: tuple[time, time]) -> bool:
    start, end = window
    return start <= moment < end if start <= end else moment >= start or moment < end
