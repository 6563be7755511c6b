"""The tracker service's database (SQLite, WAL): who may see which child, and the children's data.

Kept apart from the store's generic message table on purpose: everything about a child is here,
under the rules of docs/tracker.md — positions minimised (child, time, lat/lon to 5 decimals,
accuracy, source), deleted after ``positions_days``; every read of a position goes through
``positions_for`` / ``latest_for``, which write the audit row in the same transaction, so a view
that is not audited cannot happen. Children are known by an id the city chooses (never a name);
guardians by a login id and, for e-mail, an address.

Also here: the debounce state of each child's fences (so a restart does not re-announce an
arrival), the alerts (unique per child, kind and day: each alert once), and the notification
queue (unique per alert, guardian and channel: each notice once, retried until delivered).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.services.tracker_config import RetentionConfig

SCHEMA = """
CREATE TABLE IF NOT EXISTS children (
    child TEXT PRIMARY KEY, school TEXT NOT NULL, created_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY, child TEXT NOT NULL REFERENCES children(child) ON DELETE CASCADE,
    kind TEXT NOT NULL, secret_hash TEXT);
CREATE TABLE IF NOT EXISTS guardians (
    guardian TEXT PRIMARY KEY, email TEXT, lang TEXT NOT NULL DEFAULT 'ja', password_hash TEXT);
CREATE TABLE IF NOT EXISTS links (
    guardian TEXT NOT NULL REFERENCES guardians(guardian) ON DELETE CASCADE,
    child TEXT NOT NULL REFERENCES children(child) ON DELETE CASCADE,
    created_ms INTEGER NOT NULL, PRIMARY KEY (guardian, child));
CREATE TABLE IF NOT EXISTS staff (
    staff TEXT PRIMARY KEY, school TEXT NOT NULL, password_hash TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS shares (
    token_hash TEXT PRIMARY KEY, guardian TEXT NOT NULL, child TEXT NOT NULL,
    expires_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS positions (
    child TEXT NOT NULL, ts_ms INTEGER NOT NULL, device TEXT NOT NULL, seq INTEGER NOT NULL,
    lat REAL NOT NULL, lon REAL NOT NULL, acc REAL, src TEXT NOT NULL,
    PRIMARY KEY (device, seq));
CREATE INDEX IF NOT EXISTS positions_child_ts ON positions (child, ts_ms);
CREATE INDEX IF NOT EXISTS positions_ts ON positions (ts_ms);
CREATE TABLE IF NOT EXISTS presence (
    child TEXT NOT NULL, school TEXT NOT NULL, kind TEXT NOT NULL, day TEXT NOT NULL,
    ts_ms INTEGER NOT NULL, PRIMARY KEY (child, kind, day));
CREATE INDEX IF NOT EXISTS presence_school_day ON presence (school, day);
CREATE TABLE IF NOT EXISTS fence_state (
    child TEXT NOT NULL, school TEXT NOT NULL, state TEXT NOT NULL,
    PRIMARY KEY (child, school));
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, child TEXT NOT NULL, kind TEXT NOT NULL,
    day TEXT NOT NULL, ts_ms INTEGER NOT NULL, data TEXT NOT NULL,
    UNIQUE (child, kind, day));
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT, alert INTEGER NOT NULL, guardian TEXT NOT NULL,
    channel TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_ms INTEGER NOT NULL,
    done_ms INTEGER, last_error TEXT, UNIQUE (alert, guardian, channel));
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (next_ms) WHERE done_ms IS NULL;
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, ts_ms INTEGER NOT NULL, viewer TEXT NOT NULL,
    child TEXT NOT NULL, what TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts_ms);
