"""The durable outbox: every message is written here before it is sent, and leaves only when the
city has it: when the store's acknowledgement covers it (``confirm``: the MQTT uplink), or when
the network acknowledged it (a confirmed LoRaWAN uplink, whose gateway holds it from then on).
A broker's PUBACK only marks a message sent (``mark_sent``); it stays, and counts toward the
bounds, until the store's watermark passes it, so a broker crash cannot lose it.

SQLite in WAL mode. The device's ``seq`` counter lives in the same database and is advanced in the
same transaction that stores the message, so after a crash, ``kill -9`` or power loss a ``seq`` is
never reused and never skipped except where a message was really lost.

Bounded: ``max_messages`` and ``max_bytes``. When full, the policy ``when_full`` decides:

- ``drop_oldest`` (default): the oldest *telemetry* message is dropped to make room; events (level
  crossings, detections) are dropped only when no telemetry is left. A river gauge cut off for days
  keeps its most recent readings and every warning-level crossing.
- ``refuse_new``: the new message is refused (``OutboxFull``) and what is queued stays.

Either way the lost message's ``seq`` is consumed, so the city sees the loss as a gap, and the
counters ``dropped_full`` / ``refused_full`` (persisted) say how many.

The file also keeps the LoRaWAN link's airtime of the last hour (``airtime``), so that one file
holds all of a device's state and the hourly radio limit outlives a restart.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from edge.protocol import Ack, Envelope, EnvelopeError, Topic

WhenFull = Literal["drop_oldest", "refuse_new"]
Sync = Literal["full", "normal"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS message (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    droppable INTEGER NOT NULL,
    seq INTEGER,
    device TEXT,
    sent_ms INTEGER
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- messages dropped when full after they were sent: if the store's acknowledgement covers one
-- later, it arrived after all and stops counting in dropped_full
CREATE TABLE IF NOT EXISTS dropped_sent (device TEXT NOT NULL, seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS airtime (at_ms INTEGER NOT NULL, seconds REAL NOT NULL);
CREATE INDEX IF NOT EXISTS airtime_at ON airtime(at_ms);
"""
# Outbox files written before end-to-end acknowledgement lack these columns; they are added.
UPGRADE = (
    ("device", "ALTER TABLE message ADD COLUMN device TEXT"),
    ("sent_ms", "ALTER TABLE message ADD COLUMN sent_ms INTEGER"),
)
INDEX = "CREATE INDEX IF NOT EXISTS message_device_seq ON message(device, seq)"


class OutboxFull(RuntimeError):
    """The outbox is full and its policy is ``refuse_new``, or its disk is full."""


