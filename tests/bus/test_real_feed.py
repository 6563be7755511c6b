"""A real GTFS-JP feed (Donan Bus, Muroran, 2020; CC BY-SA, tests/bus/fixtures/LICENSE.md): the
loader reads what a real exporter wrote, and a bus driven along a real route is matched to its
trip and its stops, platform by platform."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.agents.bus.matching import StopMatcher
from edge.protocol.gtfs import Feed
from sim.transit.bus_run import BusDrive

FEED = Path(__file__).parent / "fixtures" / "donanbus-gtfs-2020.zip"
MONDAY = datetime(2020, 6, 1, 12, tzinfo=ZoneInfo("Asia/Tokyo"))


@pytest.fixture(scope="module")
def feed():
    return Feed.load(FEED)


def test_the_real_feed_loads_as_published(feed):
    # trips.txt names jp_trip_desc twice and its rows carry an extra empty field; shapes.txt
    # and the fare files are left out of the fixture
    assert feed.agency_timezone == "Asia/Tokyo"
    assert (len(feed.routes), len(feed.trips)) == (74, 541)
    # stations (location_type 1) are not stops; their platforms (0384_A, ...) are
    assert "0001" not in feed.stops and all("_" in s for s in feed.stops)
    assert all(len(t.stop_times) >= 2 for t in feed.trips.values())
    weekday = {t.service_id for r in feed.routes for t in feed.trips_on(r, date(2020, 6, 1))}
    assert weekday == {"weekday"}


def test_a_bus_on_a_real_route_is_matched_stop_by_stop(feed):
    trips = feed.trips_on("132210", MONDAY.date())
    trip = trips[0]
    drive = BusDrive(feed, [trip.id], MONDAY)
    matcher = StopMatcher(feed, "132210", radius_m=30)
    base = MONDAY - timedelta(hours=12)
    at = base + timedelta(seconds=trip.start_s - 60)
    stopped = []
    while at <= base + timedelta(seconds=trip.end_s + 30):
        w = drive.at(at)
        m = matcher.update(w.lat, w.lon, at)
        if w.stop_id is not None:
            assert m.trip_id == trip.id
        if m.status == "STOPPED_AT" and (not stopped or stopped[-1] != m.stop_id):
            stopped.append(m.stop_id)
        at += timedelta(seconds=5)
    expected = [st.stop_id for st in trip.stop_times]
    # stops closer together than the radius may merge; none is out of order or from elsewhere
    assert stopped == [s for s in expected if s in stopped]
    assert len(stopped) >= len(expected) - 3, (len(stopped), len(expected))
