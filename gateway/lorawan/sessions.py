"""What the network server must remember across restarts, in one SQLite file (WAL).

- sessions: DevAddr, session keys and both frame counters of each activated device, so a restart
  forces no re-join and reopens no replay window, and the MAC state (``mac.MacState``: channels,
  data rate and power, receive windows, SNR history, battery, requests awaiting an answer);
- used DevNonces per DevEUI and the next JoinNonce, so a recorded Join-Request cannot be replayed
  and a JoinNonce is never issued twice;
- the newest envelope ``seq`` per device id, the base from which the 16 bits of ``seq`` an uplink
  carries are widened (it outlives re-joins, as ``seq`` does);
- the downlink queue per device, filled from the city's ``cmd`` messages: each command with the
  city envelope's type and seq (to report its outcome) and how many confirmed downlinks carried
  it so far, so a restart neither forgets a command awaiting its ACK nor resets its attempts.

The file holds session keys: it is created mode 0600. The caller keeps the in-memory copy
(``Session``) and writes through; each change is a transaction of its own, or part of the one
``transaction()`` opens for a batch of frames (one fsync for the batch).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from gateway.lorawan.mac import MacState

Sync = Literal["full", "normal"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS session (
    dev_eui TEXT PRIMARY KEY,
    dev_addr INTEGER NOT NULL,
    nwk_s_key BLOB NOT NULL,
    app_s_key BLOB NOT NULL,
    fcnt_up INTEGER,
    fcnt_down INTEGER NOT NULL,
    activated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dev_nonce (
    dev_eui TEXT NOT NULL,
    dev_nonce INTEGER NOT NULL,
    PRIMARY KEY (dev_eui, dev_nonce)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS join_nonce (dev_eui TEXT PRIMARY KEY, next INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS device_seq (device TEXT PRIMARY KEY, last_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS downlink (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    dev_eui TEXT NOT NULL,
    fport INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS downlink_by_device ON downlink(dev_eui, id);
"""
# Columns added after the first release: added by ALTER TABLE to every state file, old or new, so
# each is defined here only.
ADDED_COLUMNS = {
    "downlink": {
        "command": "TEXT NOT NULL DEFAULT ''",
        "command_seq": "INTEGER",
        "attempts": "INTEGER NOT NULL DEFAULT 0",
    },
    "session": {"mac": "TEXT NOT NULL DEFAULT ''"},  # MacState JSON; '' is the AS923 defaults
}


@dataclass
class Session:
    """An activated device. ``fcnt_up`` is the last accepted FCntUp, None before the first."""

    dev_eui: str
    dev_addr: int
    nwk_s_key: bytes = field(repr=False)
    app_s_key: bytes = field(repr=False)
    fcnt_up: int | None = None
    fcnt_down: int = 0
    activated_at: str = ""
    mac: MacState = field(default_factory=MacState)


@dataclass(frozen=True)
class QueuedDownlink:
    """A city command waiting for its device. ``attempts`` counts the confirmed downlinks that
    carried it: above 0 it awaits the device's ACK."""

    id: int
    dev_eui: str
    fport: int
    payload: bytes
    command: str = ""
    command_seq: int | None = None
    attempts: int = 0


