"""The bus end to end at real ports: taps on the simulated RDM6300 reach the store as hashed
journeys with the right stops; positions become the city's GTFS-Realtime feed."""

from __future__ import annotations

import statistics
import time

from bus_rig import jst
from google.transit import gtfs_realtime_pb2 as rt
from store_helpers import get, login, wait_until

from gateway.store.intake import to_ms
from sim.transit.bus_run import BusDrive

ADULT = bytes.fromhex("62E3086CED")
CHILD = bytes.fromhex("0A00B1C2D3")
STRANGER = bytes.fromhex("1F00000042")
NEVER_READ = bytes.fromhex("3300AABBCC")


def test_taps_become_hashed_journeys_with_the_right_stops(bus_rig):
    rig = bus_rig
    cards = rig.store.service.http.server.config.app.state.context.transit.cards
    cards.issue(rig.card(ADULT), "adult", "commuter", (jst(0, 0).date(), jst(0, 0).date()), 0)
    cards.issue(rig.card(CHILD), "child", "student", (jst(0, 0).date(), jst(0, 0).date()), 0)
    rig.at_stop("S01")
    rig.start_bus(jst(6, 59, 40))
    rig.wait_matched("S01")
    rig.reader.present(ADULT, 0.3)
    time.sleep(0.6)
    rig.reader.present(CHILD, 0.3)
    time.sleep(0.6)
    rig.at_stop("S03")
    rig.wait_matched("S03")
    rig.reader.present(ADULT, 0.3)  # taps off at S03
    time.sleep(0.6)
    rig.reader.place(STRANGER)  # a card left on the reader for two seconds: one tap
    time.sleep(2.0)
    rig.reader.remove()
    for _ in range(3):  # a garbled frame of a card never presented: no tap
        rig.reader.garbled(NEVER_READ)
        time.sleep(0.1)
    time.sleep(0.5)
    rig.at_stop("S06")
    rig.wait_matched("S06")
    rig.at_stop("S08")
    rig.wait_matched("S08")
    rig.position = (38.20, 140.10)  # off the route, far from the terminus
    rig.wait_matched(None)
    journeys = rig.wait_messages("journey", 3)
    by_card = {j.data["card"]: j.data for j in journeys}
    assert len(journeys) == 3 and len(by_card) == 3
    adult = by_card[rig.card(ADULT)]
    assert (adult["board_stop"], adult["alight_stop"], adult["tap_off"]) == ("S01", "S03", True)
    assert adult["trip_id"] == "WD-01" and adult["route_id"] == "M1"
    child = by_card[rig.card(CHILD)]
    assert (child["board_stop"], child["alight_stop"], child["tap_off"]) == ("S01", None, False)
    stranger = by_card[rig.card(STRANGER)]
    assert stranger["board_stop"] == "S03" and not stranger["tap_off"]
    assert rig.card(NEVER_READ) not in by_card
    # the card ids themselves never left the bus
    text = " ".join(str(m.data) for m in rig.messages("journey") + rig.messages("position"))
    for uid in (ADULT, CHILD, STRANGER):
        assert uid.hex() not in text.lower()
    health = rig.agent.host.health.counters
    assert health["missing_tap_off"] == 2 and health["tap_off"] == 1
    assert health["reader_checksum"] >= 3 and health["reader_taps"] == 4
    # the city joins the registry: categories in the ridership CSV
    cookie = login(rig.store.url)
    status, _, body = get(
        rig.store.url + "api/v1/ridership/stops.csv?from=2026-11-30T00:00:00Z"
        "&to=2026-12-02T00:00:00Z",
        cookie,
    )
    assert status == 200
    rows = [line.split(",") for line in body.decode().splitlines()[1:]]
    boards = {(r[1], r[3]): int(r[4]) for r in rows if int(r[4])}
    assert boards == {("S01", "adult"): 1, ("S01", "child"): 1, ("S03", "unknown"): 1}
    status, _, body = get(
        rig.store.url + "api/v1/ridership/od.csv?from=2026-11-30T00:00:00Z&to=2026-12-02T00:00:00Z",
        cookie,
    )
    assert body.decode().splitlines()[1:] == ["M1,S01,S03,adult,1"]
    assert get(rig.store.url + "api/v1/ridership/od.csv")[0] == 401  # staff only


def test_positions_reach_the_gtfs_realtime_feed(bus_rig):
    rig = bus_rig
    rig.at_stop("S05")
    rig.start_bus(jst(7, 13, 0))  # WD-01 is due at S05 at 7:11: two minutes late
    rig.wait_matched("S05")
    wait_until(
        lambda: any(m.data.get("stop_id") == "S05" for m in rig.messages("position")),
        20,
        "a position at S05",
    )
    status, headers, body = get(rig.store.url + "gtfs-rt/vehicle-positions.pb")
    assert status == 200 and headers["content-type"] == "application/x-protobuf"
    feed = rt.FeedMessage()
    feed.ParseFromString(body)
    (entity,) = feed.entity
    vp = entity.vehicle
    assert entity.id == "bus-01" and vp.vehicle.id == "bus-01"
    assert (vp.trip.trip_id, vp.trip.route_id, vp.trip.start_date) == ("WD-01", "M1", "20261201")
    assert vp.stop_id == "S05" and vp.current_stop_sequence == 5
    assert vp.current_status == rt.VehiclePosition.STOPPED_AT
    assert abs(vp.position.latitude - rig.feed.stops["S05"].lat) < 1e-5
    assert vp.occupancy_status == rt.VehiclePosition.EMPTY
    status, _, body = get(rig.store.url + "gtfs-rt/trip-updates.pb")
    updates = rt.FeedMessage()
    updates.ParseFromString(body)
    (tu,) = [e.trip_update for e in updates.entity]
    assert tu.trip.trip_id == "WD-01"
    assert 100 <= tu.stop_time_update[0].arrival.delay <= 140


def test_positions_every_few_seconds_while_moving_and_seldom_while_standing(bus_rig):
    rig = bus_rig
    drive = BusDrive(rig.feed, ["WD-01"], jst(12, 0))
    rig.start_bus(
        jst(6, 58, 0), speed=10.0, where=drive.sky, position_interval_s=5.0, idle_interval_s=30.0
    )
    wait_until(lambda: rig.clock.now() >= jst(7, 3, 30), 60, "the first minutes of a trip")
    positions = sorted(rig.messages("position"), key=lambda m: m.ts_ms)
    standing = [m for m in positions if m.ts_ms < to_ms(jst(7, 0, 0))]
    moving = [m for m in positions if m.data["speed_mps"] > 1.5]
    # two minutes at the first stop: every 30 s, not every fix (120 of them)
    assert 3 <= len(standing) <= 7
    assert len(moving) >= 20
    gaps = [  # between two positions in a row on the road between two stops
        (b.ts_ms - a.ts_ms) / 1000
        for a, b in zip(positions, positions[1:], strict=False)
        if a.data["status"] == b.data["status"] == "IN_TRANSIT_TO"
        and a.data["stop_id"] == b.data["stop_id"]
    ]
    # every 5 s while moving, not the 30 s of a standing bus; at 10x a loaded machine's
    # scheduling hiccups stretch a gap by seconds of bus time, hence the bound on the worst
    assert gaps and statistics.median(gaps) <= 6.0 and max(gaps) < 15.0
