"""School arrival and departure, and the absence alert: the tests that would catch a flapping
fence, a repeated notice, or an alert on a holiday."""

from __future__ import annotations

import math
import random
from datetime import date, datetime, timedelta

import pytest

from edge.protocol import Envelope, utc_timestamp
from edge.protocol.tracker import Position
from gateway.services.geofence import Fence
from gateway.services.school import Pipeline
from gateway.services.tracker_config import CircleConfig, FenceConfig, SchoolConfig
from gateway.services.tracker_db import TrackerDb
from sim.child_day import HOMES, JST, SCHOOL, ChildDay

SCHOOL_DAY = date(2026, 12, 1)  # Tuesday
HOLIDAY = date(2026, 11, 23)  # 勤労感謝の日, a Monday
RADIUS = 60.0
M = 111_195.0


def metres_east(lat: float, lon: float, metres: float) -> tuple[float, float]:
    return lat, lon + metres / (M * math.cos(math.radians(lat)))


class Rig:
    """A pipeline on a fresh database with one school and one child linked to one guardian."""

    def __init__(self, tmp_path, closed: list[str] | None = None) -> None:
        self.db = TrackerDb(tmp_path / "tracker.db")
        self.now = int(datetime(2026, 12, 1, 6, 0, tzinfo=JST).timestamp() * 1000)
        school = SchoolConfig(
            "nagai-chuo",
            "長井市立中央小学校",
            circle=CircleConfig(*SCHOOL, RADIUS),
            closed_days=closed or [],
        )
        self.db.add_child("hana", "nagai-chuo", 0)
        self.db.add_device("tracker-1", "hana", "tracker", None)
        self.db.add_guardian("sato", "sato@example.jp", "ja", None)
        self.db.link("sato", "hana", 0)
        self.published = []
        self.school = school
        self.restart()
        self.seq = 0

    def restart(self) -> None:
        """A (new) service process on the same database."""
        self.pipeline = Pipeline(
            self.db,
            [self.school],
            FenceConfig(),
            JST,
            ["email"],
            lambda: self.now,
            self.published.append,
        )

    def fix(self, at: datetime, lat: float, lon: float, acc: float | None = 5.0) -> None:
        self.seq += 1
        data = Position(lat, lon, acc, None, "gnss", "school").data()
        env = Envelope("tracker-1", self.seq, utc_timestamp(at), "position", data)
        self.now = max(self.now, int(at.timestamp() * 1000))
        self.pipeline.handle([env])

    def kinds(self) -> list[str]:
        return [a.kind for a in self.published]


def test_fence_distances_circle_and_polygon():
    circle = Fence.circle(*SCHOOL, 60)
    assert circle.signed_distance(*SCHOOL) == pytest.approx(-60)
    assert circle.signed_distance(*metres_east(*SCHOOL, 100)) == pytest.approx(40, abs=0.5)
    square = Fence.of_polygon(
        [
            metres_east(SCHOOL[0] + d[0] / M, SCHOOL[1], d[1])
            for d in [(-50, -50), (-50, 50), (50, 50), (50, -50)]
        ]
    )
    assert square.signed_distance(*SCHOOL) == pytest.approx(-50, abs=0.5)
    assert square.signed_distance(*metres_east(*SCHOOL, 80)) == pytest.approx(30, abs=0.5)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_an_hour_at_the_fence_with_30_m_accuracy_gives_no_repeated_notices(tmp_path, seed):
    rig = Rig(tmp_path)
    rng = random.Random(seed)
    gate = metres_east(*SCHOOL, RADIUS)  # standing on the fence line
    start = datetime(2026, 12, 1, 7, 50, tzinfo=JST)
    for i in range(360):  # one fix every 10 s for an hour, scattered as a 30 m fix is
        lat, lon = gate
        lat += rng.gauss(0, 20) / M
        lat, lon = metres_east(lat, lon, rng.gauss(0, 20))
        rig.fix(start + timedelta(seconds=10 * i), lat, lon, acc=30.0)
    assert rig.kinds().count("school_arrival") <= 1
    assert rig.kinds().count("school_departure") == 0
    assert rig.db.notification_counts()["pending"] == len(rig.published)