def _disk_full(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "full" in str(exc)


class OutboxMismatch(RuntimeError):
    """The outbox file belongs to another device; sharing it would mix two seq counters."""


@dataclass(frozen=True)
class Pending:
    id: int
    topic: str
    payload: bytes
    qos: int
    retain: bool
    seq: int | None
    sent: bool = False


class Outbox:
    def __init__(
        self,
        path: str | Path,
        device: str,
        *,
        max_messages: int = 100_000,
        max_bytes: int = 64 * 1024 * 1024,
        when_full: WhenFull = "drop_oldest",
        sync: Sync = "full",
    ) -> None:
        if max_messages < 1 or max_bytes < 1:
            raise ValueError("outbox bounds must be positive")
        self.device = device
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self.when_full = when_full
        self._lock = threading.RLock()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={sync.upper()}")
        self._db.executescript(SCHEMA)
        self._depth = self._bytes = self._next_seq = 0
        self._counts: dict[str, int] = {}
        # ids handed to the network and not yet acknowledged by it (in memory: a new process
        # has nothing on its way); one dropped when full may still arrive, see _drop_oldest
        self._handed: set[int] = set()
        self._upgrade()
        with self._transaction():
            owner = self._meta("device", None)
            if owner is None:
                self._set_meta("device", device)
            elif owner != device:
                raise OutboxMismatch(f"{path} holds the outbox of device {owner!r}, not {device!r}")
        self._depth, self._bytes = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM message"
        ).fetchone()
        # Only this process writes the file, so the meta values are cached and written through.
        self._next_seq = self._meta("next_seq", 0)
        self._counts = {k: self._meta(k, 0) for k in ("dropped_full", "refused_full")}
        self._sync = sync.upper()

    def _upgrade(self) -> None:
        """Add the acknowledgement columns to an older file, and name the device and seq of the
        envelopes it holds, so the store's acknowledgement can cover them too."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(message)")}
        missing = [sql for name, sql in UPGRADE if name not in columns]
        with self._transaction():
            for sql in missing:
                self._db.execute(sql)
            if missing:
                rows = self._db.execute(
                    "SELECT id, payload FROM message WHERE device IS NULL AND topic NOT LIKE ?",
                    ("%/image/%",),
                ).fetchall()
                for row_id, payload in rows:
                    try:
                        envelope = Envelope.from_json(bytes(payload))
                    except EnvelopeError:
                        continue  # not an envelope: it leaves on the broker's PUBACK
                    self._db.execute(
                        "UPDATE message SET device = ?, seq = ? WHERE id = ?",
                        (envelope.device, envelope.seq, row_id),
                    )
            self._db.execute(INDEX)

    # -- bookkeeping kept in the meta table -------------------------------------------------
    def _meta(self, key: str, default: Any) -> Any:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def _set_meta(self, key: str, value: Any) -> None:
        self._db.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    def _bump(self, key: str) -> None:
        self._counts[key] += 1
        self._set_meta(key, self._counts[key])

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, or a savepoint inside :meth:`batch`. Any exception rolls
        it back, cached counters included, except a refusal: that still consumes its seq and
        counts itself."""
        nested = self._db.in_transaction
        saved = (self._depth, self._bytes, self._next_seq, dict(self._counts))
        self._db.execute("SAVEPOINT outbox" if nested else "BEGIN IMMEDIATE")
        try:
            yield
        except OutboxFull:
            self._db.execute("RELEASE outbox" if nested else "COMMIT")
            raise
        except BaseException as exc:
            self._undo(nested, saved)
            if _disk_full(exc):
                raise OutboxFull(f"the outbox's disk is full: {exc}; not stored") from exc
            raise
        try:
            self._db.execute("RELEASE outbox" if nested else "COMMIT")
        except sqlite3.OperationalError as exc:  # the disk filled up under the commit
            self._undo(nested, saved)
            raise OutboxFull(f"the outbox's disk is full: {exc}; not stored") from exc

    def _undo(self, nested: bool, saved: tuple[int, int, int, dict[str, int]]) -> None:
        """Roll the transaction back (SQLite may have done so itself when the disk filled) and
        the cached counters with it: nothing of it was stored, no seq consumed."""
        if self._db.in_transaction:
            self._db.execute("ROLLBACK TO outbox" if nested else "ROLLBACK")
            if nested:
                self._db.execute("RELEASE outbox")
        self._depth, self._bytes, self._next_seq, self._counts = saved

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Several messages in one transaction and one disk sync: all are stored, or none."""
        with self._lock, self._transaction():
            yield

    # -- producing ----------------------------------------------------------------------------
    def add(self, topic: Topic, type: str, data: dict[str, Any], ts: str) -> Envelope:
        """Store one envelope under the next ``seq``. A validation error writes nothing."""
        if topic.device != self.device:
            raise EnvelopeError("device", f"{topic.device!r} is not this outbox's device")
        with self._lock, self._transaction():
            seq = self._next_seq
            envelope = Envelope(self.device, seq, ts, type, data)
            try:
                payload = envelope.to_json()
            except (TypeError, ValueError) as exc:
                raise EnvelopeError("data", f"not representable as JSON ({exc})") from exc
            self._set_meta("next_seq", seq + 1)
            self._next_seq = seq + 1  # consumed even if refused below: the loss shows as a gap
            self._store(topic, payload, droppable=topic.channel == "telemetry", seq=seq)
        return envelope

    def add_raw(
        self,
        topic: Topic,
        payload: bytes,
        *,
        seq: int | None = None,
        droppable: bool | None = None,
    ) -> None:
        """Store a payload this outbox did not number: an image, or an envelope forwarded for
        another device (``topic.device``) with that device's ``seq``, which the store's
        acknowledgement of that device covers. Droppable when full unless it is an event (or
        ``droppable`` says)."""
        if droppable is None:
            droppable = topic.channel != "event"
        with self._lock, self._transaction():
            self._store(topic, payload, droppable=droppable, seq=seq)

    def _store(self, topic: Topic, payload: bytes, *, droppable: bool, seq: int | None) -> None:
        size = len(payload)
        if size > self.max_bytes:
            raise OutboxFull(f"a {size}-byte message cannot fit an outbox of {self.max_bytes} B")
        if self.when_full == "refuse_new" and self._is_full(size):
            self._bump("refused_full")
            raise OutboxFull(f"outbox full ({self._depth} messages, {self._bytes} B); refused")
        while self._is_full(size):
            self._drop_oldest()
        self._db.execute(
            "INSERT INTO message(topic, payload, qos, retain, droppable, seq, device) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (str(topic), payload, topic.qos, topic.retain, droppable, seq, topic.device),
        )
        self._depth += 1
        self._bytes += size

    def _is_full(self, incoming: int) -> bool:
        return self._depth + 1 > self.max_messages or self._bytes + incoming > self.max_bytes

    def _drop_oldest(self) -> None:
        row_id, size, device, seq, sent = self._db.execute(
            "SELECT id, LENGTH(payload), device, seq, sent_ms IS NOT NULL FROM message "
            "ORDER BY droppable DESC, id LIMIT 1"
        ).fetchone()
        self._db.execute("DELETE FROM message WHERE id = ?", (row_id,))
        if row_id in self._handed:
            self._handed.discard(row_id)
            sent = True  # on its way: the store may get it yet, and say so
        if sent and seq is not None:
            self._db.execute("INSERT INTO dropped_sent VALUES (?, ?)", (device, seq))
        self._depth -= 1
        self._bytes -= size
        self._bump("dropped_full")

    # -- consuming ----------------------------------------------------------------------------
    def pending(self, after_id: int = 0, limit: int = 100) -> list[Pending]:
        """The oldest unconfirmed messages with an id above ``after_id``, in order; those already
        sent (to be sent again) among them."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload, qos, retain, seq, sent_ms IS NOT NULL FROM message "
                "WHERE id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [Pending(r[0], r[1], bytes(r[2]), r[3], bool(r[4]), r[5], bool(r[6])) for r in rows]

    def handed(self, ids: Iterable[int]) -> None:
        """These went to the network (published, no PUBACK yet): if the full outbox drops one
        meanwhile, it is remembered as possibly arriving, like a message already sent."""
        with self._lock:
            self._handed.update(ids)

    def mark_sent(self, ids: Iterable[int], at_ms: int) -> None:
        """The broker has these (PUBACK): they stay until the store confirms them. The time of
        the first send is kept, for the age of the oldest unconfirmed message. Not synced on its
        own: a power cut forgets only that they were sent, and they are sent again."""
        ids = list(ids)
        if not ids:
            return
        with self._lock, self._unsynced():
            self._handed.difference_update(ids)
            self._by_ids(
                "UPDATE message SET sent_ms = COALESCE(sent_ms, ?) WHERE id IN ({marks})",
                ids,
                at_ms,
            )

    def confirm(self, kind: str, ack: Ack) -> int:
        """Delete what the store's acknowledgement ``ack`` covers: the messages of ``ack.device``
        up to its watermark, those in its ``held`` ranges, and its images. Returns how many."""
        images = [str(Topic(kind, ack.device, "image", event_id)) for event_id in ack.images]
        clauses = ["seq <= ?", *["seq BETWEEN ? AND ?" for _ in ack.held]]
        params: list[Any] = [ack.device, ack.seq, *(n for r in ack.held for n in r)]
        if images:
            clauses.append(f"(seq IS NULL AND topic IN ({','.join('?' * len(images))}))")
            params += images
        covered = " OR ".join(clauses[: len(ack.held) + 1])
        with self._lock, self._unsynced():
            rows = self._db.execute(
                f"DELETE FROM message WHERE device = ? AND ({' OR '.join(clauses)}) "
                "RETURNING id, LENGTH(payload)",
                params,
            ).fetchall()
            self._handed.difference_update(row_id for row_id, _ in rows)
            self._forget(len(rows), sum(size for _, size in rows))
            arrived = self._db.execute(
                f"DELETE FROM dropped_sent WHERE device = ? AND ({covered})",
                params[: 2 + 2 * len(ack.held)],
            ).rowcount
            self._arrived(arrived)
        return len(rows)

    def ack(self, ids: Iterable[int]) -> None:
        """Remove acknowledged messages. An id no longer here was dropped to make room while it
        was on its way: it arrived after all, so it stops counting in ``dropped_full``, which
        then says how many readings the full outbox really lost.

        Deletions are not synced to disk one by one: if power fails first, the message is sent
        again and the receiver drops the duplicate, which costs far less than an fsync per ack.
        """
        ids = list(ids)
        if not ids:
            return
        with self._lock, self._unsynced():
            self._handed.difference_update(ids)
            sizes = self._by_ids(
                "DELETE FROM message WHERE id IN ({marks}) RETURNING LENGTH(payload)", ids
            )
            self._forget(len(sizes), sum(size for (size,) in sizes))
            self._arrived(len(ids) - len(sizes))

    def _by_ids(self, statement: str, ids: list[int], *first: Any) -> list[Any]:
        """``statement`` with ``{marks}`` for a list of ids, run over ``ids`` in pieces small
        enough for SQLite's parameter limit (``first``: parameters before the ids); the rows
        it returned."""
        rows: list[Any] = []
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            sql = statement.format(marks=",".join("?" * len(chunk)))
            rows += self._db.execute(sql, (*first, *chunk)).fetchall()
        return rows

    def _arrived(self, count: int) -> None:
        """``count`` messages dropped when full reached the city after all: not lost."""
        if count:
            self._counts["dropped_full"] = max(0, self._counts["dropped_full"] - count)
            self._set_meta("dropped_full", self._counts["dropped_full"])

    def _forget(self, count: int, size: int) -> None:
        self._depth -= count
        self._bytes -= size

    @contextmanager
    def _unsynced(self) -> Iterator[None]:
        """A transaction committed without its own fsync (WAL, synchronous=NORMAL): it survives
        the process, and the next synced commit (the next message stored) takes it to disk too,
        because the WAL is flushed as one file."""
        self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            with self._transaction():
                yield
        finally:
            self._db.execute(f"PRAGMA synchronous={self._sync}")

    # -- airtime spent by the radio (edge.runtime.lora_link) -----------------------------------
    def log_airtime(self, at_ms: int, seconds: float, *, keep_after_ms: int) -> None:
        """Record ``seconds`` on air at wall-clock ``at_ms`` and forget entries at or before
        ``keep_after_ms``, in one transaction, without an fsync of its own: a power cut can
        forget the spends since the last message stored, not more."""
        with self._lock, self._unsynced():
            self._db.execute("INSERT INTO airtime(at_ms, seconds) VALUES (?, ?)", (at_ms, seconds))
            self._db.execute("DELETE FROM airtime WHERE at_ms <= ?", (keep_after_ms,))

    def airtime_log(self, *, keep_after_ms: int, latest_ms: int) -> list[tuple[int, float]]:
        """The recorded ``(at_ms, seconds)`` after ``keep_after_ms``, oldest first. Older entries
        are deleted; entries after ``latest_ms`` are moved to ``latest_ms``, here and on disk."""
        with self._lock, self._transaction():
            self._db.execute("DELETE FROM airtime WHERE at_ms <= ?", (keep_after_ms,))
            self._db.execute("UPDATE airtime SET at_ms = ? WHERE at_ms > ?", (latest_ms, latest_ms))
            rows = self._db.execute(
                "SELECT at_ms, seconds FROM airtime ORDER BY at_ms, rowid"
            ).fetchall()
        return [(at_ms, seconds) for at_ms, seconds in rows]

    # -- health ---------------------------------------------------------------------------------
    @property
    def depth(self) -> int:
        return self._depth

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def unconfirmed(self) -> tuple[int, int | None]:
        """How many messages were sent but are not yet confirmed, and when the oldest of them
        was first sent (epoch ms), or None."""
        with self._lock:
            count, oldest = self._db.execute(
                "SELECT COUNT(*), MIN(sent_ms) FROM message WHERE sent_ms IS NOT NULL"
            ).fetchone()
        return count, oldest

    def floor(self) -> int:
        """The lowest seq of this device's own that is still here (the next seq when none is).
        A seq below it that the store lacks is lost for good: the store may pass over it."""
        with self._lock:
            (lowest,) = self._db.execute(
                "SELECT MIN(seq) FROM message WHERE device = ?", (self.device,)
            ).fetchone()
        return self._next_seq if lowest is None else lowest

    def counters(self, now_ms: int | None = None) -> dict[str, int | float | None]:
        """Depth, bytes, the last seq issued, the floor, the full-policy counters, and the
        sent-but-unconfirmed count with the age of the oldest (seconds, given ``now_ms``)."""
        unconfirmed, oldest = self.unconfirmed()
        age = None if oldest is None or now_ms is None else max(0, now_ms - oldest) / 1000
        with self._lock:
            return {
                "queued": self._depth,
                "queued_bytes": self._bytes,
                "last_seq": self._next_seq - 1,
                "floor": self.floor(),
                "unconfirmed": unconfirmed,
                "oldest_unconfirmed_s": age,
                **self._counts,
            }

    def close(self) -> None:
        with self._lock:
            self._db.close()
