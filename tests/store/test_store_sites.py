"""How the river page judges a gauge: stale or quietly healthy, and which way the water goes."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.api.sites import Site, Thresholds, site_now
from gateway.store.db import LatestRow

MINUTE = 60_000
NOW = 1_800_000_000_000


@dataclass
class Point:
    start_ms: int
    avg: float | None


class Series:
    """The store's series() answer for the trend window; nothing else is asked of it."""

    def __init__(self, points):
        self.points = points

    def series(self, *_args):
        return self.points


SITE = Site(
    "river-01",
    "長井橋",
    "最上川",
    38.1,
    140.0,
    Thresholds(1.5, 2.0, 2.6, 3.0),
    observe_from_m=1.0,
)


def reading(level, minutes_ago):
    data = {"level_m": level} if level is not None else {"missing": "no_echo"}
    return LatestRow("river-01", "level", "river", 1, NOW - minutes_ago * MINUTE, data)


def test_a_quiet_gauge_below_its_observation_level_is_not_missing():
    now = site_now(SITE, reading(0.7, 6 * 60), Series([]), NOW)
    assert (now.state, now.level_m, now.missing) == ("normal", 0.7, None)
    assert site_now(SITE, reading(0.7, 26 * 60), Series([]), NOW).missing == "stale"


def test_silence_above_the_observation_level_is_missing_after_stale_after_min():
    assert site_now(SITE, reading(1.6, 20), Series([]), NOW).state == "standby"
    late = site_now(SITE, reading(1.6, 31), Series([]), NOW)
    assert (late.state, late.level_m, late.missing) == ("missing", None, "stale")
    assert site_now(SITE, reading(None, 31), Series([]), NOW).missing == "stale"


def test_trend_is_the_slope_of_the_last_half_hour_not_its_end_points():
    falling_after_a_peak = [
        Point(NOW - (30 - m) * MINUTE, level)
        for m, level in ((0, 1.8), (5, 2.4), (10, 2.35), (15, 2.3), (20, 2.2), (25, 2.1), (30, 2.0))
    ]
    now = site_now(SITE, reading(2.0, 0), Series(falling_after_a_peak), NOW)  # 1.8 -> 2.0
    assert now.trend == "falling"
    assert now.trend_m_per_h < 0
