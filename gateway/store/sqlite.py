"""SQLite (WAL) for the city store: the embedded default, one file, no server to run.

One writer connection behind a lock (SQLite has one writer anyway) and one reader connection per
thread; in WAL mode readers never wait for the writer. ``sync="full"`` makes a commit survive power
loss, which matters because the broker is told a message is safe only after its commit.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gateway.store.intake import Message

INSERT = (
    "INSERT INTO messages (device, seq, kind, channel, type, ts_ms, received_ms, data) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (device, seq) DO NOTHING"
)
MAX_ROWID = 2**63 - 1


class SqliteDialect:
    name = "sqlite"
    types = {"json": "TEXT", "blob": "BLOB", "autoid": "INTEGER PRIMARY KEY AUTOINCREMENT"}
    transient: tuple[type[BaseException], ...] = (sqlite3.OperationalError,)

    def __init__(self, path: str | Path, sync: str = "full") -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.sync = sync
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._writer = self._connect()
        self._writer.execute("PRAGMA journal_mode=WAL")

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        conn.execute(f"PRAGMA synchronous={self.sync.upper()}")
        return conn

    @contextmanager
    def writing(self) -> Iterator[Any]:
        with self._lock:
            cur = self._writer.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                if self._writer.in_transaction:
                    self._writer.rollback()
                raise
            else:
                cur.execute("COMMIT")
            finally:
                cur.close()

    @contextmanager
    def reading(self) -> Iterator[Any]:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            conn.execute("PRAGMA query_only=1")
            with self._lock:
                self._readers.append(conn)
        cur = conn.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def lock_schema(self, cur: Any) -> None:
        """BEGIN IMMEDIATE already keeps a second process out while the schema is made."""

    def insert_new(self, cur: Any, messages: list[Message], received_ms: int) -> set[Any]:
        """All rows in one executemany, whose summed rowcount says whether every one was new,
        as nearly always. If not, the new ones are those numbered past the largest rowid from
        before: SQLite numbers a new row one past the largest unless that is 2^63-1."""
        cur.execute("SELECT max(rowid) FROM messages")
        last = cur.fetchone()[0] or 0
        if last > MAX_ROWID - len(messages):  # SQLite would pick rowids at random
            return self._insert_each(cur, messages, received_ms)
        cur.executemany(
            INSERT,
            [
                (m.device, m.seq, m.kind, m.channel, m.type, m.ts_ms, received_ms, m.data)
                for m in messages
            ],
        )
        if cur.rowcount == len(messages):
            return {(m.device, m.seq) for m in messages}
        cur.execute("SELECT device, seq FROM messages WHERE rowid > ?", (last,))
        return set(cur.fetchall())

    def _insert_each(self, cur: Any, messages: list[Message], received_ms: int) -> set[Any]:
        new = set()
        for m in messages:
            cur.execute(
                INSERT, (m.device, m.seq, m.kind, m.channel, m.type, m.ts_ms, received_ms, m.data)
            )
            if cur.rowcount == 1:
                new.add((m.device, m.seq))
        return new

    def json_number(self, field: str) -> tuple[str, list[Any]]:
        path = f"$.{field}"
        return (
            "CASE WHEN json_type(data, ?) IN ('integer', 'real') THEN json_extract(data, ?) END",
            [path, path],
        )

    def sql(self, text: str) -> str:
        return text

    def close(self) -> None:
        with self._lock:
            for conn in [*self._readers, self._writer]:
                conn.close()
            self._readers.clear()
