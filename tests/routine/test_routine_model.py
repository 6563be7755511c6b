"""The routine model and its alerts on small hand-made tracks."""

from __future__ import annotations

import math
import pickle
from datetime import date, timedelta

import pytest

from gateway.services.routine_config import RoutineConfig
from gateway.services.routine_model import SLOTS, TRAVEL
from sim.city_children import lat_lon
from tests.routine.tracks import (
    CLUB,
    HOME,
    SCHOOL,
    Day,
    engine,
    evening_out,
    feed,
    free_day,
    routine,
    school_day,
)

MONDAY = date(2026, 10, 5)
AFTER_4_WEEKS = MONDAY + timedelta(weeks=4)  # a Monday


def raised(events):
    return [e for e in events if e.action == "raise"]


def test_stay_points_become_places_and_quarter_hours():
    eng = engine()
    feed(eng, [school_day(MONDAY), school_day(MONDAY + timedelta(days=1))])
    model = eng.children["hana"].model
    centres = sorted((round(x), round(y)) for x, y, _ in model.places.values())
    assert len(centres) == 3  # home, school, club: walking past nothing makes a place
    for want in (HOME, SCHOOL, CLUB):
        assert min(math.dist(want, c) for c in centres) < 80  # the walk away is in the stay
    (first,) = model.days  # Monday is learned once Tuesday began
    school = model.place_at(*SCHOOL)
    home = model.place_at(*HOME)
    assert first.slots[10 * 4] == school  # 10:00 at school, though no fix said so then
    assert first.slots[3 * 4] == home  # 03:00 at home
    assert first.slots[7 * 4 + 3] == TRAVEL or first.slots[7 * 4 + 3] == school  # 07:45 walking
    assert len(first.slots) == SLOTS


def test_cold_start_is_silent_even_at_a_new_place():
    eng = engine()
    days = routine(MONDAY, 1)
    odd = Day(MONDAY + timedelta(days=7)).stay("07:40").walk(SCHOOL).stay("10:00")
    odd.walk((1500.0, 1000.0), lost=True).stay("12:00").walk(HOME).stay("23:59")
    assert raised(feed(eng, [*days, odd])) == []
    assert eng.children["hana"].model.days_seen < RoutineConfig().min_days


def test_a_brand_new_place_on_a_school_day_is_told_in_japanese_and_english():
    eng = engine()
    events = feed(eng, routine(MONDAY, 4))
    assert raised(events) == []  # four weeks of the usual: not one alert
    odd = Day(AFTER_4_WEEKS + timedelta(days=1)).stay("07:40").walk(SCHOOL).stay("10:00")
    arrive = odd.t + math.dist(SCHOOL, (1500.0, 2000.0)) / 1.1
    odd.walk((1500.0, 2000.0), lost=True).stay("12:00").walk(HOME).stay("23:59")
    events = raised(feed(eng, [odd]))
    assert [e.kind for e in events] == ["place"]
    (alert,) = events
    assert 0 <= alert.ts_ms - odd.ms(arrive) <= 10 * 60_000
    assert "ふだん" in alert.reason["ja"] and "km" in alert.reason["ja"]
    assert "Usually" in alert.reason["en"]
    assert "." not in alert.reason["ja"].split("km")[0][-8:-4]  # no coordinates, a distance


def test_the_same_on_a_saturday_afternoon_near_home_is_no_alert():
    config = RoutineConfig(memory_days=90, min_days=14)
    eng = engine(config)
    feed(eng, routine(MONDAY, 9))  # nine Saturdays: the model judges Saturdays
    assert eng.children["hana"].model.schedules["saturday"].days >= config.min_part_days
    saturday = MONDAY + timedelta(weeks=9, days=5)
    friend = Day(saturday).stay("10:00").walk((-400.0, 0.0)).stay("11:00", indoors=False)
    friend.walk(HOME).stay("13:30").walk((500.0, 300.0)).stay("16:30").walk(HOME).stay("23:59")
    assert raised(feed(eng, [friend])) == []
    # the same place far from home on that Saturday morning, when she is always in the park
    far = Day(saturday + timedelta(weeks=1)).stay("09:55")
    far.walk((3000.0, 2500.0), lost=True).stay("12:00").walk(HOME, lost=True).stay("23:59")
    assert [e.kind for e in raised(feed(eng, [far]))] == ["place"]


