"""Flood-aware reporting: quiet in dry weather, every few minutes in a flood, an event at each
warning level (Japan's crisis-management water-level gauge practice)."""

from __future__ import annotations

import pytest

from edge.agents.river.config import Levels, ReportingConfig
from edge.agents.river.measurement import Reading
from edge.agents.river.reporting import ReportingPolicy
from sim.scenarios import BaseFlow, crossings, flood_through_all_levels

LEVELS = Levels(standby=1.5, caution=2.0, evacuation=2.5, danger=3.0)
DAY = 86400.0


def level(m: float) -> Reading:
    return Reading(9, 9, level_m=m, distance_mm=round((5 - m) * 1000))


MISSING = Reading(9, 1, missing="no_echo")


def run(policy: ReportingPolicy, river, until_s: float, interval_s: float = 600.0, missing=()):
    """Drive the policy like the agent does; every decision with its time and reading."""
    t, log = 0.0, []
    while t <= until_s:
        reading = MISSING if any(a <= t < b for a, b in missing) else level(river.level_at(t))
        decision = policy.decide(t, reading, interval_s)
        log.append((t, reading, decision))
        t += decision.next_in_s
    return log


def test_dry_weather_measures_every_10_minutes_and_sends_a_daily_heartbeat():
    policy = ReportingPolicy(LEVELS, ReportingConfig(observe_from_m=1.0))
    log = run(policy, BaseFlow(base_m=0.6), 3 * DAY)
    assert {d.next_in_s for _, _, d in log} == {600.0}
    sent = [t for t, _, d in log if d.send_reading]
    assert sent == [0.0, DAY, 2 * DAY, 3 * DAY]  # the first reading, then one a day
    assert not any(d.events for _, _, d in log)


def test_a_failing_sensor_is_news_even_in_dry_weather():
    policy = ReportingPolicy(LEVELS, ReportingConfig(observe_from_m=1.0))
    log = run(policy, BaseFlow(base_m=0.6), DAY / 2, missing=[(3600, 7200)])
    sent = [(t, r.ok) for t, r, d in log if d.send_reading]
    assert sent == [(0.0, True), (3600.0, False), (7200.0, True)]


def test_a_flood_sends_every_reading_and_an_event_at_each_level_both_ways():
    flood = flood_through_all_levels(
        LEVELS.values(), base_m=0.6, start_s=3600, rise_s=4 * 3600, fall_s=12 * 3600, ripple_m=0
    )
    config = ReportingConfig(observe_from_m=1.2, fast_rise_m_per_h=0.5)
    log = run(ReportingPolicy(LEVELS, config), flood, flood.end_s + 6 * 3600)
    events = [(t, e["threshold"], e["direction"]) for t, _, d in log for e in d.events]
    expected = crossings(flood, LEVELS.values(), config.hysteresis_m, flood.end_s + 6 * 3600)
    keys = ["standby", "caution", "evacuation", "danger"]
    assert [(k, d) for _, k, d in events] == [(keys[c.index], c.direction) for c in expected]
    for (t, _, _), truth in zip(events, expected, strict=True):
        assert 0 <= t - truth.t <= 600  # within one reporting cycle of the true crossing
    above = [d for t, r, d in log if r.level_m >= 1.2]
    assert above and all(d.send_reading and d.mode != "quiet" for d in above)


def test_rising_fast_or_a_flashy_river_reports_every_fast_interval():
    flood = flood_through_all_levels(
        LEVELS.values(), base_m=0.6, start_s=3600, rise_s=2 * 3600, fall_s=12 * 3600
    )
    rising = run(ReportingPolicy(LEVELS, ReportingConfig(fast_rise_m_per_h=0.3)), flood, 4 * 3600)
    fast = [(r, d) for _, r, d in rising if d.mode == "fast"]
    assert fast and {d.next_in_s for _, d in fast} == {300}
    assert fast[0][0].level_m < LEVELS.standby  # a fast rise counts below the levels too

    flashy = ReportingConfig(flashy=True, fast_interval_s=120, fast_rise_m_per_h=5.0)
    log = run(ReportingPolicy(LEVELS, flashy), flood, 6 * 3600)
    observing = [d for _, r, d in log if r.level_m >= LEVELS.standby + 0.1]
    assert observing and {d.next_in_s for d in observing} == {120}


def test_waves_at_a_threshold_do_not_send_a_storm_of_events():
    policy = ReportingPolicy(LEVELS, ReportingConfig(hysteresis_m=0.05))
    events = []
    for i, m in enumerate([1.9, 2.01, 1.98, 2.02, 1.96, 2.03, 1.97, 1.94, 2.0]):
        decision = policy.decide(i * 60, level(m), 600)
        events += [(e["threshold"], e["direction"]) for e in decision.events]
    assert events == [
        ("standby", "rising"),  # 1.9 at start: above standby already
        ("caution", "rising"),
        ("caution", "falling"),  # 1.94 < 2.0 - 0.05
        ("caution", "rising"),
    ]


def test_a_jump_across_several_levels_sends_each_in_order():
    policy = ReportingPolicy(LEVELS, ReportingConfig())
    assert policy.decide(0, level(0.5), 600).events == []
    up = policy.decide(600, level(2.7), 600).events
    assert [(e["threshold"], e["direction"], e["level_m"]) for e in up] == [
        ("standby", "rising", 2.7),
        ("caution", "rising", 2.7),
        ("evacuation", "rising", 2.7),
    ]
    down = policy.decide(1200, level(1.0), 600).events
    assert [e["threshold"] for e in down] == ["evacuation", "caution", "standby"]
    assert {e["direction"] for e in down} == {"falling"}


def test_a_missing_reading_never_crosses_a_level():
    policy = ReportingPolicy(LEVELS, ReportingConfig())
    policy.decide(0, level(2.2), 600)
    decision = policy.decide(600, MISSING, 600)
    assert decision.events == [] and decision.send_reading
    assert policy.decide(1200, level(2.2), 600).events == []


def test_a_site_without_levels_sends_every_reading():
    policy = ReportingPolicy(None, ReportingConfig())
    log = run(policy, BaseFlow(), DAY / 4, interval_s=600)
    assert all(d.send_reading and not d.events and d.next_in_s == 600 for _, _, d in log)


@pytest.mark.parametrize(
    ("levels", "config", "message"),
    [
        ((1.5, 1.4, 2.5, 3.0), {}, "levels must rise"),
        ((1.5, 2.0, 2.5, 3.0), {"fast_interval_s": 30}, "fast_interval_s"),
        ((1.5, 2.0, 2.5, 3.0), {"heartbeat_s": 60}, "heartbeat_s"),
    ],
)
def test_config_mistakes_are_named(levels, config, message):
    with pytest.raises(ValueError, match=message):
        Levels(*levels)
        ReportingConfig(**config)
