"""Stop and trip matching along the sample route, driven by the same simulator as the demo."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.agents.bus.matching import StopMatcher, distance_m
from edge.protocol.gtfs import Feed
from sim.transit.bus_run import BusDrive

SAMPLE = Path(__file__).resolve().parents[2] / "sim" / "transit" / "feed"
JST = ZoneInfo("Asia/Tokyo")
TUESDAY = datetime(2026, 12, 1, tzinfo=JST)


@pytest.fixture(scope="module")
def feed():
    return Feed.load(SAMPLE)


def drive(feed, trips, start, minutes, step_s=10):
    bus = BusDrive(feed, trips, TUESDAY)
    matcher = StopMatcher(feed, "M1", radius_m=40)
    out = []
    for i in range(int(minutes * 60 / step_s)):
        at = start + timedelta(seconds=i * step_s)
        w = bus.at(at)
        out.append((w, matcher.update(w.lat, w.lon, at)))
    return out


def test_haversine_against_a_known_distance():
    # Tokyo Station to Shinjuku Station is about 6.1 km as the crow flies
    assert distance_m(35.6812, 139.7671, 35.6896, 139.7006) == pytest.approx(6080, rel=0.01)


def test_an_outbound_trip_is_found_and_its_stops_matched_in_order(feed):
    start = TUESDAY.replace(hour=6, minute=58)
    seen = drive(feed, ["WD-01", "WD-02"], start, minutes=24)
    trips = {m.trip_id for _, m in seen if m.trip_id and m.stop_id != "S08"}
    assert trips == {"WD-01"}  # at S08 it turns into WD-02 (tested below)
    stopped = []
    for w, m in seen:
        if m.status == "STOPPED_AT" and (not stopped or stopped[-1] != m.stop_id):
            stopped.append(m.stop_id)
        if w.stop_id is not None and w.trip_id == m.trip_id:  # standing at a stop: that stop
            assert (m.stop_id, m.status) == (w.stop_id, "STOPPED_AT")
    assert stopped == [f"S0{i}" for i in range(1, 9)]
    moving = [m for w, m in seen if w.stop_id is None and m.status == "IN_TRANSIT_TO"]
    assert moving and all(abs(m.delay_s) < 60 for m in moving)  # on time, as driven


def test_the_return_trip_matches_the_other_direction_and_delay_is_measured(feed):
    # the bus runs the return trip WD-02 five minutes late
    bus = BusDrive(feed, ["WD-02"], TUESDAY)
    matcher = StopMatcher(feed, "M1")
    late = timedelta(minutes=5)
    m = None
    for i in range(0, 30 * 6):
        at = TUESDAY.replace(hour=7, minute=28) + timedelta(seconds=i * 10)
        w = bus.at(at - late)
        m = matcher.update(w.lat, w.lon, at)
        if m.stop_id == "S05" and m.status == "STOPPED_AT":
            break
    assert m is not None and m.trip_id == "WD-02"
    assert m.delay_s == pytest.approx(300, abs=60)
    assert m.last_stop_id == "S05"


def test_no_trip_outside_the_timetable(feed):
    stop = feed.stops["S01"]
    matcher = StopMatcher(feed, "M1")
    night = TUESDAY.replace(hour=3)
    m = matcher.update(stop.lat, stop.lon, night)
    assert m.trip_id is None and m.stop_id is None


def test_at_the_terminus_the_bus_takes_the_next_trip_and_names_the_last(feed):
    start = TUESDAY.replace(hour=7, minute=15)
    seen = drive(feed, ["WD-01", "WD-02"], start, minutes=40)
    order = []
    for _, m in seen:
        if m.trip_id and (not order or order[-1] != m.trip_id):
            order.append(m.trip_id)
    assert order == ["WD-01", "WD-02", "WD-03"]  # WD-03 starts where WD-02 ends
    turned = next(i for i, (_, m) in enumerate(seen) if m.trip_id == "WD-02")
    w, m = seen[turned]
    assert w.stop_id == "S08" and w.trip_id == "WD-01"  # still standing where WD-01 ended
    assert (m.stop_id, m.status, m.previous_trip_id) == ("S08", "STOPPED_AT", "WD-01")
    left = [m for _, m in seen[turned:] if m.status == "IN_TRANSIT_TO"]
    assert left and all(m.previous_trip_id is None for m in left)


def test_a_stop_behind_the_bus_is_never_matched_again(feed):
    matcher = StopMatcher(feed, "M1")
    at = TUESDAY.replace(hour=7, minute=11)
    s05, s03 = feed.stops["S05"], feed.stops["S03"]
    assert matcher.update(s05.lat, s05.lon, at).stop_id == "S05"
    m = matcher.update(s03.lat, s03.lon, at + timedelta(seconds=30))  # a GNSS jump backwards
    assert m.status == "IN_TRANSIT_TO" and m.stop_id == "S06"


def test_an_unknown_route_is_refused(feed):
    with pytest.raises(ValueError, match="route 'X9'"):
        StopMatcher(feed, "X9")
