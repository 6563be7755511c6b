"""The school service's logic: positions in, arrivals, departures and alerts out.

``Pipeline.handle`` takes a batch of tracker envelopes (from MQTT, OwnTracks or OsmAnd: all are
the same envelope by now) and, in one transaction: stores each position against its child,
moves the child's fence state, records the day's first arrival and departure, and raises the
alerts (each once per child, kind and day) with their notifications queued. Only after the commit
are the position observers called and the alerts handed to ``publish`` — so a crash before the
commit loses nothing (the broker re-delivers: the MQTT ack waits for the commit) and a crash after
it re-publishes nothing twice.

Observers are how other city services get the positions without a second subscription: the
learned-routine model of issue #12 registers one, reads a child's history through
``TrackerDb.history`` (audited) and raises its own alerts through ``Pipeline.raise_alert``, which
queues them on the same notification channels.

``absence_check`` is the scheduled "not at school by HH:MM on a school day".
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from edge.protocol import Envelope, EnvelopeError
from edge.protocol.tracker import POSITION, SOS, Position
from gateway.services.geofence import Fence, FenceState
from gateway.services.school_calendar import SchoolCalendar
from gateway.services.tracker_config import FenceConfig, SchoolConfig
from gateway.services.tracker_db import AlertRow, TrackerDb

log = logging.getLogger(__name__)
ROUTES_MAX_AGE_S = 5.0
ALERT_KINDS = ("school_arrival", "school_departure", "not_at_school", "sos")
RESUME_S = 15 * 60  # a restart replays this much of each child's fixes through the fence


class PositionObserver(Protocol):
    def __call__(self, child: str, envelope: Envelope, position: Position) -> None: ...


@dataclass
class School:
    config: SchoolConfig
    fence: Fence
    calendar: SchoolCalendar


class Pipeline:
    def __init__(
        self,
        db: TrackerDb,
        schools: list[SchoolConfig],
        fence: FenceConfig,
        zone: ZoneInfo,
        channels: list[str],
        now_ms: Callable[[], int],
        publish: Callable[[AlertRow], None] = lambda alert: None,
    ) -> None:
        self.db = db
        self.schools = {s.id: School(s, s.fence(), s.calendar()) for s in schools}
        self.fence = fence
        self.zone = zone
        self.channels = channels
        self.now_ms = now_ms
        self.publish = publish
        self.observers: list[PositionObserver] = []
        self.counters: dict[str, int] = {}
        self.routes = db.device_children()
        self._routes_at = time.monotonic()
        self.states: dict[tuple[str, str], FenceState] = {
            key: FenceState(side=state)  # type: ignore[arg-type]
            for key, state in db.fence_states().items()
        }
        self._resume()

    def _resume(self) -> None:
        """A restart forgets a fence decision half made (an arrival needs two clear fixes a
        minute apart; the state file keeps only the side a child is on). Each child's fixes of
        the last RESUME_S are replayed through a fresh fence state, so the next fix completes
        what the killed service had begun. A decision already recorded is not told again
        (presence is once a day); one that the replay completes is told now."""
        now = self.now_ms()
        raised: list[AlertRow] = []
        fresh: set[tuple[str, str]] = set()
        with self.db.tx() as cur:
            for child, ts_ms, device, lat, lon, acc, src in self.db.positions_since(
                now - RESUME_S * 1000
            ):
                route = self.routes.get(device)
                school = self.schools.get(route[1]) if route is not None else None
                if school is None:
                    continue
                key = (child, school.config.id)
                if key not in fresh:
                    fresh.add(key)
                    self.states[key] = FenceState()
                position = Position(lat, lon, acc, src=src)
                raised += self._judge(cur, child, school, position, ts_ms, now)
        for alert in raised:
            self.publish(alert)

    def count(self, name: str, by: int = 1) -> None:
        self.counters[name] = self.counters.get(name, 0) + by

    def route(self, device: str) -> tuple[str, str] | None:
        """(child, school) of a device. The registry changes under a running service (the CLI
        adds, moves and removes devices and children): it is re-read for a device not seen
        before, and at least every ``ROUTES_MAX_AGE_S``, so a removed child's device stops
        storing positions within seconds."""
        now = time.monotonic()
        found = self.routes.get(device)
        if found is None or now - self._routes_at > ROUTES_MAX_AGE_S:
            self.routes, self._routes_at = self.db.device_children(), now
            found = self.routes.get(device)
        return found

    def handle(self, envelopes: list[Envelope]) -> None:
        """Store and judge a batch; raises only if the database fails (nothing is then kept)."""
        raised: list[AlertRow] = []
        seen: list[tuple[str, Envelope, Position]] = []
        now = self.now_ms()
        with self.db.tx() as cur:
            for env in envelopes:
                route = self.route(env.device)
                if route is None:
                    self.count("unknown_device")
                    continue
                child, school_id = route
                if env.type == SOS:
                    raised += self._alert(
                        cur, child, "sos", env.ts_ms, {"school": school_id}, now, env.ts
                    )
                    continue
                if env.type != POSITION:
                    continue
                try:
                    position = Position.from_data(env.data)
                except EnvelopeError as exc:
                    self.count("invalid_position")
                    log.warning(
                        "position rejected",
                        extra={"fields": {"device": env.device, "error": exc.field}},
                    )
                    continue
                row = (
                    child,
                    env.ts_ms,
                    env.device,
                    env.seq,
                    position.lat,
                    position.lon,
                    position.acc,
                    position.src,
                )
                if not self.db.insert_position(cur, row):
                    # sent again (a broker that lost its session, a device that missed the
                    # PUBACK): judged once already, and judging it again after newer fixes
                    # would move the fence state back in time
                    self.count("repeated_position")
                    continue
                seen.append((child, env, position))
                school = self.schools.get(school_id)
                if school is not None:
                    raised += self._judge(cur, child, school, position, env.ts_ms, now)
        self.count("positions", len(seen))
        for alert in raised:
            self.publish(alert)
        for observer in self.observers:
            for child, env, position in seen:
                observer(child, env, position)

    def _judge(
        self,
        cur: sqlite3.Cursor,
        child: str,
        school: School,
        position: Position,
        ts_ms: int,
        now: int,
    ) -> list[AlertRow]:
        acc = position.acc if position.acc is not None else self.fence.unknown_accuracy_m
        if acc > self.fence.max_accuracy_m:
            self.count("too_inaccurate")
            return []
        key = (child, school.config.id)
        state = self.states.setdefault(key, FenceState())
        before = state.side
        decision = state.update(
            school.fence,
            position.lat,
            position.lon,
            acc,
            ts_ms,
            confirm_fixes=self.fence.confirm_fixes,
            dwell_s=self.fence.dwell_s,
            gate_sigmas=self.fence.gate_sigmas,
        )
        if state.side != before and state.side is not None:
            self.db.save_fence_state(cur, child, school.config.id, state.side)
        if decision is None:
            return []
        day = self.local_day(decision.ts_ms)
        if not school.calendar.is_school_day(day):
            return []  # a Sunday football match on the school ground tells a guardian nothing
        if not self.db.record_presence(
            cur, child, school.config.id, decision.kind, day.isoformat(), decision.ts_ms
        ):
            self.count(f"repeat_{decision.kind}")
            return []
        kind = f"school_{decision.kind}"
        return self._alert(cur, child, kind, decision.ts_ms, {"school": school.config.id}, now)

    def _alert(
        self,
        cur: sqlite3.Cursor,
        child: str,
        kind: str,
        ts_ms: int,
        data: dict[str, Any],
        now: int,
        key: str | None = None,
    ) -> list[AlertRow]:
        day = key or self.local_day(ts_ms).isoformat()
        alert = self.db.raise_alert(cur, child, kind, day, ts_ms, data, self.channels, now)
        if alert is None:
            return []
        self.count(f"alert_{kind}")
        return [alert]

    def raise_alert(
        self, child: str, kind: str, ts_ms: int, data: dict[str, Any], key: str | None = None
    ) -> AlertRow | None:
        """For other services (routines, #12): record, queue and publish one alert, once per
        ``key`` (default: the child's local day)."""
        with self.db.tx() as cur:
            alerts = self._alert(cur, child, kind, ts_ms, data, self.now_ms(), key)
        for alert in alerts:
            self.publish(alert)
        return alerts[0] if alerts else None

    def local_day(self, ts_ms: int) -> date:
        return datetime.fromtimestamp(ts_ms / 1000, self.zone).date()

    def absence_check(self, now_ms: int) -> list[AlertRow]:
        """ "Not at school by HH:MM": for each school whose deadline has passed today (a school
        day), every child of it without an arrival today gets the alert, once. Runs every minute;
        a deadline more than two hours ago is not acted on (the service was down: a late alert
        would alarm for nothing, the arrival records tell the truth)."""
        raised: list[AlertRow] = []
        moment = datetime.fromtimestamp(now_ms / 1000, self.zone)
        day = moment.date()
        for school in self.schools.values():
            deadline = datetime.combine(day, school.config.deadline(), self.zone)
            if not school.calendar.is_school_day(day):
                continue
            if not deadline <= moment < deadline + timedelta(hours=2):
                continue
            arrived = {
                c
                for c, kind, _ in self.db.presence(school.config.id, day.isoformat())
                if kind == "arrival"
            }
            for child in self.db.children_at(school.config.id):
                if child in arrived:
                    continue
                data = {"school": school.config.id, "by": school.config.not_at_school_by}
                with self.db.tx() as cur:
                    raised += self._alert(
                        cur, child, "not_at_school", int(deadline.timestamp() * 1000), data, now_ms
                    )
        for alert in raised:
            self.publish(alert)
        return raised
