"""The city's buses as Smart Data Models ``Vehicle`` entities in the NGSI v2 view: made from the
public GTFS-Realtime feed and nothing more (no card, rider or head count), queryable like the
river entities (type, q, mq, geo, keyValues, count), and the same buses the feed shows, for
positions drawn from several seeds."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.transit import gtfs_realtime_pb2 as rt
from store_helpers import GTFS_SAMPLE, Running, Writer, get, start, store_config, ts
from store_helpers import bus_position as position
from test_store_sdm import fits

from edge.protocol.gtfs import Feed
from gateway.store.config import TransitConfig

STOPS = Feed.load(GTFS_SAMPLE).stops


class Buses(Writer):
    """Bus positions, ``minutes_ago`` by the wall clock (not the seed's: the store drops a bus
    this old from the feed), each newer than the last."""

    kind = "bus"
    type = "position"

    def __call__(self, device: str, minutes_ago: float = 0.0, **data: object) -> None:
        self.write(device, data, lambda seq: ts(minutes_ago - seq / 6000))


@pytest.fixture
def buses(tmp_path: Path) -> Iterator[tuple[Running, Buses]]:
    config = store_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
    config.transit = TransitConfig(gtfs=GTFS_SAMPLE, stale_after_s=600)
    run = start(config)
    yield run, Buses(run)
    run.stop()


def ngsi(run: Running, query: str) -> tuple[int, dict[str, str], object]:
    status, headers, body = get(run.url + "ngsi/v2/" + query)
    return status, headers, json.loads(body)


def test_a_bus_is_a_vehicle_with_what_the_public_feed_shows(buses):
    run, bus = buses
    bus("bus-01", **position(speed_mps=0.0))
    bus(
        "bus-02",
        **position("WD-04", "S07", 2, "IN_TRANSIT_TO", speed_mps=8.3, bearing_deg=91.0),
    )
    bus("bus-03", **position(None, "S01", None, None, speed_mps=None, bearing_deg=None))
    bus("bus-04", minutes_ago=30, **position())  # silent past stale_after_s: not published
    status, _, body = ngsi(run, "entities?type=Vehicle&options=keyValues")
    assert status == 200
    by_id = {e["id"]: e for e in body}
    assert sorted(by_id) == [f"urn:ngsi-ld:Vehicle:bus-0{n}" for n in (1, 2, 3)]
    standing = by_id["urn:ngsi-ld:Vehicle:bus-01"]
    assert standing == {
        "id": "urn:ngsi-ld:Vehicle:bus-01",
        "type": "Vehicle",
        "name": "bus-01",
        "fleetVehicleId": "bus-01",
        "vehicleType": "bus",
        "category": ["public", "tracked"],
        "serviceProvided": ["urbanTransit"],
        "location": {
            "type": "Point",
            # GTFS-Realtime's 32-bit floats hold a position to about a metre
            "coordinates": pytest.approx([STOPS["S04"].lon, STOPS["S04"].lat], abs=2e-5),
        },
        "speed": 0.0,
        "heading": -1,  # standing: the model wants -1
        "observationDateTime": standing["observationDateTime"],
        "serviceStatus": "onRoute",
        "route_id": "M1",
        "trip_id": "WD-03",
        "stop_id": "S04",
        "current_status": "STOPPED_AT",
        "occupancy_status": "FEW_SEATS_AVAILABLE",  # 12 of 20 seats: the band, not the count
    }
    moving = by_id["urn:ngsi-ld:Vehicle:bus-02"]
    assert moving["speed"] == pytest.approx(29.9)  # 8.3 m/s in km/h, as the model asks
    assert moving["heading"] == 91.0 and moving["current_status"] == "IN_TRANSIT_TO"
    off_duty = by_id["urn:ngsi-ld:Vehicle:bus-03"]
    assert off_duty["serviceStatus"] == "outOfService" and off_duty["speed"] == -1
    assert not {"route_id", "trip_id", "stop_id"} & set(off_duty)
    for entity in body:
        fits("Vehicle", entity)
    raw = json.dumps(ngsi(run, "entities?type=Vehicle")[2])
    for private in ("on_board", "seats", "capacity", "delay", "card"):
        assert private not in raw  # nothing a public GTFS-Realtime feed does not show


def test_vehicles_answer_every_query_feature(buses):
    run, bus = buses
    bus("bus-01", **position("WD-01", "S01"))
    bus("bus-02", **position("WD-03", "S04", speed_mps=6.0))
    bus("bus-03", **position(None, "S07", None, None))
    _, headers, body = ngsi(run, "entities?type=Vehicle&q=serviceStatus==onRoute&options=count")
    assert [e["id"] for e in body] == ["urn:ngsi-ld:Vehicle:bus-01", "urn:ngsi-ld:Vehicle:bus-02"]
    assert headers["fiware-total-count"] == "2"
    _, _, body = ngsi(run, "entities?type=Vehicle&q=speed>10&attrs=speed&options=keyValues")
    assert body == [{"id": "urn:ngsi-ld:Vehicle:bus-02", "type": "Vehicle", "speed": 21.6}]
    _, _, body = ngsi(run, "entities?type=Vehicle&mq=speed.unitCode==KMH&options=count")
    assert len(body) == 3
    s01 = STOPS["S01"]
    near = f"georel=near;maxDistance:200&geometry=point&coords={s01.lat},{s01.lon}"
    _, _, body = ngsi(run, f"entities?type=Vehicle&{near}&options=keyValues&attrs=stop_id")
    assert body == [{"id": "urn:ngsi-ld:Vehicle:bus-01", "type": "Vehicle", "stop_id": "S01"}]
    _, _, body = ngsi(run, "entities?q=trip_id==WD-03&options=values&attrs=route_id,stop_id")
    assert body == [["M1", "S04"]]
    _, _, types = ngsi(run, "types/Vehicle")
    assert types["count"] == 3 and types["attrs"]["speed"]["types"] == ["Number"]
    status, _, one = ngsi(run, "entities/urn:ngsi-ld:Vehicle:bus-02/attrs/heading")
    assert status == 200 and one == {"type": "Number", "value": 270.0, "metadata": {}}


def test_no_transit_section_no_vehicles(tmp_path):
    run = start(store_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}"))
    try:
        status, _, body = ngsi(run, "entities?type=Vehicle")
        assert status == 200 and body == []
    finally:
        run.stop()


@pytest.mark.parametrize("seed", [3, 17, 2026])
def test_vehicles_are_the_buses_of_the_realtime_feed(buses, seed):
    """Whatever the buses report, NGSI and GTFS-Realtime tell the same story: the same buses,
    places, speeds (m/s there, km/h here), trips and stops."""
    run, bus = buses
    rng = random.Random(seed)
    stops = sorted(STOPS)
    for n in range(rng.randint(3, 8)):
        on_trip = rng.random() < 0.7
        stop = rng.choice(stops)
        bus(
            f"bus-{n:02d}",
            minutes_ago=rng.choice([0, 1, 5, 20]),  # 20: stale, in neither
            **position(
                rng.choice(["WD-01", "WD-02", "WD-03", "NO-SUCH"]) if on_trip else None,
                stop,
                speed_mps=round(rng.uniform(0, 12), 1),
                bearing_deg=round(rng.uniform(0, 359.9), 1),
                lat=round(STOPS[stop].lat + rng.uniform(-0.001, 0.001), 6),
            ),
        )
    feed = rt.FeedMessage()
    feed.ParseFromString(get(run.url + "gtfs-rt/vehicle-positions.pb")[2])
    _, _, body = ngsi(run, "entities?type=Vehicle&options=keyValues&limit=100")
    vehicles = {e["fleetVehicleId"]: e for e in body}
    assert sorted(vehicles) == sorted(item.id for item in feed.entity)
    for item in feed.entity:
        v, vp = vehicles[item.id], item.vehicle
        where = [vp.position.longitude, vp.position.latitude]
        assert v["location"]["coordinates"] == pytest.approx(where, abs=2e-5)
        assert v["speed"] == pytest.approx(vp.position.speed * 3.6, abs=0.05)
        assert v.get("trip_id") == (vp.trip.trip_id or None)
        assert v["serviceStatus"] == ("onRoute" if vp.HasField("trip") else "outOfService")
        assert v.get("stop_id") == (vp.stop_id or None)
        moment = time.strptime(v["observationDateTime"][:19], "%Y-%m-%dT%H:%M:%S")
        assert int(time.mktime(moment) - time.timezone) == vp.timestamp
        fits("Vehicle", v)
