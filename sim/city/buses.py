"""The city's buses in ``sim city``: each a real bus agent (``machimori agent run``) with its GNSS
receiver and door card reader on ptys and its driver's tablet on loopback, running its share of
the day's trips of the sample GTFS-JP feed (``sim/transit/``) on the city's clock, with riders
tapping passes and cash riders entered on the tablet (``sim/transit/bus_run.py``).

What the city makes of them is measured as a rider or the office would see it: the
GTFS-Realtime VehiclePositions feed the store serves (how old its newest and its oldest vehicle
are, sampled while the city runs), and the ridership counts from the journeys stored.
"""

from __future__ import annotations

import contextlib
import statistics
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from google.transit import gtfs_realtime_pb2

from edge.runtime.clock import Clock
from gateway.services.cards import CardRegistry
from gateway.services.ridership import ridership
from gateway.store.db import open_store

FRESH_EVERY_S = 5.0  # real seconds between looks at the GTFS-Realtime feed


def trips_of(bus: int, trips: int) -> slice:
    """Bus ``bus``'s share of a day of ``trips``: one out-and-back pair, the next bus the next
    pair (round again when there are more buses than pairs)."""
    pairs = max(1, trips // 2)
    first = 2 * (bus % pairs)
    return slice(first, first + 2)


@dataclass
class Freshness:
    """Samples of the GTFS-Realtime feed: vehicles in it, and the age (city seconds) of its
    header and of its oldest vehicle position."""

    vehicles: list[int] = field(default_factory=list)
    header_age_s: list[float] = field(default_factory=list)
    oldest_age_s: list[float] = field(default_factory=list)
    failures: int = 0

    def sample(self, url: str, clock: Clock) -> None:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                body = answer.read()
        except (urllib.error.URLError, OSError):
            self.failures += 1  # the store is down (a chaos fault): counted, not fatal
            return
        feed = gtfs_realtime_pb2.FeedMessage()
        feed.ParseFromString(body)
        now = clock.now().timestamp()
        self.vehicles.append(len(feed.entity))
        self.header_age_s.append(now - feed.header.timestamp)
        stamps = [e.vehicle.timestamp for e in feed.entity if e.HasField("vehicle")]
        if stamps:
            self.oldest_age_s.append(now - min(stamps))

    def summary(self) -> str:
        if not self.vehicles:
            return f"GTFS-Realtime: no sample ({self.failures} failed)"
        median = statistics.median
        oldest = max(self.oldest_age_s, default=float("nan"))
        return (
            f"GTFS-Realtime VehiclePositions: {len(self.vehicles)} samples, vehicles "
            f"{min(self.vehicles)}..{max(self.vehicles)}, header age median "
            f"{median(self.header_age_s):.0f} s, oldest vehicle median "
            f"{median(self.oldest_age_s) if self.oldest_age_s else float('nan'):.0f} s, "
            f"worst {oldest:.0f} s (city time); {self.failures} fetches failed"
        )


def ridership_summary(database: str, start_ms: int, end_ms: int, zone: str) -> str:
    store = open_store(database)
    try:
        counted = ridership(store, CardRegistry(store).all(), start_ms, end_ms, ZoneInfo(zone))
    finally:
        with contextlib.suppress(Exception):
            store.close()
    categories = ", ".join(f"{k} {v}" for k, v in sorted(counted.by_category().items()))
    return (
        f"ridership: {counted.journeys} journeys, boardings by category: {categories or 'none'}; "
        f"missing tap-off {counted.missing_tap_off}"
    )
