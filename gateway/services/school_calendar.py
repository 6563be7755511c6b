"""Which days are school days: weekdays that are not Japanese national holidays (国民の祝日,
substitute holidays and 国民の休日 included, from the ``holidays`` package's tables of the
Holidays Act) and not the school's own closed days (vacations, 開校記念日, a closure for snow).

A school may also open on a Saturday (授業参観日): ``extra_days``. ``outings`` are school days the
school announced as trips (遠足, 社会科見学): the learned routines do not judge them. Dates are
local dates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta

import holidays


def parse_days(items: list[str]) -> set[date]:
    """``"2026-12-24"`` or a range ``"2026-12-24..2027-01-07"`` (both ends included)."""
    days: set[date] = set()
    for item in items:
        first, _, last = item.partition("..")
        start = date.fromisoformat(first.strip())
        end = date.fromisoformat(last.strip()) if last else start
        if end < start:
            raise ValueError(f"{item!r}: the range ends before it starts")
        days.update(start + timedelta(days=i) for i in range((end - start).days + 1))
    return days


@dataclass
class SchoolCalendar:
    closed: set[date] = field(default_factory=set)
    extra_days: set[date] = field(default_factory=set)
    outings: set[date] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._national = holidays.country_holidays("JP")

    def is_school_day(self, day: date) -> bool:
        if day in self.extra_days:
            return True
        return day.weekday() < 5 and day not in self._national and day not in self.closed

    def holiday_name(self, day: date) -> str | None:
        return self._national.get(day)
