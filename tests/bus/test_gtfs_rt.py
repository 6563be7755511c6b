"""The GTFS-Realtime feed checked field by field against the spec (gtfs.org/realtime/reference),
parsed with gtfs-realtime-bindings, from positions published as the buses publish them."""

from __future__ import annotations

import time

import pytest
from bus_rig import SAMPLE
from google.transit import gtfs_realtime_pb2 as rt
from store_helpers import bus_position as position
from store_helpers import get, start, store_config, ts, wait_until

from edge.protocol.gtfs import Feed
from gateway.services.gtfs_rt import occupancy
from gateway.store.config import TransitConfig

VP = rt.VehiclePosition


@pytest.mark.parametrize(
    ("on_board", "expected"),
    [
        (0, VP.EMPTY),
        (5, VP.MANY_SEATS_AVAILABLE),
        (15, VP.FEW_SEATS_AVAILABLE),
        (25, VP.STANDING_ROOM_ONLY),
        (35, VP.CRUSHED_STANDING_ROOM_ONLY),
        (40, VP.FULL),
        (55, VP.FULL),
    ],
)
def test_occupancy_bands_for_a_bus_of_20_seats_and_40_places(on_board, expected):
    assert occupancy(on_board, 20, 40) == expected


@pytest.fixture
def city(tmp_path, own_broker, publisher):
    config = store_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", own_broker)
    config.transit = TransitConfig(gtfs=SAMPLE, stale_after_s=600)
    run = start(config)
    yield run, publisher
    run.stop()


def test_vehicle_positions_field_by_field(city):
    run, pub = city
    pub.envelope("bus-01", "position", position(), kind="bus")
    pub.envelope(
        "bus-02", "position", position("WD-04", "S07", 2, "IN_TRANSIT_TO", on_board=0), kind="bus"
    )
    pub.envelope("bus-03", "position", position(None, None, None, None, delay_s=None), kind="bus")
    pub.envelope("bus-04", "position", position("NO-SUCH-TRIP"), kind="bus")
    pub.envelope("bus-05", "position", position(), kind="bus", at=ts(minutes_ago=30))  # stale
    wait_until(lambda: len(run.store.devices(["bus"])) == 5, 15, "five buses stored")
    before = int(time.time())
    status, headers, body = get(run.url + "gtfs-rt/vehicle-positions.pb")
    assert status == 200 and headers["content-type"] == "application/x-protobuf"
    feed = rt.FeedMessage()
    feed.ParseFromString(body)
    static = Feed.load(SAMPLE)
    # header: version, full dataset, a POSIX timestamp of now
    assert feed.header.gtfs_realtime_version == "2.0"
    assert feed.header.incrementality == rt.FeedHeader.FULL_DATASET
    assert before - 5 <= feed.header.timestamp <= time.time() + 5
    ids = [e.id for e in feed.entity]
    assert ids == ["bus-01", "bus-02", "bus-03", "bus-04"]  # unique, and the stale one left out
    for entity in feed.entity:
        assert entity.HasField("vehicle") and not entity.HasField("trip_update")
        vp = entity.vehicle
        assert -90 <= vp.position.latitude <= 90 and -180 <= vp.position.longitude <= 180
        assert 0 <= vp.position.bearing < 360
        assert before - 60 <= vp.timestamp <= time.time() + 5
        assert vp.occupancy_status in VP.OccupancyStatus.values()
        if vp.HasField("trip"):  # a trip the static feed has, with its route
            assert vp.trip.trip_id in static.trips
            assert static.trips[vp.trip.trip_id].route_id == vp.trip.route_id
            assert vp.stop_id in static.stops
    one, two, off, unknown = feed.entity
    assert (one.vehicle.trip.trip_id, one.vehicle.stop_id) == ("WD-03", "S04")
    assert one.vehicle.current_status == VP.STOPPED_AT and one.vehicle.current_stop_sequence == 4
    assert one.vehicle.trip.direction_id == 0 and one.vehicle.trip.start_date == "20261201"
    assert one.vehicle.occupancy_status == VP.FEW_SEATS_AVAILABLE
    assert one.vehicle.occupancy_percentage == 30
    assert two.vehicle.current_status == VP.IN_TRANSIT_TO
    assert two.vehicle.occupancy_status == VP.EMPTY and two.vehicle.trip.direction_id == 1
    assert not off.vehicle.HasField("trip") and not off.vehicle.stop_id
    assert not unknown.vehicle.HasField("trip")  # an unknown trip id is not published


def test_trip_updates_carry_the_measured_delay(city):
    run, pub = city
    pub.envelope("bus-01", "position", position(), kind="bus")
    pub.envelope("bus-03", "position", position(None, None, None, None, delay_s=None), kind="bus")
    wait_until(lambda: len(run.store.devices(["bus"])) == 2, 15, "two buses stored")
    _, _, body = get(run.url + "gtfs-rt/trip-updates.pb")
    feed = rt.FeedMessage()
    feed.ParseFromString(body)
    assert feed.header.gtfs_realtime_version == "2.0"
    (entity,) = feed.entity
    tu = entity.trip_update
    assert entity.id == "bus-01" and tu.trip.trip_id == "WD-03" and tu.vehicle.id == "bus-01"
    (update,) = tu.stop_time_update
    assert (update.stop_id, update.stop_sequence) == ("S04", 4)
    assert update.arrival.delay == 90 and update.departure.delay == 90
    assert update.schedule_relationship == rt.TripUpdate.StopTimeUpdate.SCHEDULED


def test_no_transit_section_is_a_clear_404(tmp_path):
    run = start(store_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}"))
    try:
        status, _, body = get(run.url + "gtfs-rt/vehicle-positions.pb")
        assert status == 404 and b"transit" in body
    finally:
        run.stop()
