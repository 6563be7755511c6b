"""Settings of the learned-routine alerts (``routine:`` in the tracker service's config).

Every threshold a city may want to tune on its own history with ``machimori routine replay``;
the defaults are the ones ``bench/routine.py`` measured (docs/tracker.md, "Learned routines").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time

WEEK_PARTS = ("school", "saturday", "sunday", "break")  # break: a weekday the school is closed


@dataclass
class RoutineConfig:
    enabled: bool = True
    # -- learning ---------------------------------------------------------------------------------
    stay_radius_m: float = 100.0  # a stay: fixes within this of where it began ...
    stay_min_s: float = 300.0  # ... for at least this long (5 min)
    place_radius_m: float = 150.0  # stays this close are the same place
    max_accuracy_m: float = 100.0  # a worse fix neither teaches nor alerts
    # two fixes this close a minute apart: the child stopped (went in). Under the agent's move_m
    # (50 m): a walking tracker sends only once it is that far from the last fix it sent
    still_m: float = 45.0
    max_gap_s: float = 16 * 3600.0  # silence inside one stay (indoors, asleep) up to this long
    memory_days: float = 30.0  # days kept in a model; never more than retention.positions_days
    half_life_days: float = 14.0  # a day this old counts half as much as today (slow forgetting)
    cell_m: float = 100.0  # corridors: squares of this side along the child's usual ways
    # -- cold start: silent until ----------------------------------------------------------------
    min_days: int = 14  # days seen in all
    # days of the week-part being judged: with 30 days kept, Saturdays and Sundays never reach
    # 8, so on them only "out at an unusual hour" is judged (docs/tracker.md says why) ...
    min_part_days: int = 8
    # ... unless pool_weekends: a Saturday or Sunday judged on the two pooled until it has
    # min_part_days of its own (8-9 weekend days in 30). Off by default: the first family visit
    # on foot within the memory then alerts (bench/routine.py --pool-weekends measures it)
    pool_weekends: bool = False
    # trips seen from a place before its ways are judged: two, so that a detour from a place
    # left once a week (the park after school, grandparents) is told too (8 left them untold)
    min_trips: int = 2
    # -- alerting ---------------------------------------------------------------------------------
    expect_share: float = 0.8  # "usually at P": on at least this share of those days
    free_expect_share: float = 0.95  # the same on Saturdays, Sundays and breaks
    late_quantile: float = 0.6  # the usual time of arrival: by then on this share of days ...
    late_margin_min: float = 15.0  # ... and "not at P" is said this long after it ...
    near_home_late_min: float = 30.0  # ... and this much later when last seen near_home_m of home
    away_s: float = 300.0  # away from where expected this long (and seen twice) before an alert
    route_off_m: float = 100.0  # off the usual ways by more than about this (cell_m units) ...
    route_off_s: float = 120.0  # ... for this long, not counting time walking straight (at
    # least this share of each 100 m walked brought nearer) to home or to a place familiar now
    # within near_home_m of home: the park after school by another street is no detour
    homeward_share: float = 0.9
    rare_share: float = 0.05  # a place seen on fewer of these days at this time is unfamiliar
    night_share: float = 0.03  # "out at an unusual hour": out at that hour on at most this share
    hours: str = "20:00-05:00"  # ... of days, within these hours (daytime is place/late/route)
    night_grace_min: float = 60.0  # ... said this long after they begin if out since before
    neighbourhood_m: float = 1500.0  # on free days, somewhere new this close to home is not said
    near_home_m: float = 500.0  # ... nor, any day, this close when the child is usually home
    drive_mps: float = 6.0  # ... nor, on free days, somewhere reached faster than this (a family
    # drive: no child walks or cycles at 22 km/h)
    # a walking child's last fix older than this says nothing: the tracker sends every 50 m when
    # walking, so 10 min of silence is a child gone in somewhere (most often where it was going)
    # or without a fix, and which cannot be told
    fresh_s: float = 600.0
    clear_s: float = 300.0  # back in the routine this long: the alert clears
    late_parts: list[str] = field(default_factory=lambda: ["school"])
    route_parts: list[str] = field(default_factory=lambda: ["school"])

    def __post_init__(self) -> None:
        for name in ("late_parts", "route_parts"):
            for part in getattr(self, name):
                if part not in WEEK_PARTS:
                    raise ValueError(f"{name}: expected some of {', '.join(WEEK_PARTS)}")
        if self.memory_days <= 0 or self.half_life_days <= 0:
            raise ValueError("memory_days and half_life_days must be > 0")
        self.window()
        if not 0 < self.expect_share <= 1 or not 0 < self.free_expect_share <= 1:
            raise ValueError("expect_share: expected a share in (0, 1]")
        if not 0 < self.homeward_share <= 1:
            raise ValueError("homeward_share: expected a share in (0, 1]")

    def window(self) -> tuple[int, int]:
        """``hours`` as quarter-hour slots [first, last) of a day, wrapping past midnight."""
        try:
            first, last = (time.fromisoformat(t.strip()) for t in self.hours.split("-"))
        except ValueError as exc:
            raise ValueError(f"hours: expected HH:MM-HH:MM, got {self.hours!r}") from exc
        return (first.hour * 4 + first.minute // 15, last.hour * 4 + last.minute // 15)
