"""A bus driven along its timetable, and riders boarding and alighting by a demand pattern.

``BusDrive`` says where the bus is at any moment of simulation time: standing at a stop from its
timetabled arrival until it leaves (at least ``MIN_DWELL_S``, so riders can board at a stop the
timetable gives no dwell), and between stops moving in a straight line at the speed that keeps
time. ``sky`` feeds :class:`sim.devices.gnss_receiver.GnssReceiverSim`.

``Riders`` watches the same drive and, at each stop, has riders tap off (most of them: a few
forget, ``forget_tap_off``) and tap on at the simulated RDM6300, with passes from a small city
register; cash and paper-ticket riders are entered by the driver on the tablet's API. How many
board at a stop follows a demand pattern: a morning and an evening peak, busier stops near the
station, the hospital and the school. Everything is seeded.
"""

from __future__ import annotations

import json
import math
import random
import threading
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from edge.protocol.gtfs import Feed, Trip
from edge.runtime.clock import Clock
from sim.child_day import Sky
from sim.devices.rdm6300 import Rdm6300Sim

MIN_DWELL_S = 40
DOORS_S = 0.4  # real seconds from the bus stopping to the first rider's tap
HOUR_WEIGHT = {7: 1.6, 8: 1.8, 9: 1.0, 12: 0.8, 16: 1.2, 17: 1.6, 18: 1.2}  # else 0.6
STOP_WEIGHT = {"S01": 2.0, "S05": 1.5, "S06": 1.2}  # else 1.0