CREATE TABLE IF NOT EXISTS revoked_sessions (sid TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS routine_models (
    child TEXT PRIMARY KEY REFERENCES children(child) ON DELETE CASCADE,
    saved_ms INTEGER NOT NULL, state BLOB NOT NULL);
"""


@dataclass(frozen=True)
class PositionRow:
    child: str
    ts_ms: int
    device: str
    lat: float
    lon: float
    acc: float | None
    src: str


@dataclass(frozen=True)
class AlertRow:
    id: int
    child: str
    kind: str
    day: str
    ts_ms: int
    data: dict[str, Any]


@dataclass(frozen=True)
class Pending:
    """A notification to deliver: which alert, to whom, by which channel, how often tried."""

    id: int
    alert: AlertRow
    guardian: str
    email: str | None
    lang: str
    channel: str
    attempts: int


# a repeat (device, seq) is dropped: at-least-once delivery stores each position once
INSERT_POSITION = "INSERT INTO positions VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"


class TrackerDb:
    """One SQLite file, used from several threads through one connection and a lock."""

    def __init__(self, path: str | Path, *, sync: str = "NORMAL") -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={sync}")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Cursor]:
        """One transaction: everything in it commits together or not at all."""
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    # -- the registry (the city's CLI) ------------------------------------------------------------
    def add_child(self, child: str, school: str, now_ms: int) -> None:
        with self.tx() as cur:
            cur.execute(
                "INSERT INTO children VALUES (?, ?, ?) ON CONFLICT (child) DO UPDATE SET "
                "school = excluded.school",
                (child, school, now_ms),
            )

    def remove_child(self, child: str) -> None:
        """The child leaves the programme: the registry entry and every position go now."""
        with self.tx() as cur:
            for table in ("positions", "presence", "fence_state", "shares", "routine_models"):
                cur.execute(f"DELETE FROM {table} WHERE child = ?", (child,))
            cur.execute("DELETE FROM children WHERE child = ?", (child,))

    def add_device(self, device: str, child: str, kind: str, secret_hash: str | None) -> None:
        with self.tx() as cur:
            cur.execute(
                "INSERT INTO devices VALUES (?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET "
                "child = excluded.child, kind = excluded.kind, secret_hash = excluded.secret_hash",
                (device, child, kind, secret_hash),
            )

    def device(self, device: str) -> tuple[str, str, str | None] | None:
        """(child, kind, secret hash) of a registered device."""
        rows = self._all("SELECT child, kind, secret_hash FROM devices WHERE device = ?", (device,))
        return tuple(rows[0]) if rows else None  # type: ignore[return-value]

    def device_children(self) -> dict[str, tuple[str, str]]:
        """device -> (child, school), for the service's in-memory routing."""
        rows = self._all(
            "SELECT d.device, c.child, c.school FROM devices d JOIN children c USING (child)"
        )
        return {device: (child, school) for device, child, school in rows}

    def add_guardian(
        self, guardian: str, email: str | None, lang: str, password_hash: str | None
    ) -> None:
        with self.tx() as cur:
            cur.execute(
                "INSERT INTO guardians VALUES (?, ?, ?, ?) ON CONFLICT (guardian) DO UPDATE SET "
                "email = excluded.email, lang = excluded.lang, "
                "password_hash = COALESCE(excluded.password_hash, guardians.password_hash)",
                (guardian, email, lang, password_hash),
            )

    def guardian(self, guardian: str) -> tuple[str | None, str, str | None] | None:
        """(email, lang, password hash)."""
        rows = self._all(
            "SELECT email, lang, password_hash FROM guardians WHERE guardian = ?", (guardian,)
        )
        return tuple(rows[0]) if rows else None  # type: ignore[return-value]

    def link(self, guardian: str, child: str, now_ms: int) -> None:
        with self.tx() as cur:
            cur.execute(
                "INSERT INTO links VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (guardian, child, now_ms),
            )

    def unlink(self, guardian: str, child: str) -> bool:
        """Revoke at once: the link and every share link the guardian made for that child."""
        with self.tx() as cur:
            cur.execute("DELETE FROM links WHERE guardian = ? AND child = ?", (guardian, child))
            removed = cur.rowcount > 0
            cur.execute("DELETE FROM shares WHERE guardian = ? AND child = ?", (guardian, child))
        return removed

    def children_of(self, guardian: str) -> list[str]:
        rows = self._all("SELECT child FROM links WHERE guardian = ? ORDER BY child", (guardian,))
        return [r[0] for r in rows]

    def guardians_of(self, child: str) -> list[tuple[str, str | None, str]]:
        """(guardian, email, lang) of everyone linked to ``child``."""
        return self._all(
            "SELECT g.guardian, g.email, g.lang FROM links l JOIN guardians g USING (guardian) "
            "WHERE l.child = ? ORDER BY g.guardian",
            (child,),
        )

    def children_at(self, school: str) -> list[str]:
        rows = self._all("SELECT child FROM children WHERE school = ? ORDER BY child", (school,))
        return [r[0] for r in rows]

    def add_staff(self, staff: str, school: str, password_hash: str) -> None:
        with self.tx() as cur:
            cur.execute(
                "INSERT INTO staff VALUES (?, ?, ?) ON CONFLICT (staff) DO UPDATE SET "
                "school = excluded.school, password_hash = excluded.password_hash",
                (staff, school, password_hash),
            )

    def staff(self, staff: str) -> tuple[str, str] | None:
        """(school, password hash)."""
        rows = self._all("SELECT school, password_hash FROM staff WHERE staff = ?", (staff,))
        return tuple(rows[0]) if rows else None  # type: ignore[return-value]

    def add_share(self, token_hash: str, guardian: str, child: str, expires_ms: int) -> None:
        with self.tx() as cur:
            cur.execute(
                "INSERT INTO shares VALUES (?, ?, ?, ?)", (token_hash, guardian, child, expires_ms)
            )

    def share(self, token_hash: str, now_ms: int) -> tuple[str, str, int] | None:
        """(guardian, child, expires_ms) of a share link that has not expired and whose guardian
        is still linked to the child (revoking the link kills the share too)."""
        rows = self._all(
            "SELECT s.guardian, s.child, s.expires_ms FROM shares s JOIN links l "
            "ON l.guardian = s.guardian AND l.child = s.child "
            "WHERE s.token_hash = ? AND s.expires_ms > ?",
            (token_hash, now_ms),
        )
        return tuple(rows[0]) if rows else None  # type: ignore[return-value]

    # -- logged-out sessions (gateway.api.auth.Revocations) ---------------------------------
    def revoke_session(self, sid: str, expires_ms: int, now_ms: int) -> None:
        with self.tx() as cur:
            cur.execute("DELETE FROM revoked_sessions WHERE expires_ms < ?", (now_ms,))
            cur.execute(
                "INSERT INTO revoked_sessions VALUES (?, ?) ON CONFLICT DO NOTHING",
                (sid, expires_ms),
            )

    def session_revoked(self, sid: str) -> bool:
        return bool(self._all("SELECT 1 FROM revoked_sessions WHERE sid = ?", (sid,)))

    # -- positions ----------------------------------------------------------------------------
    def insert_positions(self, cur: sqlite3.Cursor, rows: list[tuple[Any, ...]]) -> None:
        """Many rows at once (an import, a history): repeats are dropped as by insert_position."""
        cur.executemany(INSERT_POSITION, rows)

    def insert_position(self, cur: sqlite3.Cursor, row: tuple[Any, ...]) -> bool:
        """One (child, ts_ms, device, seq, lat, lon, acc, src) row; False for a repeat
        (device, seq), which is not stored again: at-least-once delivery stores each position
        once, and the caller judges each once."""
        cur.execute(INSERT_POSITION, row)
        return cur.rowcount == 1

    def positions_for(
        self, viewer: str, child: str, start_ms: int, end_ms: int, now_ms: int
    ) -> list[PositionRow]:
        """A child's positions in [start, end), oldest first; the view is audited."""
        with self.tx() as cur:
            cur.execute(
                "INSERT INTO audit (ts_ms, viewer, child, what) VALUES (?, ?, ?, 'track')",
                (now_ms, viewer, child),
            )
            rows = cur.execute(
                "SELECT child, ts_ms, device, lat, lon, acc, src FROM positions "
                "WHERE child = ? AND ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms",
                (child, start_ms, end_ms),
            ).fetchall()
        return [PositionRow(*r) for r in rows]

    def history(self, child: str, start_ms: int, end_ms: int, purpose: str) -> list[PositionRow]:
        """Positions for a city service's own computation (the routine model of #12): no person
        sees them, but the read is audited under the service's ``purpose`` all the same."""
        return self.positions_for(f"service:{purpose}", child, start_ms, end_ms, end_ms)

    # -- presence, fence state, alerts ----------------------------------------------------------
    def positions_since(self, since_ms: int) -> list[tuple[Any, ...]]:
        """(child, ts_ms, device, lat, lon, acc, src) of every fix from ``since_ms`` on, each
        child's in time order: the service's own restart, not a person's view (not audited)."""
        return self._all(
            "SELECT child, ts_ms, device, lat, lon, acc, src FROM positions WHERE ts_ms >= ? "
            "ORDER BY child, ts_ms, seq",
            (since_ms,),
        )

    def fence_states(self) -> dict[tuple[str, str], str]:
        return {
            (c, s): st for c, s, st in self._all("SELECT child, school, state FROM fence_state")
        }

    def save_fence_state(self, cur: sqlite3.Cursor, child: str, school: str, state: str) -> None:
        cur.execute(
            "INSERT INTO fence_state VALUES (?, ?, ?) ON CONFLICT (child, school) DO UPDATE SET "
            "state = excluded.state",
            (child, school, state),
        )

    def record_presence(
        self, cur: sqlite3.Cursor, child: str, school: str, kind: str, day: str, ts_ms: int
    ) -> bool:
        """The first arrival (or departure) of the day; False if one is already recorded."""
        cur.execute(
            "INSERT INTO presence VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (child, school, kind, day, ts_ms),
        )
        return cur.rowcount > 0

    def presence(self, school: str, day: str) -> list[tuple[str, str, int]]:
        """(child, kind, ts_ms) of a school's day: what its staff may see (no positions)."""
        return self._all(
            "SELECT child, kind, ts_ms FROM presence WHERE school = ? AND day = ? ORDER BY ts_ms",
            (school, day),
        )

    def presence_of(self, child: str, day: str) -> dict[str, int]:
        return dict(
            self._all("SELECT kind, ts_ms FROM presence WHERE child = ? AND day = ?", (child, day))
        )

    def raise_alert(
        self,
        cur: sqlite3.Cursor,
        child: str,
        kind: str,
        day: str,
        ts_ms: int,
        data: dict[str, Any],
        channels: Sequence[str],
        now_ms: int,
    ) -> AlertRow | None:
        """Record an alert once per child, kind and day, and queue a notification for each
        linked guardian and channel, in the caller's transaction. None if it was raised before."""
        cur.execute(
            "INSERT INTO alerts (child, kind, day, ts_ms, data) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            (child, kind, day, ts_ms, json.dumps(data, ensure_ascii=False)),
        )
        if cur.rowcount == 0:
            return None
        alert_id = cur.lastrowid
        assert alert_id is not None
        guardians = cur.execute("SELECT guardian FROM links WHERE child = ?", (child,)).fetchall()
        cur.executemany(
            "INSERT INTO notifications (alert, guardian, channel, next_ms) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [(alert_id, g, ch, now_ms) for (g,) in guardians for ch in channels],
        )
        return AlertRow(alert_id, child, kind, day, ts_ms, data)

    def alerts(self, child: str | None = None, day: str | None = None) -> list[AlertRow]:
        clauses, params = [], []
        for name, value in (("child", child), ("day", day)):
            if value is not None:
                clauses.append(f"{name} = ?")
                params.append(value)
        where = " AND ".join(clauses) or "1 = 1"
        rows = self._all(
            f"SELECT id, child, kind, day, ts_ms, data FROM alerts WHERE {where} ORDER BY id",
            params,
        )
        return [AlertRow(*r[:5], json.loads(r[5])) for r in rows]

    def alert(self, alert_id: int) -> AlertRow | None:
        rows = self._all(
            "SELECT id, child, kind, day, ts_ms, data FROM alerts WHERE id = ?", (alert_id,)
        )
        return AlertRow(*rows[0][:5], json.loads(rows[0][5])) if rows else None

    # -- learned routines (#12): one engine state per child, no positions in it ---------------
    def save_routine(self, child: str, saved_ms: int, state: bytes) -> None:
        with self.tx() as cur:
            cur.execute(
                "INSERT INTO routine_models VALUES (?, ?, ?) ON CONFLICT (child) DO UPDATE SET "
                "saved_ms = excluded.saved_ms, state = excluded.state",
                (child, saved_ms, state),
            )

    def routine_states(self) -> dict[str, tuple[int, bytes]]:
        rows = self._all("SELECT child, saved_ms, state FROM routine_models")
        return {child: (saved, state) for child, saved, state in rows}

    # -- notifications -------------------------------------------------------------------------
    def due(self, now_ms: int, limit: int = 100) -> list[Pending]:
        rows = self._all(
            "SELECT n.id, a.id, a.child, a.kind, a.day, a.ts_ms, a.data, n.guardian, g.email, "
            "g.lang, n.channel, n.attempts FROM notifications n "
            "JOIN alerts a ON a.id = n.alert JOIN guardians g ON g.guardian = n.guardian "
            "WHERE n.done_ms IS NULL AND n.next_ms <= ? ORDER BY n.next_ms LIMIT ?",
            (now_ms, limit),
        )
        return [
            Pending(r[0], AlertRow(*r[1:6], json.loads(r[6])), r[7], r[8], r[9], r[10], r[11])
            for r in rows
        ]

    def delivered(self, notification: int, now_ms: int) -> None:
        with self.tx() as cur:
            cur.execute(
                "UPDATE notifications SET done_ms = ?, attempts = attempts + 1, last_error = NULL "
                "WHERE id = ?",
                (now_ms, notification),
            )

    def failed(self, notification: int, next_ms: int, error: str) -> None:
        with self.tx() as cur:
            cur.execute(
                "UPDATE notifications SET attempts = attempts + 1, next_ms = ?, last_error = ? "
                "WHERE id = ?",
                (next_ms, error[:500], notification),
            )

    def notification_counts(self) -> dict[str, int]:
        ((pending, done, retried),) = self._all(
            "SELECT COALESCE(SUM(done_ms IS NULL), 0), COALESCE(SUM(done_ms IS NOT NULL), 0), "
            "COALESCE(SUM(attempts > 1), 0) FROM notifications"
        )
        return {"pending": pending, "delivered": done, "retried": retried}

    # -- audit and retention --------------------------------------------------------------------
    def audit(self, child: str | None = None, limit: int = 1000) -> list[tuple[int, str, str, str]]:
        where, params = ("WHERE child = ?", [child]) if child else ("", [])
        return self._all(
            f"SELECT ts_ms, viewer, child, what FROM audit {where} ORDER BY id DESC LIMIT ?",
            [*params, limit],
        )

    def purge(self, retention: RetentionConfig, now_ms: int) -> dict[str, int]:
        """Delete what ``retention`` no longer allows; how many rows went, per table."""
        day_ms = 86_400_000
        positions = now_ms - int(retention.positions_days * day_ms)
        presence = now_ms - int(retention.presence_days * day_ms)
        audit = now_ms - int(retention.audit_days * day_ms)
        removed = {}
        with self.tx() as cur:
            for name, sql, cutoff in (
                ("positions", "DELETE FROM positions WHERE ts_ms < ?", positions),
                ("presence", "DELETE FROM presence WHERE ts_ms < ?", presence),
                ("audit", "DELETE FROM audit WHERE ts_ms < ?", audit),
                ("routine_models", "DELETE FROM routine_models WHERE saved_ms < ?", positions),
                ("shares", "DELETE FROM shares WHERE expires_ms < ?", now_ms),
                (
                    "alerts",
                    "DELETE FROM alerts WHERE ts_ms < ? AND id NOT IN "
                    "(SELECT alert FROM notifications WHERE done_ms IS NULL)",
                    presence,
                ),
                ("notifications", "DELETE FROM notifications WHERE done_ms < ?", presence),
            ):
                cur.execute(sql, (cutoff,))
                removed[name] = cur.rowcount
        return removed

    def close(self) -> None:
        with self._lock:
            self._db.close()
