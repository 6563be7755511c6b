"""Taps paired into journeys, and the driver's tablet entries, kept on disk across restarts.

A rider taps on when boarding and off when alighting. The first tap of a card opens a journey at
the stop the bus is at (or last left: a rider who taps just after the doors close boarded there);
the next tap of the same card on the same trip closes it at the stop of that tap. A second tap
within ``min_ride_s`` at the same stop is a rider making sure (``double_tap``), not a ride. A
journey still open when its trip ends, when the card taps on a later trip, or after
``max_ride_s`` is closed without an alighting stop and counted ``missing_tap_off``: the city
still knows where that rider boarded.

Open journeys and the ids of tablet entries already taken live in a small SQLite file beside the
outbox, so a restart neither forgets who is on board nor takes a tablet entry twice.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS open_journeys (
    card TEXT PRIMARY KEY, tech TEXT NOT NULL, route_id TEXT NOT NULL, trip_id TEXT,
    stop_id TEXT, ts TEXT NOT NULL, t REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tablet_entries (
    id TEXT PRIMARY KEY, action TEXT NOT NULL, fare TEXT, target TEXT, trip_id TEXT,
    stop_id TEXT, ts TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class Place:
    """Where a tap or an entry happened: the route and trip, and the stop."""

    route_id: str
    trip_id: str | None
    stop_id: str | None


class BusState:
    """The bus's memory. Thread-safe: the reader thread and the tablet's threads share it."""

    def __init__(self, path: Path, count: Callable[[str], None]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self.count = count

    # -- card taps --------------------------------------------------------------------------
    def tap(
        self,
        card: str,
        tech: str,
        place: Place,
        ts: str,
        t: float,
        min_ride_s: float,
        previous_trip: str | None = None,
    ) -> list[dict[str, Any]]:
        """Record one tap at ``place``; returns the journeys it closed (to publish).
        ``previous_trip``: the trip that ended at this terminus, whose riders tap off here."""
        with self._lock:
            row = self._db.execute(
                "SELECT card, tech, route_id, trip_id, stop_id, ts, t FROM open_journeys "
                "WHERE card = ?",
                (card,),
            ).fetchone()
            if row is None:
                self._open(card, tech, place, ts, t)
                self.count("tap_on")
                return []
            if row[3] == place.trip_id and t - row[6] < min_ride_s and row[4] == place.stop_id:
                self.count("double_tap")
                return []
            self._db.execute("DELETE FROM open_journeys WHERE card = ?", (card,))
            if row[3] == place.trip_id or (previous_trip is not None and row[3] == previous_trip):
                self.count("tap_off")
                return [_journey(row, place.stop_id, ts)]
            # the card boards another trip without having tapped off the last one
            self._open(card, tech, place, ts, t)
            self.count("missing_tap_off")
            self.count("tap_on")
            return [_journey(row, None, None)]

    def close_open(self, keep: set[str | None], older_than_t: float) -> list[dict[str, Any]]:
        """Close as missing tap-off every journey on a trip not in ``keep`` or begun before
        ``older_than_t``; returns them."""
        with self._lock:
            rows = [
                row
                for row in self._db.execute(
                    "SELECT card, tech, route_id, trip_id, stop_id, ts, t FROM open_journeys"
                ).fetchall()
                if row[3] not in keep or row[6] < older_than_t
            ]
            self._db.executemany(
                "DELETE FROM open_journeys WHERE card = ?", [(r[0],) for r in rows]
            )
        for _ in rows:
            self.count("missing_tap_off")
        return [_journey(row, None, None) for row in rows]

    def on_board(self, trip_id: str | None) -> int:
        """Card riders on board on ``trip_id`` now."""
        with self._lock:
            (n,) = self._db.execute(
                "SELECT count(*) FROM open_journeys WHERE trip_id IS ?", (trip_id,)
            ).fetchone()
        return n

    def _open(self, card: str, tech: str, place: Place, ts: str, t: float) -> None:
        self._db.execute(
            "INSERT INTO open_journeys VALUES (?, ?, ?, ?, ?, ?, ?)",
            (card, tech, place.route_id, place.trip_id, place.stop_id, ts, t),
        )

    # -- tablet entries ---------------------------------------------------------------------
    def has_entry(self, entry_id: str) -> bool:
        with self._lock:
            return (
                self._db.execute(
                    "SELECT 1 FROM tablet_entries WHERE id = ?", (entry_id,)
                ).fetchone()
                is not None
            )

    def add_entry(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO tablet_entries VALUES (?, ?, ?, ?, ?, ?, ?)",
                tuple(
                    entry.get(k)
                    for k in ("entry", "action", "fare", "target", "trip_id", "stop_id", "ts")
                ),
            )

    def counts(self, trip_id: str | None) -> dict[str, dict[str, int]]:
        """Tablet counts on ``trip_id`` by action and fare, undone entries left out."""
        with self._lock:
            rows = self._db.execute(
                "SELECT action, fare, count(*) FROM tablet_entries e WHERE trip_id IS ? "
                "AND action != 'undo' AND NOT EXISTS (SELECT 1 FROM tablet_entries u "
                "WHERE u.action = 'undo' AND u.target = e.id) GROUP BY action, fare",
                (trip_id,),
            ).fetchall()
        out: dict[str, dict[str, int]] = {"board": {}, "alight": {}}
        for action, fare, n in rows:
            out[action][fare] = n
        return out

    def close(self) -> None:
        self._db.close()


def _journey(
    row: tuple[Any, ...], alight_stop: str | None, alight_ts: str | None
) -> dict[str, Any]:
    card, tech, route_id, trip_id, stop_id, ts, _ = row
    return {
        "card": card,
        "tech": tech,
        "route_id": route_id,
        "trip_id": trip_id,
        "board_stop": stop_id,
        "board_ts": ts,
        "alight_stop": alight_stop,
        "alight_ts": alight_ts,
        "tap_off": alight_ts is not None,
    }
