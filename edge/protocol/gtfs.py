"""A static GTFS feed: the stops, routes, trips and timetable that the bus matches its position
against and the city's GTFS-Realtime feed refers to. GTFS-JP (標準的なバス情報フォーマット) is GTFS
plus a few ``*_jp.txt`` files, which are read past.

Written for the feeds cities really publish (GTFS Schedule reference, gtfs.org/schedule/reference):
files may start with a UTF-8 BOM, times may have a one-digit hour (``8:00:00``) and pass 24:00
(``25:10:00``: a trip after midnight belongs to the service day it began on), optional files
(``calendar_dates.txt``, ``shapes.txt``, ``feed_info.txt``, the GTFS-JP extras) may be missing,
columns come in any order and unknown columns are ignored. A ``stop_times`` row without times
(not a timepoint) gets one interpolated between its neighbours. A broken feed raises
:class:`GtfsError` naming the file, the line and what was wrong.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

REQUIRED = ("agency.txt", "stops.txt", "routes.txt", "trips.txt", "stop_times.txt")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class GtfsError(ValueError):
    """A feed that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Stop:
    id: str
    name: str
    lat: float
    lon: float


@dataclass(frozen=True)
class Route:
    id: str
    short_name: str
    long_name: str


@dataclass(frozen=True)
class StopTime:
    stop_id: str
    sequence: int
    arrival_s: int  # seconds after midnight of the service day (noon minus 12 h)
    departure_s: int


@dataclass
class Trip:
    id: str
    route_id: str
    service_id: str
    direction_id: int | None
    headsign: str
    stop_times: list[StopTime] = field(default_factory=list)

    @property
    def start_s(self) -> int:
        return self.stop_times[0].departure_s

    @property
    def end_s(self) -> int:
        return self.stop_times[-1].arrival_s


@dataclass
class Feed:
    agency_timezone: str
    stops: dict[str, Stop]
    routes: dict[str, Route]
    trips: dict[str, Trip]
    calendar: dict[str, tuple[frozenset[int], date, date]]  # service: weekdays, first, last day
    exceptions: dict[tuple[str, date], bool]  # (service, day): added (True) or removed
    feed_version: str = ""

    @classmethod
    def load(cls, path: str | Path) -> Feed:
        """Read a feed from its zip file or from a folder of its ``.txt`` files."""
        return _load(_Source(Path(path)))

    def services_on(self, day: date) -> set[str]:
        """The service ids that run on ``day`` (calendar.txt, then calendar_dates.txt)."""
        running = {
            service
            for service, (weekdays, first, last) in self.calendar.items()
            if first <= day <= last and day.weekday() in weekdays
        }
        for (service, when), added in self.exceptions.items():
            if when == day:
                (running.add if added else running.discard)(service)
        return running

    def trips_on(self, route_id: str, day: date) -> list[Trip]:
        """The trips of ``route_id`` running on service day ``day``, earliest first."""
        services = self.services_on(day)
        found = [
            t for t in self.trips.values() if t.route_id == route_id and t.service_id in services
        ]
        return sorted(found, key=lambda t: t.start_s)


def parse_time(text: str) -> int:
    """``H:MM:SS`` or ``HH:MM:SS`` (hours may pass 24) to seconds after the service day's start."""
    parts = text.strip().split(":")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"time {text!r} is not H:MM:SS")
    hours, minutes, seconds = (int(p) for p in parts)
    if minutes > 59 or seconds > 59:
        raise ValueError(f"time {text!r} has minutes or seconds above 59")
    return hours * 3600 + minutes * 60 + seconds


