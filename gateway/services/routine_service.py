"""The learned routines inside the tracker service: positions in, deviation alerts out.

Plugs into the school service's pipeline (docs/tracker.md, "Learned routines"): an observer gets
every position after its transaction committed; alerts go through ``Pipeline.raise_alert`` —
recorded once per episode key, queued to every linked guardian on e-mail and webhook, published
on the alert topic — as ``routine_hour|place|late|route`` and, when the child is back,
``routine_clear``. A clock thread judges children who have gone silent somewhere.

Each child's engine state is saved in the tracker database (``routine_models``) once a day and at
stop, and on start brought up to date from the child's stored positions (``TrackerDb.history``,
audited as ``service:routine``); without a saved state it is learned again from them. A model
holds at most ``retention.positions_days`` days, is deleted with the child, and never mixes
children.
"""

from __future__ import annotations

import logging
import pickle
import threading
from datetime import UTC, date, datetime
from typing import Any

from edge.protocol import Envelope, utc_timestamp
from edge.protocol.tracker import Position
from edge.runtime.clock import Clock
from gateway.services.routine_config import RoutineConfig
from gateway.services.routine_engine import OUTING, RoutineEngine, RoutineEvent, week_part
from gateway.services.school import Pipeline
from gateway.services.tracker_db import TrackerDb

log = logging.getLogger(__name__)
TICK_S = 30.0
DAY_MS = 86_400_000


class RoutineService:
    def __init__(
        self,
        config: RoutineConfig,
        pipeline: Pipeline,
        db: TrackerDb,
        clock: Clock,
        positions_days: float,
    ) -> None:
        config.memory_days = min(config.memory_days, positions_days)
        self.config = config
        self.pipeline = pipeline
        self.db = db
        self.clock = clock
        self.engine = RoutineEngine(config, pipeline.zone, self.part_of, self.labels)
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._tick_loop, name="routine-tick", daemon=True)
        self._saved_day: dict[str, date] = {}
        self._school_of: dict[str, str] = {}
        pipeline.observers.append(self.observe)

    def now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)

    def part_of(self, child: str, day: date) -> str:
        if child not in self._school_of:  # the city's CLI adds children while we run
            self._school_of = dict(self.db.device_children().values())
        school = self.pipeline.schools.get(self._school_of.get(child, ""))
        if school is None:
            return week_part(day, day.weekday() < 5, False)
        calendar = school.calendar
        if day in calendar.outings:
            return OUTING
        return week_part(day, calendar.is_school_day(day), calendar.holiday_name(day) is not None)

    def labels(self, child: str) -> dict[int, tuple[str, str]]:
        """The child's school among its places, by the school's name (ja, en), for reasons."""
        state = self.engine.children.get(child)
        school = self.pipeline.schools.get(self._school_of.get(child, ""))
        if state is None or school is None:
            return {}
        model, name = state.model, school.config.name
        return {
            pid: (name, name)
            for pid, (x, y, _) in model.places.items()
            if school.fence.signed_distance(*model.lat_lon(x, y)) <= self.config.place_radius_m
        }

    # -- in -------------------------------------------------------------------------------------
    def observe(self, child: str, envelope: Envelope, position: Position) -> None:
        with self._lock:
            events = self.engine.observe(
                child, envelope.ts_ms, position.lat, position.lon, position.acc
            )
            self._save_daily(child)
        self._emit(events)

    def _tick_loop(self) -> None:
        looks = 0
        while not self._stop.is_set():
            try:
                with self._lock:
                    if looks % 20 == 0:
                        self.forget_removed()
                    looks += 1
                    events = self.engine.tick(self.now_ms())
                self._emit(events)
            except Exception:
                log.exception("routine check failed; it runs again shortly")
            self._stop.wait(self.clock.real_seconds(TICK_S))

    # -- out ------------------------------------------------------------------------------------
    def _emit(self, events: list[RoutineEvent]) -> None:
        for event in events:
            data: dict[str, Any] = {
                "routine": event.kind,
                "reason": event.reason,
                "since": utc_timestamp(datetime.fromtimestamp(event.since_ms / 1000, UTC)),
                "key": event.key,
            }
            if event.action == "raise":
                kind, key = f"routine_{event.kind}", event.key
            else:
                kind, key = "routine_clear", f"{event.key}/clear"
            self.pipeline.raise_alert(event.child, kind, event.ts_ms, data, key)

    # -- a guardian's "this is fine" ------------------------------------------------------------
    def fine(self, guardian: str, alert_id: int) -> bool:
        """The guardian says the routine alert ``alert_id`` was fine; False if it is not a routine
        alert of one of this guardian's children (or the model no longer knows it)."""
        alert = self.db.alert(alert_id)
        if alert is None or not alert.kind.startswith("routine_") or "key" not in alert.data:
            return False
        if alert.child not in self.db.children_of(guardian):
            return False
        with self._lock:
            done = self.engine.feedback(alert.child, alert.data["key"], self.now_ms())
            if done:
                self.save(alert.child)
        return done

    def status(self, child: str) -> tuple[int, int]:
        """(days learned, days needed) for the guardians' page: alerts start when equal."""
        state = self.engine.children.get(child)
        return (state.model.days_seen if state else 0), self.config.min_days

    # -- persistence ----------------------------------------------------------------------------
    def _save_daily(self, child: str) -> None:
        state = self.engine.children[child]
        if state.day is not None and self._saved_day.get(child) != state.day:
            self._saved_day[child] = state.day
            self.save(child)

    def save(self, child: str) -> None:
        state = self.engine.children.get(child)
        if state is not None and child in self._registered():
            self.db.save_routine(child, self.now_ms(), pickle.dumps(state, protocol=5))

    def _registered(self) -> dict[str, str]:
        self._school_of = dict(self.db.device_children().values())
        return self._school_of

    def forget_removed(self) -> None:
        """A child the city removed (``tracker child remove``) is forgotten here too, within
        ten minutes: its model is not kept, nor saved again."""
        registered = self._registered()
        for child in [c for c in self.engine.children if c not in registered]:
            del self.engine.children[child]
            self._saved_day.pop(child, None)

    def load(self) -> int:
        """Bring every registered child's model up to date; how many positions were replayed."""
        now = self.now_ms()
        horizon = now - int(self.config.memory_days * DAY_MS)
        replayed = 0
        self._school_of = dict(self.db.device_children().values())
        children = sorted(self._school_of)
        saved = self.db.routine_states()
        for child in children:
            start = horizon
            if child in saved and saved[child][0] >= horizon:
                # written only by this service, into its own database
                self.engine.children[child] = pickle.loads(saved[child][1])  # noqa: S301
                start = saved[child][0] + 1
            for row in self.db.history(child, start, now, "routine"):
                self.engine.observe(child, row.ts_ms, row.lat, row.lon, row.acc)
                replayed += 1
        self.engine.tick(now)  # what would have been said while down is not said late
        self.engine._heap.clear()
        for state in self.engine.children.values():
            state.due_ms = None
        return replayed

    def start(self) -> None:
        replayed = self.load()
        log.info("routines loaded", extra={"fields": {"replayed": replayed}})
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        with self._lock:
            for child in list(self.engine.children):
                self.save(child)