def test_arrival_needs_two_clear_fixes_a_minute_apart_and_departure_follows(tmp_path):
    rig = Rig(tmp_path)
    t = datetime(2026, 12, 1, 7, 50, tzinfo=JST)
    rig.fix(t, *metres_east(*SCHOOL, 300))  # outside: silent from unknown
    rig.fix(t + timedelta(minutes=1), *SCHOOL)  # inside, first
    assert rig.kinds() == []
    rig.fix(t + timedelta(minutes=1, seconds=30), *SCHOOL)  # second, but only 30 s
    assert rig.kinds() == []
    rig.fix(t + timedelta(minutes=2, seconds=10), *SCHOOL)
    assert rig.kinds() == ["school_arrival"]
    assert rig.published[0].ts_ms == int((t + timedelta(minutes=1)).timestamp() * 1000)
    leave = datetime(2026, 12, 1, 15, 0, tzinfo=JST)
    for k in range(3):
        rig.fix(leave + timedelta(minutes=k), *metres_east(*SCHOOL, 200 + 80 * k))
    assert rig.kinds() == ["school_arrival", "school_departure"]
    # back for a forgotten bag: arrival and departure are once a day each
    for k in range(3):
        rig.fix(leave + timedelta(minutes=10 + k), *SCHOOL)
    assert rig.kinds() == ["school_arrival", "school_departure"]


def test_fixes_sent_again_after_a_broker_crash_do_not_undo_an_arrival(tmp_path):
    """A broker that lost its session makes the tracker send its unconfirmed fixes again; the
    service gets a fix from the walk there after the child's first fixes inside. Judged as if
    new, that old fix outside wiped the arrival being confirmed, and the child, standing still
    and silent, got 'not at school' (six children of the full city run)."""
    rig = Rig(tmp_path)
    t = datetime(2026, 12, 1, 7, 50, tzinfo=JST)
    outside = metres_east(*SCHOOL, 100)
    rig.fix(t - timedelta(seconds=30), *outside)
    again = Envelope(  # that fix outside, as the tracker sends it again
        "tracker-1",
        rig.seq,
        utc_timestamp(t - timedelta(seconds=30)),
        "position",
        Position(*outside, 5.0, None, "gnss", "school").data(),
    )
    rig.fix(t, *SCHOOL)
    rig.pipeline.handle([again])  # ... after the first fix inside
    rig.fix(t + timedelta(seconds=90), *SCHOOL)  # then the child stands still
    assert rig.kinds() == ["school_arrival"]
    assert rig.pipeline.counters["repeated_position"] == 1


def test_an_arrival_half_confirmed_when_the_service_is_killed_is_confirmed_after_it(tmp_path):
    """The service is SIGKILLed between the child's first fix inside and the second: the
    restarted one must still make the arrival (it forgot the first fix; the child then stood
    still and the guardian would be told 'not at school')."""
    rig = Rig(tmp_path)
    t = datetime(2026, 12, 1, 7, 50, tzinfo=JST)
    rig.fix(t - timedelta(seconds=30), *metres_east(*SCHOOL, 100))
    rig.fix(t, *SCHOOL)
    assert rig.kinds() == []
    rig.restart()  # killed and started again on the same database
    rig.fix(t + timedelta(seconds=90), *SCHOOL)
    assert rig.kinds() == ["school_arrival"]
    assert rig.published[0].ts_ms == int(t.timestamp() * 1000)
    absence = rig.pipeline.absence_check(
        int(datetime(2026, 12, 1, 8, 31, tzinfo=JST).timestamp() * 1000)
    )
    assert absence == []


def test_a_bad_fix_inside_never_decides(tmp_path):
    rig = Rig(tmp_path)
    t = datetime(2026, 12, 1, 7, 50, tzinfo=JST)
    for k in range(10):  # a multipath fix in the middle of the school, 120 m uncertain
        rig.fix(t + timedelta(minutes=k), *SCHOOL, acc=120.0)
    for k in range(10):  # a fix with no accuracy counts as 25 m (gated at 50): undecided
        rig.fix(t + timedelta(minutes=20 + k), *metres_east(*SCHOOL, 30), acc=None)
    assert rig.kinds() == []


def test_two_fixes_either_side_of_the_school_count_as_an_arrival(tmp_path):
    rig = Rig(tmp_path)
    t = datetime(2026, 12, 1, 7, 50, tzinfo=JST)
    rig.fix(t, *metres_east(*SCHOOL, -150))
    rig.fix(t + timedelta(minutes=4), *metres_east(*SCHOOL, 150))  # no fix inside
    assert rig.kinds() == ["school_arrival"]
    assert rig.published[0].ts_ms == int((t + timedelta(minutes=2)).timestamp() * 1000)