def test_off_the_usual_way_home_is_told_and_cleared_when_back_on_it():
    eng = engine()
    feed(eng, routine(MONDAY, 4))
    day = Day(AFTER_4_WEEKS).stay("07:40").walk(SCHOOL).stay("15:00").walk(CLUB).stay("17:00")
    day.walk((300.0, 500.0), (900.0, 500.0), (900.0, 300.0), (0.0, 300.0), HOME).stay("23:59")
    events = feed(eng, [day])
    assert [(e.action, e.kind) for e in events] == [("raise", "route"), ("clear", "route")]
    assert "いつもの道" in events[0].reason["ja"]
    assert events[0].since_ms < events[0].ts_ms <= events[0].since_ms + 6 * 60_000


def test_not_home_by_the_usual_time():
    eng = engine()
    feed(eng, routine(MONDAY, 4))
    late = Day(AFTER_4_WEEKS).stay("07:40").walk(SCHOOL).stay("15:00").walk(CLUB)
    late.stay("19:30").walk(SCHOOL, HOME).stay("23:59")  # at the club 2.5 h longer
    events = feed(eng, [late])
    assert [(e.action, e.kind) for e in events] == [("raise", "late"), ("clear", "late")]
    alert = events[0]
    assert "自宅" in alert.reason["ja"] and "home" in alert.reason["en"]
    usual_home = late.ms(17 * 3600 + math.dist(CLUB, SCHOOL) / 1.1 + 1000 / 1.1)
    assert usual_home < alert.ts_ms <= usual_home + 40 * 60_000


def test_out_at_an_unusual_hour():
    eng = engine()
    feed(eng, routine(MONDAY, 4))
    night = evening_out(AFTER_4_WEEKS, "22:00", (0.0, -600.0), "22:40")
    events = raised(feed(eng, [night]))
    assert [e.kind for e in events] == ["hour"]
    assert events[0].ts_ms - night.ms(22 * 3600) <= 10 * 60_000


def test_this_is_fine_stops_that_place_alerting():
    eng = engine()
    feed(eng, routine(MONDAY, 4))

    def grandma(day: date) -> Day:  # fetched from school for the dentist, then grandma's
        d = Day(day).stay("07:40").walk(SCHOOL).stay("10:00")
        return d.walk((2000.0, 2500.0), lost=True).stay("14:00").walk(HOME, lost=True).stay("23:59")

    (alert,) = raised(feed(eng, [grandma(AFTER_4_WEEKS)]))
    assert alert.kind == "place"
    assert eng.feedback("hana", alert.key, alert.ts_ms)
    assert not eng.feedback("hana", "2026-01-01/place/9", alert.ts_ms)  # unknown key
    assert raised(feed(eng, [grandma(AFTER_4_WEEKS + timedelta(days=7))])) == []
    assert eng.counters["fine_place"] == 1


def test_a_model_forgets_beyond_its_memory():
    eng = engine(RoutineConfig(memory_days=10))
    feed(eng, routine(MONDAY, 3))
    model = eng.children["hana"].model
    assert len(model.days) <= 11
    assert min(d.day for d in model.days) >= MONDAY + timedelta(days=21 - 11)


def test_positions_worse_than_the_limit_and_out_of_order_teach_nothing():
    eng = engine()
    assert eng.observe("hana", 1_000_000, 38.1, 140.03, 500.0) == []
    assert "hana" not in eng.children
    eng.observe("hana", 2_000_000, 38.1, 140.03, 5.0)
    eng.observe("hana", 1_500_000, 38.1, 140.03, 5.0)
    assert eng.counters == {"inaccurate": 1, "out_of_order": 1}