class SessionStore:
    """The state file. The event loop writes sessions; paho's thread queues downlinks; the
    (re-entrant) lock keeps them apart, for a whole batch transaction if one is open."""

    def __init__(self, path: str | Path, *, sync: Sync = "full") -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.touch(mode=0o600)
        self._lock = threading.RLock()
        self._batch = False
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={sync.upper()}")
        self._db.executescript(SCHEMA)
        for table, added in ADDED_COLUMNS.items():
            columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            for name, definition in added.items():
                if name not in columns:
                    self._db.execute(f"ALTER TABLE {table} ADD COLUMN {name} {definition}")
        for suffix in ("", "-wal", "-shm"):  # keys inside: owner-only, whatever the umask
            if Path(f"{path}{suffix}").exists():
                os.chmod(f"{path}{suffix}", 0o600)
        self._queued = self._devices_with_downlinks()  # spares a query per uplink

    def _devices_with_downlinks(self) -> set[str]:
        return {e for (e,) in self._db.execute("SELECT DISTINCT dev_eui FROM downlink")}

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Make every write until the block ends one transaction (nested: joins the open one)."""
        with self._lock:
            if self._batch:
                yield
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._batch = True
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                self._queued = self._devices_with_downlinks()  # a dequeue may be undone
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._batch = False

    def _write(self, *statements: tuple[str, tuple[object, ...]]) -> None:
        with self.transaction():
            for sql, args in statements:
                self._db.execute(sql, args)

    def _rows(self, sql: str, args: tuple[object, ...] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- sessions -------------------------------------------------------------------------------
    def sessions(self) -> list[Session]:
        rows = self._rows(
            "SELECT dev_eui, dev_addr, nwk_s_key, app_s_key, fcnt_up, fcnt_down, activated_at, "
            "mac FROM session"
        )
        return [
            Session(r[0], r[1], bytes(r[2]), bytes(r[3]), *r[4:7], MacState.from_json(r[7]))
            for r in rows
        ]

    def save_session(self, session: Session, *, dev_nonce: int | None = None) -> None:
        """Store a new session (a join, or ABP keys from the registry), replacing the old one; a
        join also records its DevNonce in the same transaction."""
        upsert = (
            "INSERT OR REPLACE INTO session (dev_eui, dev_addr, nwk_s_key, app_s_key, fcnt_up, "
            "fcnt_down, activated_at, mac) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                session.dev_eui,
                session.dev_addr,
                session.nwk_s_key,
                session.app_s_key,
                session.fcnt_up,
                session.fcnt_down,
                session.activated_at,
                session.mac.to_json(),
            ),
        )
        nonce = ("INSERT INTO dev_nonce VALUES (?, ?)", (session.dev_eui, dev_nonce))
        self._write(upsert, *([nonce] if dev_nonce is not None else []))

    def save_counters(self, sessions: Iterable[Session]) -> None:
        """The frame counters and MAC state of ``sessions``."""
        with self.transaction():
            self._db.executemany(
                "UPDATE session SET fcnt_up = ?, fcnt_down = ?, mac = ? WHERE dev_eui = ?",
                [(s.fcnt_up, s.fcnt_down, s.mac.to_json(), s.dev_eui) for s in sessions],
            )

    def forget(self, dev_eui: str) -> bool:
        """Drop a device's session (it must re-join, or an ABP device restarts its counters)."""
        with self._lock:
            found = self._db.execute("SELECT 1 FROM session WHERE dev_eui = ?", (dev_eui,))
            exists = found.fetchone() is not None
        self._write(("DELETE FROM session WHERE dev_eui = ?", (dev_eui,)))
        return exists

    # -- joins ----------------------------------------------------------------------------------
    def dev_nonce_used(self, dev_eui: str, dev_nonce: int) -> bool:
        rows = self._rows(
            "SELECT 1 FROM dev_nonce WHERE dev_eui = ? AND dev_nonce = ?", (dev_eui, dev_nonce)
        )
        return bool(rows)

    def take_join_nonce(self, dev_eui: str) -> int:
        """The next JoinNonce of this device, consumed durably before it is sent."""
        rows = self._rows("SELECT next FROM join_nonce WHERE dev_eui = ?", (dev_eui,))
        nonce = rows[0][0] if rows else 0
        if nonce > 0xFFFFFF:
            raise OverflowError(f"JoinNonce space of {dev_eui} is exhausted")
        self._write(("INSERT OR REPLACE INTO join_nonce VALUES (?, ?)", (dev_eui, nonce + 1)))
        return nonce

    # -- seq ------------------------------------------------------------------------------------
    def last_seq(self, device: str) -> int | None:
        """The newest seq forwarded for ``device``, as committed (or written in the open batch)."""
        rows = self._rows("SELECT last_seq FROM device_seq WHERE device = ?", (device,))
        return rows[0][0] if rows else None

    def save_seq(self, device: str, seq: int) -> None:
        """Record ``seq`` as forwarded for ``device`` (never lowered), in the open batch
        transaction if there is one: rolled back with it, so a frame whose batch failed is not
        taken for a repeat when the device sends it again."""
        self._write(
            (
                "INSERT INTO device_seq VALUES (?, ?) ON CONFLICT(device) DO UPDATE "
                "SET last_seq = MAX(last_seq, excluded.last_seq)",
                (device, seq),
            )
        )

    # -- downlink queue -------------------------------------------------------------------------
    def enqueue(
        self,
        dev_eui: str,
        fport: int,
        payload: bytes,
        *,
        command: str = "",
        command_seq: int | None = None,
    ) -> None:
        sql = (
            "INSERT INTO downlink(dev_eui, fport, payload, command, command_seq) "
            "VALUES (?, ?, ?, ?, ?)"
        )
        with self._lock:
            self._write((sql, (dev_eui, fport, payload, command, command_seq)))
            self._queued.add(dev_eui)

    def queued(self, dev_eui: str) -> list[QueuedDownlink]:
        if dev_eui not in self._queued:
            return []
        rows = self._rows(
            "SELECT id, fport, payload, command, command_seq, attempts FROM downlink "
            "WHERE dev_eui = ? ORDER BY id",
            (dev_eui,),
        )
        return [QueuedDownlink(r[0], dev_eui, r[1], bytes(r[2]), *r[3:]) for r in rows]

    def count_attempt(self, item: QueuedDownlink) -> QueuedDownlink:
        """One more confirmed downlink carries ``item``; written with the FCntDown it uses."""
        self._write(("UPDATE downlink SET attempts = attempts + 1 WHERE id = ?", (item.id,)))
        return replace(item, attempts=item.attempts + 1)

    def dequeue(self, item: QueuedDownlink) -> None:
        with self._lock:
            self._write(("DELETE FROM downlink WHERE id = ?", (item.id,)))
            if not self._rows("SELECT 1 FROM downlink WHERE dev_eui = ?", (item.dev_eui,)):
                self._queued.discard(item.dev_eui)

    def close(self) -> None:
        with self._lock:
            self._db.close()
