"""The bus agent: where the bus is on its timetable, who boards and alights where, all durably.

Three things run at once: the main loop reads the GNSS receiver, matches the fix against the
GTFS-JP feed and publishes the vehicle position (every ``position_interval_s`` while moving, every
``idle_interval_s`` while standing, and at once on arriving at or leaving a stop); a reader thread
turns card taps into hashed journeys; the tablet's server takes the driver's entries. Everything
leaves through ``AgentHost.publish`` (the durable outbox): nothing is sent any other way.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from edge.agents.bus.config import BusConfig
from edge.agents.bus.journeys import BusState, Place
from edge.agents.bus.matching import Match, StopMatcher
from edge.agents.bus.tablet import BadRequest, TabletServer
from edge.drivers.cards import Card, open_reader
from edge.drivers.gnss import Fix, open_receiver
from edge.protocol import Envelope, EnvelopeError, utc_timestamp
from edge.protocol.bus import FARES, TABLET_ACTIONS, card_hash
from edge.protocol.gtfs import Feed
from edge.runtime.host import AgentHost

log = logging.getLogger(__name__)

TAP_POLL_S = 0.5
EXPIRE_EVERY_S = 60.0
FIX_TIMEOUT_S = 2.0
ENTRY_ID_MAX = 64
ENTRY_AGE_MAX = timedelta(days=1)  # a tablet entry older than this, or from the future, is
ENTRY_AHEAD_MAX = timedelta(minutes=5)  # dated by the agent instead (a tablet's clock was wrong)


class BusAgent:
    Config = BusConfig

    def __init__(self, host: AgentHost, config: BusConfig) -> None:
        self.host = host
        self.config = config
        self.feed = Feed.load(config.gtfs)
        self.matcher = StopMatcher(self.feed, config.route_id, config.stop_radius_m)
        self._secret = config.secret()
        self.state = BusState(config.state_path, host.health.count)
        self.reader = open_reader(config.reader.model, config.reader.port, config.reader.hold_gap_s)
        self.receiver = open_receiver(config.gnss.port, config.gnss.baudrate)
        self.match = Match(config.route_id)
        self.fix: Fix | None = None
        self.driver_stop: str | None = None  # the driver's override on the tablet
        self._lock = threading.Lock()
        self._last_sent: tuple[float, str | None, str | None] | None = None  # t, stop, status
        self.tablet = None
        if config.tablet.enabled:
            t = config.tablet
            self.tablet = TabletServer(self, t.bind, t.port, config.token(), host.health.count)
        host.on_command("set_route", self._set_route)

    # -- position ---------------------------------------------------------------------------
    def on_fix(self, fix: Fix) -> None:
        """Match one GNSS fix and publish the position when it is due."""
        now = self.host.clock.now()
        with self._lock:
            before = self.match
            self.match = match = self.matcher.update(fix.lat, fix.lon, fix.ts)
            self.fix = fix
            if match.trip_id != before.trip_id:
                self.driver_stop = None
                log.info("trip", extra={"fields": {"trip": match.trip_id, "route": match.route_id}})
        if _riding(match) != _riding(before):
            self._close_journeys(match, now)
        t = self.host.clock.monotonic()
        moving = (fix.speed_mps or 0.0) > self.config.moving_mps
        every = self.config.position_interval_s if moving else self.config.idle_interval_s
        last = self._last_sent
        if (
            last is None
            or t - last[0] >= every
            or (last[1], last[2])
            != (
                match.stop_id,
                match.status,
            )
        ):
            self._last_sent = (t, match.stop_id, match.status)
            self.host.publish("telemetry", "position", self._position(fix, match), fix.ts)

    def _position(self, fix: Fix, match: Match) -> dict[str, Any]:
        on_board = self._on_board(match.trip_id)
        return {
            "lat": round(fix.lat, 6),
            "lon": round(fix.lon, 6),
            "speed_mps": None if fix.speed_mps is None else round(fix.speed_mps, 1),
            "bearing_deg": None if fix.course_deg is None else round(fix.course_deg, 1),
            "route_id": match.route_id,
            "trip_id": match.trip_id,
            "start_date": match.start_date,
            "stop_id": match.stop_id,
            "stop_sequence": match.stop_sequence,
            "status": match.status,
            "delay_s": match.delay_s,
            "on_board": on_board,
            "seats": self.config.seats,
            "capacity": self.config.capacity,
        }

    def _on_board(self, trip_id: str | None) -> int:
        counts = self.state.counts(trip_id)
        tablet = sum(counts["board"].values()) - sum(counts["alight"].values())
        return max(0, self.state.on_board(trip_id) + tablet)

    def _close_journeys(self, match: Match, now: datetime) -> None:
        """Journeys on trips the bus is done with, or open too long, end without a tap-off."""
        older = now.timestamp() - self.config.max_ride_s
        for journey in self.state.close_open(_riding(match), older):
            self.host.publish("event", "journey", journey, now)

    # -- cards ------------------------------------------------------------------------------
    def on_card(self, card: Card) -> None:
        """One tap: hashed at once (the id goes no further), then paired into a journey."""
        hashed = card_hash(self._secret, card.tech, card.uid)
        now = self.host.clock.now()
        place = self.place()
        for journey in self.state.tap(
            hashed,
            card.tech,
            place,
            utc_timestamp(now),
            now.timestamp(),
            self.config.min_ride_s,
            self.match.previous_trip_id,
        ):
            self.host.publish("event", "journey", journey, now)

    def place(self) -> Place:
        """Where a rider is boarding or alighting now: the driver's stop if set, else the stop
        the bus is at, else the one it last left (a tap just after the doors closed)."""
        with self._lock:
            m = self.match
            stop = self.driver_stop or (m.stop_id if m.status == "STOPPED_AT" else m.last_stop_id)
            return Place(m.route_id, m.trip_id, stop)

    # -- the tablet (TabletBackend) ---------------------------------------------------------
    def tablet_state(self) -> dict[str, Any]:
        place = self.place()
        trip = self.feed.trips.get(place.trip_id or "")
        stops = [self.feed.stops[st.stop_id] for st in trip.stop_times] if trip else []
        stop = self.feed.stops.get(place.stop_id or "")
        return {
            "route_id": place.route_id,
            "trip_id": place.trip_id,
            "stop": {"id": stop.id, "name": stop.name} if stop else None,
            "stop_source": "driver" if self.driver_stop else "gps",
            "stops": [{"id": s.id, "name": s.name} for s in stops],
            "counts": self.state.counts(place.trip_id),
            "on_board": self._on_board(place.trip_id),
        }

    def tablet_stop(self, stop_id: str | None) -> None:
        if stop_id is not None and stop_id not in self.feed.stops:
            raise BadRequest(f"stop_id {stop_id!r} is not in the GTFS feed")
        with self._lock:
            self.driver_stop = stop_id

    def tablet_entries(self, entries: list[dict[str, Any]]) -> list[str]:
        """Take the tablet's entries; returns the ids taken (new ones, repeats, and refused ones,
        which are counted and logged: the tablet must not offer them again)."""
        taken = []
        for raw in entries:
            try:
                entry = self._entry(raw)
            except ValueError as exc:
                self.host.health.count("tablet_rejected")
                log.warning("tablet entry rejected", extra={"fields": {"error": str(exc)}})
                if isinstance(raw, dict) and isinstance(raw.get("entry"), str):
                    taken.append(raw["entry"])
                continue
            if self.state.has_entry(entry["entry"]):
                self.host.health.count("tablet_repeat")
            else:
                at = entry.pop("at")
                self.host.publish("event", "tablet", entry, at)
                self.state.add_entry({**entry, "ts": utc_timestamp(at)})
                self.host.health.count(f"tablet_{entry['action']}")
            taken.append(entry["entry"])
        return taken

    def _entry(self, raw: object) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise ValueError("an entry must be an object")
        entry_id, action = raw.get("entry"), raw.get("action")
        if not isinstance(entry_id, str) or not 8 <= len(entry_id) <= ENTRY_ID_MAX:
            raise ValueError(f"entry: expected an id of 8..{ENTRY_ID_MAX} characters")
        if action not in TABLET_ACTIONS:
            raise ValueError(f"action: expected one of {', '.join(TABLET_ACTIONS)}")
        fare, target = raw.get("fare"), raw.get("target")
        if action == "undo":
            if not isinstance(target, str) or not target:
                raise ValueError("undo needs the target entry's id")
            fare = None
        elif fare not in FARES:
            raise ValueError(f"fare: expected one of {', '.join(FARES)}")
        now = self.host.clock.now()
        at = now
        if isinstance(raw.get("at"), str):
            try:
                given = datetime.fromisoformat(raw["at"].replace("Z", "+00:00"))
            except ValueError:
                given = None
            if given and given.tzinfo and now - ENTRY_AGE_MAX < given < now + ENTRY_AHEAD_MAX:
                at = given.astimezone(UTC)
        place = self.place()
        stop = raw.get("stop_id")
        if not isinstance(stop, str) or stop not in self.feed.stops:
            stop = place.stop_id  # entered before the page knew the stop
        return {
            "entry": entry_id,
            "action": action,
            "fare": fare,
            "target": target if action == "undo" else None,
            "route_id": place.route_id,
            "trip_id": place.trip_id,
            "stop_id": stop,
            "at": at,
        }

    # -- commands ---------------------------------------------------------------------------
    def _set_route(self, command: Envelope) -> None:
        route = command.data.get("route_id")
        if not isinstance(route, str) or route not in self.feed.routes:
            raise EnvelopeError("data.route_id", f"expected a route of the feed, got {route!r}")
        with self._lock:
            self.matcher.set_route(route)
            self.match = Match(route)
        log.info("route changed", extra={"fields": {"route": route}})

    # -- running ----------------------------------------------------------------------------
    def _read_cards(self, stop: threading.Event) -> None:
        while not stop.is_set():
            card = self.reader.tap(TAP_POLL_S)
            self._mirror(self.reader.counters, "reader_")
            if card is not None:
                try:
                    self.on_card(card)
                except Exception:  # a bug must not stop the reader for the rest of the day
                    self.host.health.count("tap_failed")
                    log.exception("tap failed")

    def run(self, stop: threading.Event) -> None:
        cards = threading.Thread(target=self._read_cards, args=(stop,), name="cards", daemon=True)
        cards.start()
        if self.tablet is not None:
            self.tablet.start()
        clock = self.host.clock
        expire_at = clock.monotonic() + EXPIRE_EVERY_S
        try:
            while not stop.is_set():
                fix = self.receiver.read(FIX_TIMEOUT_S)
                self._mirror(self.receiver.counters, "gnss_")
                if fix is not None:
                    self.on_fix(fix)
                if clock.monotonic() >= expire_at:  # journeys open past max_ride_s
                    expire_at = clock.monotonic() + EXPIRE_EVERY_S
                    self._close_journeys(self.match, clock.now())
        finally:
            stop.set()
            cards.join(5)
            if self.tablet is not None:
                self.tablet.stop()
            self.reader.close()
            self.receiver.close()
            self.state.close()

    def _mirror(self, counters: dict[str, int], prefix: str) -> None:
        """A driver's counters into the health status (the city sees a failing reader)."""
        for name, value in counters.items():
            self.host.health.set(prefix + name, value)


def _riding(match: Match) -> set[str | None]:
    """The trips whose riders may still be on board: the current one, and at a terminus the
    one that just ended there."""
    previous = {match.previous_trip_id} if match.previous_trip_id else set()
    return {match.trip_id} | previous