@pytest.mark.parametrize("bad", [{"late_parts": ["weekday"]}, {"hours": "8pm-5am"}])
def test_bad_settings_are_named(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        RoutineConfig(**bad)


def test_free_days_build_schedules_too():
    eng = engine()
    feed(eng, [free_day(MONDAY + timedelta(days=5))])
    assert eng.children["hana"].model.places


def _without(day: Day, start: str, end: str) -> Day:
    """``day`` with the fixes between ``start`` and ``end`` lost (no fix, a flat battery)."""
    lo, hi = day.ms(_hhmm(start)), day.ms(_hhmm(end))
    day.fixes = [f for f in day.fixes if not lo <= f[0] < hi]
    return day


def _hhmm(text: str) -> float:
    h, m = text.split(":")
    return int(h) * 3600 + int(m) * 60.0


def test_a_walk_whose_fixes_stop_next_to_a_known_place_is_no_stay_there():
    # Saturdays and Sundays in the park (400 m W): a place she is never at on a school morning.
    eng = engine()
    feed(eng, routine(MONDAY, 4))
    park = eng.children["hana"].model.place_at(-400.0, 0.0)
    assert park is not None
    # To school by the park; the fixes stop as she passes it and come back at school's door.
    day = Day(AFTER_4_WEEKS).stay("07:40").walk((-400.0, 0.0), (-400.0, 1000.0), SCHOOL)
    day.stay("15:00").walk(CLUB).stay("17:00").walk(SCHOOL, HOME).stay("23:59")
    _without(day, "07:47", "08:08")
    assert raised(feed(eng, [day])) == []


def test_the_walk_ended_fix_then_silence_is_a_stay_though_she_left_unseen():
    # Thursdays at cram school (800 m E of home) 17:30-19:00; the tracker sends its "walk
    # ended" fix at the door, nothing indoors, and its first fix of the walk home only 150 m
    # down the street (the first look of a walk comes at the still pace).
    cram = (800.0, 0.0)

    def thursday(day: date) -> Day:
        d = Day(day).stay("07:40").walk(SCHOOL).stay("15:00").walk(CLUB).stay("17:00")
        d.walk(SCHOOL, HOME).stay("17:30").walk(cram).stay("19:00").walk(HOME).stay("23:59")
        return _without(d, "19:00", "19:03")

    days = [thursday(d.day) if d.day.weekday() == 3 else d for d in routine(MONDAY, 4)]
    eng = engine()
    feed(eng, days)
    model = eng.children["hana"].model
    place = model.place_at(*cram)
    assert place is not None  # learned as a place from four such Thursdays
    assert model.share_of("school", 18 * 4, place) >= 0.15  # one school day in five
    assert raised(feed(eng, [thursday(AFTER_4_WEEKS + timedelta(days=3))])) == []


@pytest.mark.parametrize(("beyond", "told"), [(250.0, False), (700.0, True)])
def test_a_stay_at_the_schools_back_gate_is_school_but_not_one_further_off(beyond, told):
    """In by the back gate, 250 m past where the school was learned (more than one place radius,
    under two): school, no alert. The same day 700 m past it is somewhere else, told."""
    eng = engine()
    assert raised(feed(eng, routine(MONDAY, 4))) == []
    day = Day(AFTER_4_WEEKS + timedelta(days=1)).stay("07:40")
    day.walk((0.0, 1000.0 + beyond), lost=True)  # fixes back at the door: no walk to judge
    day.stay("15:00").walk(CLUB).stay("17:00").walk(SCHOOL, HOME).stay("23:59")
    kinds = [e.kind for e in raised(feed(eng, [day]))]
    assert bool(kinds) is told, kinds  # 700 m past: not there by the usual time, told


def test_a_stay_seen_by_one_fix_at_the_door_is_learned_from_the_silence():
    # Tuesdays at cram school 848 m E of home: the last fix of the walk there is 48 m short of
    # the door, the "walk ended" fix at the door (two fixes too far apart to say "stopped"),
    # nothing indoors, and the first fix of the walk home 150 m up the street to the north.
    cram = (848.0, 0.0)

    def tuesday(day: date) -> Day:
        d = Day(day).stay("07:40").walk(SCHOOL).stay("15:00").walk(CLUB).stay("17:00")
        d.walk(SCHOOL, HOME).stay("17:30").walk(cram).stay("19:00")
        d.walk((848.0, 300.0), (0.0, 300.0), HOME).stay("23:59")
        return _without(d, "19:00", "19:02")

    days = [tuesday(d.day) if d.day.weekday() == 1 else d for d in routine(MONDAY, 4)]
    eng = engine()
    assert raised(feed(eng, days)) == []
    model = eng.children["hana"].model
    place = model.place_at(*cram)
    assert place is not None  # an hour and a half of silence at its door: she was in there
    assert model.share_of("school", 18 * 4, place) >= 0.15  # one school day in five


def test_a_weekly_place_is_familiar_on_its_day_though_rare_among_all_school_days():
    # Once, three weeks ago on a Tuesday, she stayed at a swimming school 1.2 km away until
    # 19:30: one school day in twenty, and the oldest. Today, Tuesday, she is there again.
    pool = (1200.0, -400.0)

    def swimming(day: date) -> Day:
        d = Day(day).stay("07:40").walk(SCHOOL).stay("15:00").walk(CLUB).stay("17:00")
        d.walk(SCHOOL, HOME).stay("17:45").walk(pool).stay("19:30").walk(HOME)
        return d.stay("23:59")

    first = MONDAY + timedelta(days=8)  # the second Tuesday
    days = [swimming(d.day) if d.day == first else d for d in routine(MONDAY, 4)]
    eng = engine()
    feed(eng, days)
    model = eng.children["hana"].model
    place = model.place_at(*pool)
    assert place is not None
    assert model.share_of("school", 19 * 4, place) < RoutineConfig().rare_share
    assert raised(feed(eng, [swimming(AFTER_4_WEEKS + timedelta(days=1))])) == []


@pytest.mark.parametrize(("until", "told"), [("18:00", False), ("19:00", True)])
def test_a_first_stop_round_the_corner_from_home_is_late_only_if_it_lasts(until, told):
    # On the way home, a first stop at the park 420 m from home (outdoors: a fix every 15 min;
    # beyond the two place radii that count as home's door). Usually home by about 17:20: 40
    # minutes there is no news; an hour and a half is.
    park = (0.0, 420.0)
    eng = engine()
    feed(eng, routine(MONDAY, 4))
    day = Day(AFTER_4_WEEKS).stay("07:40").walk(SCHOOL).stay("15:00").walk(CLUB).stay("17:00")
    day.walk(SCHOOL, park).stay(until, indoors=False).walk(HOME).stay("23:59")
    kinds = [e.kind for e in raised(feed(eng, [day]))]
    assert kinds == (["late"] if told else [])


@pytest.mark.parametrize(("until", "told"), [("20:20", False), ("21:30", True)])
def test_on_the_way_back_from_an_evening_out_is_not_going_out_at_night(until, told):
    # At grandma's 450 m away from 19:10: back by 20:30 is an evening visit; still out at 21:00
    # (an hour into the night hours) is told.
    grandma = (-450.0, 0.0)
    eng = engine()
    feed(eng, routine(MONDAY, 4))
    day = evening_out(AFTER_4_WEEKS, "19:00", grandma, until, indoors=True)
    alerts = raised(feed(eng, [day]))
    assert [e.kind for e in alerts] == (["hour"] if told else [])
    if told:
        assert alerts[0].ts_ms <= day.ms(21 * 3600 + 10 * 60)


@pytest.mark.parametrize(("fresh_s", "told"), [(None, False), (1500.0, True)])
def test_a_walk_to_school_that_falls_silent_is_not_judged_once_its_last_fix_is_old(fresh_s, told):
    # The fixes stop 350 m before school (no fix indoors, the "walk ended" fix lost too) and
    # come back only as she leaves at 15:00. Nothing says she is walking any more: with a
    # 25-minute horizon a fix of 07:49 would call her late at 08:10.
    eng = engine(RoutineConfig() if fresh_s is None else RoutineConfig(fresh_s=fresh_s))
    feed(eng, routine(MONDAY, 4))
    day = _without(school_day(AFTER_4_WEEKS), "07:50", "15:00")
    assert [e.kind for e in raised(feed(eng, [day]))] == (["late"] if told else [])


def _weeks(first: date, weeks: int, school, saturday=free_day, sunday=free_day) -> list[Day]:
    """``weeks`` of days from ``first`` (a Monday), each made by the function for its kind."""
    days = []
    for n in range(weeks * 7):
        day = first + timedelta(days=n)
        make = school if day.weekday() < 5 else saturday if day.weekday() == 5 else sunday
        days.append(make(day))
    return days


def test_a_detour_from_a_place_left_once_a_week_is_told():
    """Wednesdays after school at her grandparents' (800 m E of home), then home along y=0: four
    trips from there in four weeks. Half-way home one Wednesday she goes 600 m north and back."""
    gran = (800.0, 0.0)

    def wednesday(day: date, detour: bool = False) -> Day:
        d = Day(day).stay("07:40").walk(SCHOOL).stay("15:00").walk((800.0, 1000.0), gran)
        d.stay("17:00")
        if detour:
            d.walk((400.0, 0.0), (400.0, 600.0), (300.0, 600.0), (300.0, 0.0), HOME)
        else:
            d.walk(HOME)
        return d.stay("23:59")

    eng = engine()
    usual = _weeks(MONDAY, 4, lambda d: wednesday(d) if d.weekday() == 2 else school_day(d))
    assert raised(feed(eng, usual)) == []
    model = eng.children["hana"].model
    assert model.trip_counts[model.place_at(*gran)] == 4  # fewer than eight: judged all the same
    day = wednesday(AFTER_4_WEEKS + timedelta(days=2), detour=True)
    events = raised(feed(eng, [day]))
    assert [e.kind for e in events] == ["route"]
    assert events[0].ts_ms - day.ms(17 * 3600 + 400 / 1.1) <= 6 * 60_000  # 400 m along, then off


def test_a_detour_along_the_street_of_her_saturday_club_is_told():
    """Saturdays she walks to her sports club up x=300. On a school day's way home she leaves
    the usual street (x=0) for 300 m, walks 500 m up that Saturday street and back: that is no
    street she knows on a school day."""

    def saturday(day: date) -> Day:
        d = Day(day).stay("09:00").walk((300.0, 0.0), (300.0, 800.0), (1000.0, 800.0))
        d.stay("12:00", indoors=False).walk((300.0, 800.0), (300.0, 0.0), HOME)
        return d.stay("23:59")

    eng = engine()
    assert raised(feed(eng, _weeks(MONDAY, 4, school_day, saturday))) == []
    day = Day(AFTER_4_WEEKS).stay("07:40").walk(SCHOOL).stay("15:00").walk(CLUB).stay("17:00")
    day.walk(SCHOOL, (0.0, 300.0), (300.0, 300.0), (300.0, 800.0), (0.0, 800.0), HOME)
    events = raised(feed(eng, [day.stay("23:59")]))
    assert [e.kind for e in events] == ["route"]


def test_the_first_walk_to_the_park_after_school_down_its_own_street_is_not_told():
    """Weekends 16:00-18:00 in the park 300 m E of home. One Monday she goes there from the club
    for the first time, straight down the park's street (x=300) instead of the usual one (x=0):
    700 m off her school-day ways, but heading for a place she knows at that hour near home."""
    park = (300.0, 0.0)

    def weekend(day: date) -> Day:
        d = Day(day).stay("16:00").walk(park).stay("18:00", indoors=False).walk(HOME)
        return d.stay("23:59")

    eng = engine()
    assert raised(feed(eng, _weeks(MONDAY, 4, school_day, weekend, weekend))) == []
    day = Day(AFTER_4_WEEKS).stay("07:40").walk(SCHOOL).stay("15:00").walk(CLUB).stay("17:00")
    day.walk(park).stay("17:45", indoors=False).walk(HOME).stay("23:59")
    assert raised(feed(eng, [day])) == []
    # the same walk on to a street corner that is no place she knows is told
    odd = Day(AFTER_4_WEEKS + timedelta(days=1)).stay("07:40").walk(SCHOOL).stay("15:00")
    odd.walk(CLUB).stay("17:00").walk((300.0, 500.0), (900.0, 500.0), (900.0, 0.0), HOME)
    assert [e.kind for e in raised(feed(eng, [odd.stay("23:59")]))] == ["route"]


def test_a_model_saved_before_the_newer_fields_loads_and_judges():
    # The tracker service keeps each child's state pickled; one saved by the previous version
    # has no ``left_home_ms`` (model) nor ``trail`` (engine). Saved while she is out at night,
    # it must load and go on judging.
    eng = engine()
    feed(eng, routine(MONDAY, 4))
    night = evening_out(AFTER_4_WEEKS, "21:00", (0.0, -900.0), "22:40")
    saved_at = night.ms(21 * 3600 + 5 * 60)
    for ts, x, y in [f for f in night.fixes if f[0] < saved_at]:
        eng.tick(ts)
        eng.observe("hana", ts, *lat_lon(x, y), 6.0)
    state = eng.children["hana"]
    del state.model.__dict__["left_home_ms"]
    del state.__dict__["trail"]
    eng.children["hana"] = pickle.loads(pickle.dumps(state))
    night.fixes = [f for f in night.fixes if f[0] >= saved_at]
    assert [e.kind for e in raised(feed(eng, [night]))] == ["hour"]
