"""Taps paired into journeys, kept on disk across restarts; tablet entries taken once."""

from __future__ import annotations

from collections import Counter

from edge.agents.bus.journeys import BusState, Place
from edge.protocol.bus import card_hash

SECRET = b"city-secret-0123456789"


def state(tmp_path, counts=None):
    counts = counts if counts is not None else Counter()
    return BusState(tmp_path / "state.db", lambda name: counts.update([name])), counts


def test_card_hash_is_keyed_and_names_the_technology():
    uid = bytes.fromhex("62E3086CED")
    a = card_hash(SECRET, "em4100", uid)
    assert len(a) == 32 and uid.hex() not in a.lower()
    assert a == card_hash(SECRET, "em4100", uid)
    assert a != card_hash(b"another-city-secret!!", "em4100", uid)
    assert a != card_hash(SECRET, "felica", uid)


def test_tap_on_then_off_is_one_journey_with_both_stops(tmp_path):
    s, counts = state(tmp_path)
    assert s.tap("c1", "em4100", Place("M1", "WD-01", "S01"), "t0", 0.0, 60) == []
    assert s.on_board("WD-01") == 1
    (journey,) = s.tap("c1", "em4100", Place("M1", "WD-01", "S04"), "t1", 600.0, 60)
    assert (journey["board_stop"], journey["alight_stop"], journey["tap_off"]) == (
        "S01",
        "S04",
        True,
    )
    assert s.on_board("WD-01") == 0
    assert counts == {"tap_on": 1, "tap_off": 1}


def test_a_second_tap_at_the_same_stop_soon_after_is_a_double_tap(tmp_path):
    s, counts = state(tmp_path)
    s.tap("c1", "em4100", Place("M1", "WD-01", "S01"), "t0", 0.0, 60)
    assert s.tap("c1", "em4100", Place("M1", "WD-01", "S01"), "t0", 5.0, 60) == []
    assert counts["double_tap"] == 1 and s.on_board("WD-01") == 1


def test_missing_tap_off_closed_at_trip_end_and_on_next_trip(tmp_path):
    s, counts = state(tmp_path)
    s.tap("c1", "em4100", Place("M1", "WD-01", "S02"), "t0", 0.0, 60)
    s.tap("c2", "em4100", Place("M1", "WD-01", "S03"), "t0", 10.0, 60)
    # c1 boards the next trip without having tapped off
    (closed,) = s.tap("c1", "em4100", Place("M1", "WD-02", "S08"), "t2", 1500.0, 60)
    assert closed["board_stop"] == "S02" and closed["alight_stop"] is None
    assert not closed["tap_off"]
    # the trip WD-01 is over: c2 is closed too, c1's new journey on WD-02 stays open
    (left,) = s.close_open({"WD-02"}, older_than_t=-1)
    assert left["card"] == "c2" and left["trip_id"] == "WD-01"
    assert counts["missing_tap_off"] == 2 and s.on_board("WD-02") == 1


def test_journeys_older_than_max_ride_are_closed(tmp_path):
    s, _ = state(tmp_path)
    s.tap("c1", "em4100", Place("M1", "WD-01", "S01"), "t0", 0.0, 60)
    assert s.close_open({"WD-01"}, older_than_t=-1) == []
    assert len(s.close_open({"WD-01"}, older_than_t=1.0)) == 1


def test_open_journeys_and_tablet_ids_survive_a_restart(tmp_path):
    s, _ = state(tmp_path)
    s.tap("c1", "em4100", Place("M1", "WD-01", "S01"), "t0", 0.0, 60)
    s.add_entry(
        {
            "entry": "e-0000001",
            "action": "board",
            "fare": "cash",
            "trip_id": "WD-01",
            "stop_id": "S01",
            "ts": "t",
        }
    )
    s.close()
    s, _ = state(tmp_path)
    assert s.on_board("WD-01") == 1 and s.has_entry("e-0000001")
    (journey,) = s.tap("c1", "em4100", Place("M1", "WD-01", "S05"), "t1", 900.0, 60)
    assert journey["board_stop"] == "S01"


def test_tablet_counts_leave_out_undone_entries(tmp_path):
    s, _ = state(tmp_path)
    for i, (action, fare) in enumerate([("board", "cash"), ("board", "cash"), ("alight", "child")]):
        s.add_entry(
            {"entry": f"e{i}", "action": action, "fare": fare, "trip_id": "WD-01", "ts": "t"}
        )
    s.add_entry({"entry": "u1", "action": "undo", "target": "e1", "trip_id": "WD-01", "ts": "t"})
    assert s.counts("WD-01") == {"board": {"cash": 1}, "alight": {"child": 1}}
    assert s.counts("WD-02") == {"board": {}, "alight": {}}


def test_at_the_terminus_riders_of_the_trip_that_ended_tap_off_into_it(tmp_path):
    s, counts = state(tmp_path)
    s.tap("c1", "em4100", Place("M1", "WD-01", "S03"), "t0", 0.0, 60)
    # the bus stands at S08, already on WD-02 (which starts here); c1 taps off
    (journey,) = s.tap("c1", "em4100", Place("M1", "WD-02", "S08"), "t1", 900.0, 60, "WD-01")
    assert (journey["trip_id"], journey["alight_stop"], journey["tap_off"]) == (
        "WD-01",
        "S08",
        True,
    )
    assert counts["missing_tap_off"] == 0 and s.on_board("WD-02") == 0
