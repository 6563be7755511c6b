"""Where the bus is on its timetable: the trip it is running and the stop it is at or heading to.

The bus runs one route (its config, or the driver's choice). Its trip is found from the route and
the time: of the route's trips running today (calendar and calendar_dates), the one whose
timetable has the bus at the nearest stop closest to now; a trip once found is kept until the
bus leaves its last stop, so a late bus does not jump to the next trip. The stop is the nearest
of the trip's stops within ``radius_m``, searched only *ahead* along the route from the last stop
matched (a route that passes the same corner twice, or the opposite direction's stop across the
road, cannot pull the match back). Inside the radius the bus is STOPPED_AT that stop; outside it
IN_TRANSIT_TO the next (the GTFS-Realtime VehicleStopStatus names).

Times are the feed's service-day seconds in the agency's time zone: a trip at ``25:10:00`` is
yesterday's service at 01:10 today.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from edge.protocol.gtfs import Feed, Trip

EARTH_RADIUS_M = 6_371_008.8
LOOKAHEAD_STOPS = 4  # how far along the route a stop may be matched past the last one
EARLY_S = 15 * 60  # a bus may be matched to a trip this long before its first departure
LATE_S = 60 * 60  # ... and this long after its last arrival


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine): within centimetres over a town's few kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


@dataclass(frozen=True)
class Match:
    """The bus against the timetable; ``trip_id`` None when no trip of the route fits now."""

    route_id: str
    trip_id: str | None = None
    start_date: str | None = None  # the trip's service day, YYYYMMDD (GTFS-RT TripDescriptor)
    stop_id: str | None = None  # the stop it is at (STOPPED_AT) or heading to (IN_TRANSIT_TO)
    stop_sequence: int | None = None
    status: str | None = None
    delay_s: int | None = None  # how late it was at the stop it is at, or last stood at
    last_stop_id: str | None = None  # the last stop it was at on this trip (where riders board)
    previous_trip_id: str | None = None  # at a terminus: the trip that just ended here


class StopMatcher:
    def __init__(self, feed: Feed, route_id: str, radius_m: float = 40.0) -> None:
        if route_id not in feed.routes:
            raise ValueError(f"route {route_id!r} is not in the GTFS feed")
        self.feed = feed
        self.route_id = route_id
        self.radius_m = radius_m
        self.zone = ZoneInfo(feed.agency_timezone)
        self.trip: Trip | None = None
        self.service_day = ""
        self.index = -1  # index into trip.stop_times of the last stop the bus was at
        self.delay: int | None = None  # how late it was there
        self._arrival_delay: int | None = None
        self.previous: str | None = None  # the trip that ended at the terminus the bus is at
        self._done: set[tuple[str, str]] = set()  # (service day, trip) run to the end: not again

    def set_route(self, route_id: str) -> None:
        if route_id not in self.feed.routes:
            raise ValueError(f"route {route_id!r} is not in the GTFS feed")
        self.route_id, self.trip, self.index = route_id, None, -1
        self.delay = self._arrival_delay = None

    def update(self, lat: float, lon: float, at: datetime) -> Match:
        local = at.astimezone(self.zone)
        if self.trip is not None and self._finished(lat, lon):
            self._end_trip()
            self.previous = None
        elif self.trip is not None and self.index == len(self.trip.stop_times) - 1:
            self._turn_around(local)
        if self.trip is None:
            self._choose_trip(lat, lon, local)
        trip = self.trip
        if trip is None:
            return Match(self.route_id)
        near = self._nearest_ahead(trip, lat, lon)
        if near is None or near > 0:
            self.previous = None  # left the terminus where the last trip ended
        if near is not None:
            st, t = trip.stop_times[near], self._seconds(local, self.service_day)
            if near != self.index or self._arrival_delay is None:
                # timed on arrival; at the first stop a bus waiting for its time is not early
                self._arrival_delay = t - st.arrival_s if near > 0 else 0
            # still standing after its departure time: late by that much
            self.delay = max(self._arrival_delay, t - st.departure_s)
            self.index = near
            return self._match(trip, near, "STOPPED_AT")
        ahead = min(self.index + 1, len(trip.stop_times) - 1)
        return self._match(trip, ahead, "IN_TRANSIT_TO")

    def _end_trip(self) -> None:
        assert self.trip is not None
        self._done.add((self.service_day, self.trip.id))
        self.trip, self.index, self.delay, self._arrival_delay = None, -1, None, None

    def _turn_around(self, local: datetime) -> None:
        """At the last stop, where the route's next trip starts (a line's terminus): the bus
        is on that trip from now on, so riders boarding for it board the right one. Riders of
        the trip that ended here may still tap off: ``previous`` names it meanwhile."""
        assert self.trip is not None
        here = self.trip.stop_times[-1].stop_id
        day = datetime.strptime(self.service_day, "%Y%m%d").date()
        t = self._seconds(local, self.service_day)
        for trip in self.feed.trips_on(self.route_id, day):
            if (
                trip.id != self.trip.id
                and (self.service_day, trip.id) not in self._done
                and trip.stop_times[0].stop_id == here
                and trip.start_s - EARLY_S <= t <= trip.start_s + LATE_S
            ):
                ended = self.trip.id
                self._end_trip()
                self.trip, self.index, self.previous = trip, 0, ended
                return

    def _match(self, trip: Trip, index: int, status: str) -> Match:
        st = trip.stop_times[index]
        last = trip.stop_times[self.index].stop_id if self.index >= 0 else None
        return Match(
            self.route_id,
            trip.id,
            self.service_day,
            st.stop_id,
            st.sequence,
            status,
            self.delay,
            last,
            self.previous,
        )

    def _finished(self, lat: float, lon: float) -> bool:
        """At or past the last stop, and now away from it: the trip is over."""
        assert self.trip is not None
        last = len(self.trip.stop_times) - 1
        return self.index == last and self._nearest_ahead(self.trip, lat, lon) is None

    def _nearest_ahead(self, trip: Trip, lat: float, lon: float) -> int | None:
        first = max(self.index, 0)
        best, best_d = None, self.radius_m
        for i in range(first, min(first + LOOKAHEAD_STOPS + 1, len(trip.stop_times))):
            stop = self.feed.stops[trip.stop_times[i].stop_id]
            d = distance_m(lat, lon, stop.lat, stop.lon)
            if d <= best_d:
                best, best_d = i, d
        return best

    @staticmethod
    def _seconds(local: datetime, service_day: str) -> int:
        """Seconds since the service day's noon minus 12 h (GTFS's "midnight")."""
        day = datetime.strptime(service_day, "%Y%m%d").replace(tzinfo=local.tzinfo)
        base = day.replace(hour=12) - timedelta(hours=12)
        return int((local - base).total_seconds())

    def _choose_trip(self, lat: float, lon: float, local: datetime) -> None:
        best: tuple[float, Trip, str, int] | None = None
        for back in (0, 1):  # today's service, and yesterday's trips running past midnight
            day = (local - timedelta(days=back)).date()
            service_day = day.strftime("%Y%m%d")
            t = self._seconds(local, service_day)
            for trip in self.feed.trips_on(self.route_id, day):
                if (service_day, trip.id) in self._done:
                    continue
                if not trip.start_s - EARLY_S <= t <= trip.end_s + LATE_S:
                    continue
                # the stop nearest the bus, and how far the timetable is from having it there
                index, _ = min(
                    enumerate(trip.stop_times),
                    key=lambda e: self._distance_to(e[1].stop_id, lat, lon),
                )
                off = abs(t - trip.stop_times[index].arrival_s)
                if index == len(trip.stop_times) - 1 and len(trip.stop_times) > 1:
                    off += LATE_S  # at a terminus the bus is more likely starting the next trip
                if best is None or off < best[0]:
                    best = (off, trip, service_day, index)
        if best is None:
            self.trip = None
            return
        _, self.trip, self.service_day, index = best
        near = self._distance_to(self.trip.stop_times[index].stop_id, lat, lon) <= self.radius_m
        self.index = index if near else index - 1

    def _distance_to(self, stop_id: str, lat: float, lon: float) -> float:
        stop = self.feed.stops[stop_id]
        return distance_m(lat, lon, stop.lat, stop.lon)
