"""Ridership on the city side, from journeys and tablet entries as the buses send them: the card
registry joined on the hash, tablet repeats and undos, the CSVs and the staff page with charts."""

from __future__ import annotations

import re
from datetime import date

import pytest
from bus_rig import SAMPLE
from store_helpers import get, login, start, store_config, wait_until

from gateway.services.cards import CardRegistry
from gateway.store.config import TransitConfig

PERIOD = "from=2026-11-30T00:00:00Z&to=2026-12-02T00:00:00Z"
VALID = (date(2026, 4, 1), date(2027, 3, 31))
CARDS = {name: f"{i:032x}" for i, name in enumerate(["adult", "child", "lost", "old", "nobody"], 1)}


def journey(card, board, alight, board_ts="2026-12-01T22:05:00Z", trip="WD-01"):
    return {
        "card": CARDS[card],
        "tech": "em4100",
        "route_id": "M1",
        "trip_id": trip,
        "board_stop": board,
        "board_ts": board_ts,
        "alight_stop": alight,
        "alight_ts": "2026-12-01T22:15:00Z" if alight else None,
        "tap_off": bool(alight),
    }


def entry(entry_id, action, fare=None, stop="S02", target=None):
    return {
        "entry": entry_id,
        "action": action,
        "fare": fare,
        "target": target,
        "route_id": "M1",
        "trip_id": "WD-01",
        "stop_id": stop,
    }


@pytest.fixture
def city(tmp_path, own_broker, publisher):
    config = store_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", own_broker)
    config.transit = TransitConfig(gtfs=SAMPLE)
    run = start(config)
    registry = CardRegistry(run.store)
    registry.issue(CARDS["adult"], "adult", "commuter", VALID, 0)
    registry.issue(CARDS["child"], "child", "student", VALID, 0)
    registry.issue(CARDS["lost"], "senior", "commuter", VALID, 0)
    assert registry.revoke(CARDS["lost"], 1)
    registry.issue(CARDS["old"], "adult", "commuter", (date(2025, 4, 1), date(2026, 3, 31)), 0)
    at = "2026-12-01T22:05:00.000Z"  # 07:05 JST
    for data in [
        journey("adult", "S01", "S04"),
        journey("child", "S01", "S04"),
        journey("child", "S03", None),
        journey("lost", "S02", "S05"),
        journey("old", "S02", "S05"),
        journey("nobody", "S04", "S08"),
    ]:
        publisher.envelope("bus-01", "journey", data, kind="bus", channel="event", at=at)
    for data in [
        entry("e-00000001", "board", "cash"),
        entry("e-00000001", "board", "cash"),
        entry("e-00000002", "board", "ticket"),
        entry("e-00000003", "board", "child"),
        entry("u-00000001", "undo", target="e-00000003"),
        entry("e-00000004", "alight", "cash", stop="S06"),
    ]:
        publisher.envelope("bus-01", "tablet", data, kind="bus", channel="event", at=at)
    wait_until(lambda: (d := run.store.device("bus-01")) and d.received == 12, 15, "12 stored")
    yield run
    run.stop()


def csv_rows(body: bytes) -> list[list[str]]:
    return [line.split(",") for line in body.decode().splitlines()[1:]]


def test_stops_csv_counts_each_rider_once_under_the_registry_s_category(city):
    cookie = login(city.url)
    status, headers, body = get(city.url + f"api/v1/ridership/stops.csv?{PERIOD}", cookie)
    assert status == 200 and headers["content-type"].startswith("text/csv")
    boards = {(r[1], r[2], r[3]): int(r[4]) for r in csv_rows(body) if int(r[4])}
    alights = {(r[1], r[3]): int(r[5]) for r in csv_rows(body) if int(r[5])}
    assert boards == {
        ("S01", "7", "adult"): 1,
        ("S01", "7", "child"): 1,
        ("S03", "7", "child"): 1,
        ("S02", "7", "revoked"): 1,
        ("S02", "7", "expired"): 1,
        ("S04", "7", "unknown"): 1,
        ("S02", "7", "cash"): 1,  # sent twice by the tablet, counted once
        ("S02", "7", "ticket"): 1,  # the child entry was undone
    }
    assert alights == {
        ("S04", "adult"): 1,
        ("S04", "child"): 1,
        ("S05", "revoked"): 1,
        ("S05", "expired"): 1,
        ("S08", "unknown"): 1,
        ("S06", "cash"): 1,
    }


def test_od_csv_has_card_journeys_with_both_taps(city):
    cookie = login(city.url)
    _, _, body = get(city.url + f"api/v1/ridership/od.csv?{PERIOD}&route=M1", cookie)
    assert sorted(",".join(r) for r in csv_rows(body)) == [
        "M1,S01,S04,adult,1",
        "M1,S01,S04,child,1",
        "M1,S02,S05,expired,1",
        "M1,S02,S05,revoked,1",
        "M1,S04,S08,unknown,1",
    ]
    _, _, body = get(city.url + f"api/v1/ridership/od.csv?{PERIOD}&route=M9", cookie)
    assert csv_rows(body) == []


def test_ridership_is_staff_only_and_bad_periods_are_refused(city):
    assert get(city.url + f"api/v1/ridership/stops.csv?{PERIOD}")[0] == 401
    status, headers, _ = get(city.url + "staff/ridership")
    assert status == 303 and "/staff/login" in headers["location"]
    cookie = login(city.url)
    assert (
        get(
            city.url + "api/v1/ridership/stops.csv?from=2026-12-02T00:00:00Z"
            "&to=2026-12-01T00:00:00Z",
            cookie,
        )[0]
        == 400
    )
    assert get(city.url + "api/v1/ridership/stops.csv?from=yesterday", cookie)[0] == 422


def test_the_staff_page_shows_totals_charts_and_the_od_table(city):
    cookie = login(city.url)
    status, _, body = get(city.url + f"staff/ridership?{PERIOD}&lang=en", cookie)
    page = body.decode()
    assert status == 200
    assert re.search(r'id="boardings">8<', page) and re.search(r'id="alightings">6<', page)
    assert re.search(r'id="journeys">6<', page) and re.search(r'id="missing">1<', page)
    bars = dict(re.findall(r'data-name="([^"]+)" data-value="(\d+)"', page))
    assert bars["7"] == "8"  # boardings by hour: all at 7 o'clock
    assert bars["Child"] == "2" and bars["Revoked card"] == "1" and bars["Cash"] == "1"
    assert 'data-od="S01-S04">2<' in page  # adult + child, S01 to S04
    assert "長井駅前" in page  # stops by name
    assert "/api/v1/ridership/stops.csv?" in page