def absence_at(rig: Rig, day: date, hh: int, mm: int) -> list[str]:
    moment = datetime(day.year, day.month, day.day, hh, mm, tzinfo=JST)
    rig.now = int(moment.timestamp() * 1000)
    return [a.kind for a in rig.pipeline.absence_check(rig.now)]


def test_a_late_child_gets_exactly_one_not_at_school_and_none_on_a_holiday(tmp_path):
    rig = Rig(tmp_path)
    assert absence_at(rig, SCHOOL_DAY, 8, 29) == []
    assert absence_at(rig, SCHOOL_DAY, 8, 30) == ["not_at_school"]
    for minute in range(31, 60):
        assert absence_at(rig, SCHOOL_DAY, 8, minute) == []
    assert rig.kinds() == ["not_at_school"]
    assert rig.published[0].data == {"school": "nagai-chuo", "by": "08:30"}
    for day in (HOLIDAY, date(2026, 12, 5), date(2026, 12, 6)):  # holiday, Saturday, Sunday
        assert absence_at(rig, day, 8, 30) == []
    assert len(rig.db.alerts()) == 1


def test_school_closed_days_and_an_arrived_child_get_no_absence_alert(tmp_path):
    rig = Rig(tmp_path, closed=["2026-12-24..2027-01-07"])
    assert absence_at(rig, date(2026, 12, 25), 8, 30) == []
    arrive = datetime(2026, 12, 2, 7, 55, tzinfo=JST)
    for k in range(3):
        rig.fix(arrive + timedelta(minutes=k), *SCHOOL)
    assert absence_at(rig, date(2026, 12, 2), 8, 30) == []
    assert rig.kinds() == ["school_arrival"]


@pytest.mark.parametrize("seed", [3, 4])
def test_a_simulated_day_gives_one_arrival_and_one_departure(tmp_path, seed):
    """The receiver simulator's day (jitter, multipath near the school, indoors without a fix),
    sampled every 15 s like the tracker in its school window."""
    rig = Rig(tmp_path)
    child = ChildDay(SCHOOL_DAY, HOMES[seed % len(HOMES)], seed=seed)
    t = datetime(2026, 12, 1, 7, 0, tzinfo=JST)
    while t < datetime(2026, 12, 1, 18, 0, tzinfo=JST):
        sky = child.sky(t)
        if sky.fix:
            rig.fix(t, sky.lat, sky.lon, acc=round(sky.hdop * 5.0, 1))
        t += timedelta(seconds=15)
        rig.pipeline.absence_check(int(t.timestamp() * 1000))  # as the service's ticker does
    assert rig.kinds().count("school_arrival") == 1
    assert rig.kinds().count("school_departure") == 1
    assert "not_at_school" not in rig.kinds()


def test_each_alert_is_queued_once_per_guardian_and_channel(tmp_path):
    rig = Rig(tmp_path)
    rig.db.add_guardian("sato-2", None, "en", None)
    rig.db.link("sato-2", "hana", 0)
    absence_at(rig, SCHOOL_DAY, 8, 30)
    absence_at(rig, SCHOOL_DAY, 8, 31)
    assert rig.db.notification_counts()["pending"] == 2  # two guardians, e-mail


def test_an_sos_event_alerts_once_per_press_even_when_delivered_twice(tmp_path):
    rig = Rig(tmp_path)
    at = datetime(2026, 12, 1, 16, 5, tzinfo=JST)
    press = Envelope("tracker-1", 50, utc_timestamp(at), "sos", {"lat": 38.1, "lon": 140.0})
    rig.pipeline.handle([press])
    rig.pipeline.handle([press])  # the broker re-delivered it
    later = Envelope("tracker-1", 51, utc_timestamp(at + timedelta(minutes=3)), "sos", {})
    rig.pipeline.handle([later])
    assert rig.kinds() == ["sos", "sos"]
    assert "lat" not in rig.published[0].data  # the alert names the child, not where


def test_unknown_devices_and_bad_positions_are_counted_and_store_nothing(tmp_path):
    rig = Rig(tmp_path)
    at = utc_timestamp(datetime(2026, 12, 1, 7, 50, tzinfo=JST))
    rig.pipeline.handle(
        [
            Envelope("tracker-9", 1, at, "position", {"lat": 38.1, "lon": 140.0}),
            Envelope("tracker-1", 2, at, "position", {"lat": 98.1, "lon": 140.0}),
        ]
    )
    assert rig.pipeline.counters == {"unknown_device": 1, "invalid_position": 1, "positions": 0}
    assert rig.db.positions_for("test", "hana", 0, 2**62, 0) == []
