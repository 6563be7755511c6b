"""Writes the sample GTFS-JP feed of the demo city (``sim/transit/feed/``), deterministically.

A small community bus line for a Nagai-like town: eight stops from the station out to the western
hills, both directions, a weekday and a weekend/holiday timetable, New Year holidays in
calendar_dates.txt, English stop names in translations.txt (GTFS-JP style). The stops and times
are made up for machimori (they are not the real Nagai city bus); the feed is CC0, see
``feed/LICENSE.md``. It also has what real feeds have: a BOM on stops.txt, one-digit hours
(``7:00:00``), non-timepoint stops with empty times, and no shapes.txt.

Run ``python -m sim.transit.make_feed`` to write it again after changing this script.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

FEED = Path(__file__).parent / "feed"
AGENCY_ID = "8000020062090"  # GTFS-JP uses the 法人番号 (corporate number); this one is invented
STOPS = [  # id, Japanese name, English name, lat, lon, minutes from the first stop outbound
    ("S01", "長井駅前", "Nagai Station", 38.10762, 140.03748, 0),
    ("S02", "本町", "Honcho", 38.10928, 140.03377, 3),
    ("S03", "市役所前", "City Hall", 38.10991, 140.03031, 5),
    ("S04", "あやめ公園", "Ayame Park", 38.11452, 140.02598, 8),
    ("S05", "総合病院", "General Hospital", 38.11879, 140.02153, 11),
    ("S06", "小学校前", "Elementary School", 38.12306, 140.01797, 14),
    ("S07", "ひまわり団地", "Himawari Estate", 38.12771, 140.01419, 17),
    ("S08", "西山", "Nishiyama", 38.13218, 140.00902, 21),
]
NON_TIMEPOINTS = {"S02", "S07"}  # times left empty: consumers interpolate
DWELL_S = 30


def _csv(rows: list[list[object]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


def _time(seconds: int, short_hour: bool) -> str:
    h, m, s = seconds // 3600, seconds // 60 % 60, seconds % 60
    return f"{h}:{m:02d}:{s:02d}" if short_hour and h < 10 else f"{h:02d}:{m:02d}:{s:02d}"


def trips() -> list[tuple[str, str, int, int]]:
    """(trip id, service, direction, first departure in seconds): weekday every 30 minutes
    7:00-18:30 alternating out and back, weekends every hour 8:00-17:00."""
    out = []
    for i in range(24):
        start = 7 * 3600 + i * 1800
        out.append((f"WD-{i + 1:02d}", "weekday", i % 2, start))
    for i in range(10):
        start = 8 * 3600 + i * 3600
        out.append((f"HO-{i + 1:02d}", "holiday", i % 2, start))
    return out


def stop_times() -> list[list[object]]:
    rows: list[list[object]] = [
        ["trip_id", "arrival_time", "departure_time", "stop_id", "stop_sequence", "timepoint"]
    ]
    for trip_id, _, direction, start in trips():
        order = STOPS if direction == 0 else list(reversed(STOPS))
        total = STOPS[-1][5]
        for seq, (stop_id, *_, minutes) in enumerate(order, start=1):
            offset = minutes if direction == 0 else total - minutes
            arrival = start + offset * 60 + (seq - 1) * 0
            first, last = seq == 1, seq == len(order)
            if stop_id in NON_TIMEPOINTS and not (first or last):
                rows.append([trip_id, "", "", stop_id, seq, 0])
                continue
            departure = arrival if first or last else arrival + DWELL_S
            short = seq % 2 == 0  # both spellings of an early hour, as real exports mix them
            rows.append([trip_id, _time(arrival, short), _time(departure, short), stop_id, seq, 1])
    return rows


def files() -> dict[str, str]:
    return {
        "agency.txt": _csv(
            [
                [
                    "agency_id",
                    "agency_name",
                    "agency_url",
                    "agency_timezone",
                    "agency_lang",
                    "agency_phone",
                ],
                [
                    AGENCY_ID,
                    "まちもり市営バス",
                    "https://example.org/machimori-bus",
                    "Asia/Tokyo",
                    "ja",
                    "0238-00-0000",
                ],
            ]
        ),
        "agency_jp.txt": _csv(
            [
                ["agency_id", "agency_official_name", "agency_zip_number", "agency_address"],
                [AGENCY_ID, "まちもり市", "9930000", "山形県まちもり市本町1-1"],
            ]
        ),
        "stops.txt": "\ufeff"
        + _csv(
            [
                [
                    "stop_id",
                    "stop_name",
                    "stop_lat",
                    "stop_lon",
                    "location_type",
                    "wheelchair_boarding",
                ],
                *[[s[0], s[1], f"{s[3]:.5f}", f"{s[4]:.5f}", 0, 1] for s in STOPS],
            ]
        ),
        "routes.txt": _csv(
            [
                [
                    "route_id",
                    "agency_id",
                    "route_short_name",
                    "route_long_name",
                    "route_type",
                    "route_color",
                    "route_text_color",
                ],
                ["M1", AGENCY_ID, "M1", "駅前・西山線", 3, "0B3D5C", "FFFFFF"],
            ]
        ),
        "trips.txt": _csv(
            [
                ["route_id", "service_id", "trip_id", "trip_headsign", "direction_id"],
                *[
                    ["M1", service, trip_id, "西山" if direction == 0 else "長井駅前", direction]
                    for trip_id, service, direction, _ in trips()
                ],
            ]
        ),
        "stop_times.txt": _csv(stop_times()),
        "calendar.txt": _csv(
            [
                [
                    "service_id",
                    "monday",
                    "tuesday",
                    "wednesday",
                    "thursday",
                    "friday",
                    "saturday",
                    "sunday",
                    "start_date",
                    "end_date",
                ],
                ["weekday", 1, 1, 1, 1, 1, 0, 0, "20260401", "20270331"],
                ["holiday", 0, 0, 0, 0, 0, 1, 1, "20260401", "20270331"],
            ]
        ),
        "calendar_dates.txt": _csv(
            [
                ["service_id", "date", "exception_type"],
                *[
                    row
                    for day in ("20261231", "20270101", "20270104")
                    for row in (["weekday", day, 2], ["holiday", day, 1])
                ],
            ]
        ),
        "feed_info.txt": _csv(
            [
                [
                    "feed_publisher_name",
                    "feed_publisher_url",
                    "feed_lang",
                    "feed_start_date",
                    "feed_end_date",
                    "feed_version",
                ],
                [
                    "machimori project (sample data)",
                    "https://example.org/machimori",
                    "ja",
                    "20260401",
                    "20270331",
                    "2026.11-sample",
                ],
            ]
        ),
        "translations.txt": _csv(
            [
                ["table_name", "field_name", "language", "translation", "field_value"],
                *[["stops", "stop_name", "en", s[2], s[1]] for s in STOPS],
            ]
        ),
    }


def main() -> None:
    FEED.mkdir(exist_ok=True)
    for name, text in files().items():
        (FEED / name).write_text(text, encoding="utf-8", newline="")


if __name__ == "__main__":
    main()
