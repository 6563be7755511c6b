"""The GTFS-JP loader against what real feeds contain, and the sample feed of the demo city."""

from __future__ import annotations

import shutil
import zipfile
from datetime import date
from pathlib import Path

import pytest

from edge.protocol.gtfs import Feed, GtfsError, parse_time

SAMPLE = Path(__file__).resolve().parents[2] / "sim" / "transit" / "feed"


def zipped(folder: Path, target: Path, inside: str = "") -> Path:
    with zipfile.ZipFile(target, "w") as archive:
        for path in sorted(folder.glob("*.txt")):
            archive.write(path, inside + path.name)
    return target


def copy(tmp_path: Path) -> Path:
    folder = tmp_path / "feed"
    shutil.copytree(SAMPLE, folder)
    return folder


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("8:00:00", 28800),
        ("08:00:00", 28800),
        ("25:10:05", 90605),
        (" 7:05:30 ", 25530),
    ],
)
def test_times_with_one_digit_hours_and_past_midnight(text, seconds):
    assert parse_time(text) == seconds


@pytest.mark.parametrize("bad", ["8:00", "8:60:00", "x:00:00", ""])
def test_bad_times_are_refused(bad):
    with pytest.raises(ValueError):
        parse_time(bad)


def test_the_sample_feed_from_its_zip_with_bom_and_gtfs_jp_files(tmp_path):
    assert (SAMPLE / "stops.txt").read_bytes().startswith(b"\xef\xbb\xbf")
    feed = Feed.load(zipped(SAMPLE, tmp_path / "feed.zip", inside="gtfs/"))
    assert feed.agency_timezone == "Asia/Tokyo"
    assert feed.stops["S01"].name == "長井駅前"  # the BOM did not eat the first column's name
    assert feed.feed_version == "2026.11-sample"
    trip = feed.trips["WD-01"]
    assert [st.stop_id for st in trip.stop_times][:3] == ["S01", "S02", "S03"]
    # S02 is not a timepoint: its time is interpolated between S01 (7:00) and S03 (7:05)
    assert trip.stop_times[1].arrival_s == 7 * 3600 + 150
    assert trip.stop_times[3].arrival_s == parse_time("7:08:00")


def test_calendar_and_calendar_dates_choose_the_day_s_trips():
    feed = Feed.load(SAMPLE)
    assert len(feed.trips_on("M1", date(2026, 12, 1))) == 24  # a Tuesday
    assert len(feed.trips_on("M1", date(2026, 12, 5))) == 10  # a Saturday
    assert {t.service_id for t in feed.trips_on("M1", date(2026, 12, 31))} == {"holiday"}
    assert feed.trips_on("M1", date(2027, 5, 1)) == []  # after the feed's end


def test_optional_files_may_be_missing(tmp_path):
    folder = copy(tmp_path)
    for name in ("calendar_dates.txt", "feed_info.txt", "translations.txt", "agency_jp.txt"):
        (folder / name).unlink()
    feed = Feed.load(folder)
    assert feed.exceptions == {} and feed.feed_version == ""
    assert len(feed.trips_on("M1", date(2026, 12, 31))) == 24  # no holiday exception now


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("stops.txt", "38.10762", "north", "stops.txt line 2: stop_lat/stop_lon must be numbers"),
        ("stop_times.txt", "WD-01,07:05:00", "WD-01,7:65:00", "stop_times.txt line 4"),
        ("trips.txt", "M1,weekday,WD-03", "M9,weekday,WD-03", "route_id 'M9' is not in routes"),
        ("calendar.txt", "20260401", "2026-04-01", "calendar.txt line 2: date"),
    ],
)
def test_a_broken_feed_names_file_line_and_problem(tmp_path, file, old, new, message):
    folder = copy(tmp_path)
    path = folder / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(GtfsError, match=message):
        Feed.load(folder)


def test_a_missing_required_file_or_a_non_zip_is_named(tmp_path):
    folder = copy(tmp_path)
    (folder / "stop_times.txt").unlink()
    with pytest.raises(GtfsError, match="missing stop_times.txt"):
        Feed.load(folder)
    junk = tmp_path / "feed.zip"
    junk.write_bytes(b"not a zip")
    with pytest.raises(GtfsError, match="not a readable GTFS zip"):
        Feed.load(junk)