def bearing_deg(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    x = math.sin(dl) * math.cos(p2)
    y = math.cos(p1) * math.sin(p2) - math.sin(p1) * math.cos(p2) * math.cos(dl)
    return math.degrees(math.atan2(x, y)) % 360


def _distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    dy = (lat2 - lat1) * 111_195.0
    dx = (lon2 - lon1) * 111_195.0 * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot(dx, dy)


@dataclass(frozen=True)
class Where:
    lat: float
    lon: float
    speed_mps: float
    course_deg: float
    trip_id: str | None
    stop_id: str | None  # the stop it stands at, None while moving


class BusDrive:
    """The bus running ``trips`` (one service day, in order) from the feed."""

    def __init__(self, feed: Feed, trips: list[str], service_day: datetime) -> None:
        self.feed = feed
        self.trips = [feed.trips[t] for t in trips]
        zone = ZoneInfo(feed.agency_timezone)
        day = service_day.astimezone(zone).replace(hour=12, minute=0, second=0, microsecond=0)
        self.base = day - timedelta(hours=12)

    def seconds(self, at: datetime) -> float:
        return (at - self.base).total_seconds()

    def at(self, when: datetime) -> Where:
        t = self.seconds(when)
        for trip in self.trips:
            if t <= trip.end_s + MIN_DWELL_S:
                return self._on_trip(trip, t)
        last = self.trips[-1]
        return self._standing(last, len(last.stop_times) - 1, None)

    def _standing(self, trip: Trip, index: int, trip_id: str | None) -> Where:
        stop = self.feed.stops[trip.stop_times[index].stop_id]
        return Where(stop.lat, stop.lon, 0.0, 0.0, trip_id, stop.id)

    def _on_trip(self, trip: Trip, t: float) -> Where:
        sts = trip.stop_times
        if t < sts[0].departure_s:
            return self._standing(trip, 0, trip.id)
        for i in range(len(sts) - 1):
            leave = max(sts[i].departure_s, sts[i].arrival_s + MIN_DWELL_S)
            if i == 0:
                leave = sts[0].departure_s
            if t <= leave:
                return self._standing(trip, i, trip.id)
            arrive = sts[i + 1].arrival_s
            if t < arrive:
                a, b = self.feed.stops[sts[i].stop_id], self.feed.stops[sts[i + 1].stop_id]
                f = (t - leave) / max(1.0, arrive - leave)
                speed = _distance_m(a.lat, a.lon, b.lat, b.lon) / max(1.0, arrive - leave)
                return Where(
                    a.lat + (b.lat - a.lat) * f,
                    a.lon + (b.lon - a.lon) * f,
                    speed,
                    bearing_deg(a.lat, a.lon, b.lat, b.lon),
                    trip.id,
                    None,
                )
        return self._standing(trip, len(sts) - 1, trip.id)

    def sky(self, when: datetime) -> Sky:
        """What the bus's GNSS receiver sees: open sky on a town's roads."""
        w = self.at(when)
        return Sky(w.lat, w.lon, True, 0.9, 9)


@dataclass
class Rider:
    uid: bytes  # the pass's tag id, as the RDM6300 reads it
    destination: str
    trip_id: str
    tap_off: bool


@dataclass
class Ridership:
    """What the riders did, to compare with what the city counted."""

    taps_on: list[tuple[bytes, str, str]] = field(default_factory=list)  # uid, trip, stop
    taps_off: list[tuple[bytes, str, str]] = field(default_factory=list)
    forgot: list[tuple[bytes, str]] = field(default_factory=list)  # uid, trip
    tablet: list[tuple[str, str, str]] = field(default_factory=list)  # action, fare, stop


class Riders:
    """Riders at each stop the drive reaches, tapping the reader and asking the driver."""

    def __init__(
        self,
        drive: BusDrive,
        clock: Clock,
        reader: Rdm6300Sim,
        passes: list[bytes],
        seed: int,
        tablet_url: str | None = None,
        rate: float = 1.0,
        forget_tap_off: float = 0.1,
        cash_share: float = 0.2,
    ) -> None:
        self.drive, self.clock, self.reader = drive, clock, reader
        self.passes = list(passes)
        self.rng = random.Random(seed)
        self.tablet_url = tablet_url
        self.rate, self.forget, self.cash_share = rate, forget_tap_off, cash_share
        self.done = Ridership()
        self.errors: list[Exception] = []
        self.aboard: list[Rider] = []
        self._cash_aboard: list[tuple[str, str]] = []  # fare, destination
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="riders", daemon=True)

    def start(self) -> Riders:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        last: tuple[str | None, str | None] = (None, None)
        while not self._stop.wait(self.clock.real_seconds(2.0)):
            where = self.drive.at(self.clock.now())
            here = (where.trip_id, where.stop_id)
            if where.stop_id is None or here == last or where.trip_id is None:
                last = here if where.stop_id is not None else last
                continue
            last = here
            self._stop.wait(DOORS_S)  # the bus stops, the doors open
            try:
                self._at_stop(where.trip_id, where.stop_id)
            except Exception as exc:  # kept for the test, like a device's errors
                self.errors.append(exc)

    def _at_stop(self, trip_id: str, stop_id: str) -> None:
        trip = self.drive.feed.trips[trip_id]
        order = [st.stop_id for st in trip.stop_times]
        for rider in [r for r in self.aboard if r.destination == stop_id or r.trip_id != trip_id]:
            self.aboard.remove(rider)
            if rider.tap_off and rider.trip_id == trip_id:
                self.reader.present(rider.uid, 0.25)
                self.done.taps_off.append((rider.uid, trip_id, stop_id))
            else:
                self.done.forgot.append((rider.uid, rider.trip_id))
            self.passes.append(rider.uid)
            self._pause()
        for fare, dest in [c for c in self._cash_aboard if c[1] == stop_id]:
            self._cash_aboard.remove((fare, dest))
            self._tablet("alight", fare, stop_id)
        ahead = order[order.index(stop_id) + 1 :]
        if not ahead:
            return
        hour = int(self.drive.seconds(self.clock.now()) // 3600)
        mean = self.rate * HOUR_WEIGHT.get(hour, 0.6) * STOP_WEIGHT.get(stop_id, 1.0)
        for _ in range(self._poisson(mean)):
            dest = self.rng.choice(ahead)
            if self.rng.random() < self.cash_share or not self.passes:
                fare = self.rng.choice(("cash", "ticket", "adult", "child"))
                self._tablet("board", fare, stop_id)
                self._cash_aboard.append((fare, dest))
                continue
            uid = self.passes.pop(self.rng.randrange(len(self.passes)))
            self.reader.present(uid, 0.25)
            self.done.taps_on.append((uid, trip_id, stop_id))
            self.aboard.append(Rider(uid, dest, trip_id, self.rng.random() >= self.forget))
            self._pause()

    def _pause(self) -> None:
        self._stop.wait(0.35)  # the next rider steps up (real time: the reader's own pace)

    def _poisson(self, mean: float) -> int:
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= self.rng.random()
            if p <= limit:
                return k
            k += 1

    def _tablet(self, action: str, fare: str, stop_id: str) -> None:
        self.done.tablet.append((action, fare, stop_id))
        if self.tablet_url is None:
            return
        entry = {
            "entry": f"sim{self.rng.getrandbits(64):016x}",
            "action": action,
            "fare": fare,
            "stop_id": stop_id,
        }
        request = urllib.request.Request(
            self.tablet_url + "api/entries",
            json.dumps({"entries": [entry]}).encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            response.read()
