"""A bus running its timetable with riders boarding and alighting by a demand pattern: what the
riders did is what the city counts. Several seeds, each a different day of riders."""

from __future__ import annotations

import pytest
from bus_rig import jst
from store_helpers import get, login, wait_until

from sim.transit.bus_run import BusDrive, Riders

SPEED = 60.0


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 17, 29])
def test_a_day_of_riders_is_counted_as_it_happened(bus_rig, seed):
    rig = bus_rig
    drive = BusDrive(rig.feed, ["WD-01", "WD-02"], jst(12, 0))
    passes = [bytes([0x10, seed, 0, 0, i]) for i in range(40)]
    rig.start_bus(jst(6, 59, 30), speed=SPEED, where=drive.sky, gnss_period_s=6.0)
    riders = Riders(drive, rig.clock, rig.reader, passes, seed, rig.tablet_url, rate=0.7).start()
    try:
        wait_until(lambda: rig.clock.now() >= jst(7, 31, 30), 120, "the bus on its second trip")
    finally:
        riders.stop()
    assert not riders.errors and not rig.reader.errors
    done = riders.done
    assert done.taps_on, "the demand pattern gave no card riders: pick another seed"
    still_aboard = {r.uid for r in riders.aboard}  # their journeys are not over yet
    ended = [tap for tap in done.taps_on if tap[0] not in still_aboard or tap[1] == "WD-01"]
    expected_journeys = len(ended)
    journeys = rig.wait_messages("journey", expected_journeys, timeout_s=30)
    by_card = {}
    for j in journeys:
        by_card.setdefault(j.data["card"], []).append(j.data)
    for uid, trip, stop in ended:
        (journey,) = [j for j in by_card[rig.card(uid)] if j["trip_id"] == trip]
        assert journey["board_stop"] == stop, (uid.hex(), journey)
    for uid, trip, stop in done.taps_off:
        (journey,) = [j for j in by_card[rig.card(uid)] if j["trip_id"] == trip]
        assert (journey["alight_stop"], journey["tap_off"]) == (stop, True)
    for uid, trip in done.forgot:
        (journey,) = [j for j in by_card[rig.card(uid)] if j["trip_id"] == trip]
        assert journey["alight_stop"] is None and not journey["tap_off"]
    assert len(journeys) == expected_journeys  # no phantom journeys, no doubles
    tablet = rig.wait_messages("tablet", len(done.tablet))
    assert sorted((e.data["action"], e.data["fare"], e.data["stop_id"]) for e in tablet) == sorted(
        done.tablet
    )
    # the staff's figures: every boarding counted once, at its stop
    cookie = login(rig.store.url)
    _, _, body = get(
        rig.store.url + "api/v1/ridership/stops.csv?from=2026-11-30T00:00:00Z"
        "&to=2026-12-02T00:00:00Z",
        cookie,
    )
    rows = [line.split(",") for line in body.decode().splitlines()[1:]]
    assert sum(int(r[4]) for r in rows) == len(ended) + sum(
        1 for a, _, _ in done.tablet if a == "board"
    )