def format_time(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class _Source:
    """The feed's files, from a zip (possibly inside one folder) or from a directory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._files: dict[str, bytes] = {}
        if path.is_dir():
            self._files = {p.name: p.read_bytes() for p in path.glob("*.txt")}
        else:
            try:
                with zipfile.ZipFile(path) as archive:
                    for info in archive.infolist():
                        if info.filename.endswith(".txt"):
                            self._files[Path(info.filename).name] = archive.read(info)
            except (OSError, zipfile.BadZipFile) as exc:
                raise GtfsError(f"{path}: not a readable GTFS zip ({exc})") from exc
        missing = [name for name in REQUIRED if name not in self._files]
        if missing:
            raise GtfsError(f"{path}: missing {', '.join(missing)}")
        if "calendar.txt" not in self._files and "calendar_dates.txt" not in self._files:
            raise GtfsError(f"{path}: needs calendar.txt or calendar_dates.txt")

    def rows(self, name: str) -> list[tuple[int, dict[str, str]]]:
        """(line number, row) of file ``name``; [] for an optional file that is not there."""
        raw = self._files.get(name)
        if raw is None:
            return []
        try:
            text = raw.decode("utf-8-sig")  # drops the BOM that spreadsheet exports leave
        except UnicodeDecodeError as exc:
            raise GtfsError(f"{self.path}: {name}: not UTF-8 ({exc})") from exc
        reader = csv.DictReader(io.StringIO(text, newline=""))
        if reader.fieldnames is not None:
            reader.fieldnames = [f.strip() for f in reader.fieldnames]
        return [
            (reader.line_num, {k: (v or "").strip() for k, v in row.items() if k is not None})
            for row in reader
        ]

    def error(self, name: str, line: int, problem: str) -> GtfsError:
        return GtfsError(f"{self.path}: {name} line {line}: {problem}")


def _need(source: _Source, name: str, line: int, row: dict[str, str], key: str) -> str:
    value = row.get(key, "")
    if not value:
        raise source.error(name, line, f"{key} is required")
    return value


def _day(source: _Source, name: str, line: int, text: str) -> date:
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        raise source.error(name, line, f"date {text!r} is not YYYYMMDD") from None


def _load(source: _Source) -> Feed:
    agencies = source.rows("agency.txt")
    if not agencies:
        raise source.error("agency.txt", 1, "no agency")
    timezone = _need(source, "agency.txt", agencies[0][0], agencies[0][1], "agency_timezone")
    stops: dict[str, Stop] = {}
    for line, row in source.rows("stops.txt"):
        if row.get("location_type", "0") not in ("", "0"):
            continue  # stations, entrances: a bus stops at platforms (location_type 0)
        try:
            lat, lon = float(row.get("stop_lat", "")), float(row.get("stop_lon", ""))
        except ValueError:
            raise source.error("stops.txt", line, "stop_lat/stop_lon must be numbers") from None
        if not (-90 <= lat <= 90 and -180 <= lon <= 180):
            raise source.error("stops.txt", line, f"coordinates {lat},{lon} out of range")
        stop_id = _need(source, "stops.txt", line, row, "stop_id")
        stops[stop_id] = Stop(stop_id, row.get("stop_name", ""), lat, lon)
    routes = {}
    for line, row in source.rows("routes.txt"):
        route_id = _need(source, "routes.txt", line, row, "route_id")
        routes[route_id] = Route(
            route_id, row.get("route_short_name", ""), row.get("route_long_name", "")
        )
    trips = {}
    for line, row in source.rows("trips.txt"):
        trip_id = _need(source, "trips.txt", line, row, "trip_id")
        route_id = _need(source, "trips.txt", line, row, "route_id")
        if route_id not in routes:
            raise source.error("trips.txt", line, f"route_id {route_id!r} is not in routes.txt")
        direction = row.get("direction_id", "")
        trips[trip_id] = Trip(
            trip_id,
            route_id,
            _need(source, "trips.txt", line, row, "service_id"),
            int(direction) if direction in ("0", "1") else None,
            row.get("trip_headsign", ""),
        )
    _stop_times(source, stops, trips)
    calendar = {}
    for line, row in source.rows("calendar.txt"):
        weekdays = frozenset(i for i, name in enumerate(WEEKDAYS) if row.get(name) == "1")
        first = _day(source, "calendar.txt", line, row.get("start_date", ""))
        last = _day(source, "calendar.txt", line, row.get("end_date", ""))
        calendar[_need(source, "calendar.txt", line, row, "service_id")] = (weekdays, first, last)
    exceptions = {}
    for line, row in source.rows("calendar_dates.txt"):
        when = _day(source, "calendar_dates.txt", line, row.get("date", ""))
        kind = row.get("exception_type", "")
        if kind not in ("1", "2"):
            raise source.error("calendar_dates.txt", line, "exception_type must be 1 or 2")
        exceptions[(_need(source, "calendar_dates.txt", line, row, "service_id"), when)] = (
            kind == "1"
        )
    info = source.rows("feed_info.txt")
    version = info[0][1].get("feed_version", "") if info else ""
    return Feed(timezone, stops, routes, trips, calendar, exceptions, version)


def _stop_times(source: _Source, stops: dict[str, Stop], trips: dict[str, Trip]) -> None:
    rows: dict[str, list[tuple[int, int, dict[str, str]]]] = defaultdict(list)
    for line, row in source.rows("stop_times.txt"):
        trip_id = _need(source, "stop_times.txt", line, row, "trip_id")
        if trip_id not in trips:
            raise source.error("stop_times.txt", line, f"trip_id {trip_id!r} is not in trips.txt")
        if row.get("stop_id", "") not in stops:
            raise source.error("stop_times.txt", line, f"stop_id {row.get('stop_id')!r} unknown")
        try:
            sequence = int(_need(source, "stop_times.txt", line, row, "stop_sequence"))
        except ValueError:
            raise source.error("stop_times.txt", line, "stop_sequence must be an integer") from None
        rows[trip_id].append((sequence, line, row))
    for trip_id, entries in rows.items():
        entries.sort(key=lambda e: e[0])
        times: list[tuple[int | None, int | None]] = []
        for _, line, row in entries:
            try:
                arrival = parse_time(row["arrival_time"]) if row.get("arrival_time") else None
                departure = parse_time(row["departure_time"]) if row.get("departure_time") else None
            except ValueError as exc:
                raise source.error("stop_times.txt", line, str(exc)) from None
            times.append((arrival if arrival is not None else departure, departure or arrival))
        if times[0][0] is None or times[-1][0] is None:
            line = entries[0][1] if times[0][0] is None else entries[-1][1]
            raise source.error("stop_times.txt", line, "a trip's first and last stop need times")
        filled = _interpolate([a for a, _ in times])
        trips[trip_id].stop_times = [
            StopTime(row["stop_id"], seq, filled[i], max(filled[i], times[i][1] or filled[i]))
            for i, (seq, _, row) in enumerate(entries)
        ]
    for trip in trips.values():
        if len(trip.stop_times) < 2:
            raise GtfsError(f"{source.path}: trip {trip.id!r} has fewer than two stop_times")


def _interpolate(values: list[int | None]) -> list[int]:
    """Fill the gaps between known times evenly by stop count (the first and last are known)."""
    out = list(values)
    known = [i for i, v in enumerate(values) if v is not None]
    for a, b in zip(known, known[1:], strict=False):
        start, end = values[a], values[b]
        assert start is not None and end is not None
        for i in range(a + 1, b):
            out[i] = start + (end - start) * (i - a) // (b - a)
    return [v for v in out if v is not None]
