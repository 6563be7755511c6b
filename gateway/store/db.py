"""The store's tables and every query on them, in SQL that SQLite and PostgreSQL both run.

What differs between the two (connections, transactions, the bulk insert that tells which rows were
new, reading a number out of JSON) lives in a small :class:`Dialect` per backend; everything else is
here once, so the same test suite proves both. Times are integer milliseconds since 1970 UTC, so
range queries and downsampling are plain integer arithmetic in either database.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.store.intake import Batch, Message

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    device TEXT NOT NULL,
    seq BIGINT NOT NULL,
    kind TEXT NOT NULL,
    channel TEXT NOT NULL,
    type TEXT NOT NULL,
    ts_ms BIGINT NOT NULL,
    received_ms BIGINT NOT NULL,
    data {json} NOT NULL,
    PRIMARY KEY (device, seq)
);
CREATE INDEX IF NOT EXISTS messages_series ON messages (device, type, ts_ms);
CREATE INDEX IF NOT EXISTS messages_kind_ts ON messages (kind, ts_ms);
CREATE INDEX IF NOT EXISTS messages_events ON messages (ts_ms) WHERE channel = 'event';
CREATE TABLE IF NOT EXISTS latest (
    device TEXT NOT NULL,
    type TEXT NOT NULL,
    kind TEXT NOT NULL,
    seq BIGINT NOT NULL,
    ts_ms BIGINT NOT NULL,
    data {json} NOT NULL,
    PRIMARY KEY (device, type)
);
CREATE TABLE IF NOT EXISTS devices (
    device TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    first_seen_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    received BIGINT NOT NULL DEFAULT 0,
    duplicates BIGINT NOT NULL DEFAULT 0,
    min_seq BIGINT,
    max_seq BIGINT,
    status_state TEXT,
    status_ts_ms BIGINT,
    status_health {json},
    ack_seq BIGINT
);
CREATE TABLE IF NOT EXISTS images (
    device TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size BIGINT NOT NULL,
    received_ms BIGINT NOT NULL,
    PRIMARY KEY (device, event_id)
);
CREATE INDEX IF NOT EXISTS images_sha256 ON images (sha256);
CREATE INDEX IF NOT EXISTS images_kind_received ON images (kind, received_ms);
CREATE TABLE IF NOT EXISTS rejected (
    id {autoid},
    received_ms BIGINT NOT NULL,
    topic TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    payload {blob} NOT NULL
);
CREATE INDEX IF NOT EXISTS rejected_received ON rejected (received_ms);
CREATE TABLE IF NOT EXISTS rejection_counts (
    reason TEXT PRIMARY KEY,
    count BIGINT NOT NULL,
    last_ms BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS revoked_sessions (
    sid TEXT PRIMARY KEY,
    expires_ms BIGINT NOT NULL
);
"""

UPSERT_COUNTERS = """
INSERT INTO devices (device, kind, first_seen_ms, last_seen_ms, received, duplicates, min_seq,
                     max_seq)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (device) DO UPDATE SET
    kind = excluded.kind,
    last_seen_ms = excluded.last_seen_ms,
    received = devices.received + excluded.received,
    duplicates = devices.duplicates + excluded.duplicates,
    min_seq = CASE WHEN devices.min_seq IS NULL OR excluded.min_seq < devices.min_seq
                   THEN excluded.min_seq ELSE devices.min_seq END,
    max_seq = CASE WHEN devices.max_seq IS NULL OR excluded.max_seq > devices.max_seq
                   THEN excluded.max_seq ELSE devices.max_seq END
"""
UPSERT_STATUS = """
INSERT INTO devices (device, kind, first_seen_ms, last_seen_ms, status_state, status_ts_ms,
                     status_health)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (device) DO UPDATE SET
    last_seen_ms = excluded.last_seen_ms,
    status_state = excluded.status_state,
    status_ts_ms = excluded.status_ts_ms,
    status_health = excluded.status_health
WHERE devices.status_ts_ms IS NULL OR excluded.status_ts_ms >= devices.status_ts_ms
"""
UPSERT_LATEST = """
INSERT INTO latest (device, type, kind, seq, ts_ms, data) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (device, type) DO UPDATE SET
    kind = excluded.kind, seq = excluded.seq, ts_ms = excluded.ts_ms, data = excluded.data
WHERE excluded.ts_ms > latest.ts_ms OR (excluded.ts_ms = latest.ts_ms AND excluded.seq > latest.seq)
"""
INSERT_IMAGE = """
INSERT INTO images (device, event_id, kind, sha256, size, received_ms) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (device, event_id) DO NOTHING
"""
UPSERT_REJECTION_COUNT = """
INSERT INTO rejection_counts (reason, count, last_ms) VALUES (?, ?, ?)
ON CONFLICT (reason) DO UPDATE SET
    count = rejection_counts.count + excluded.count, last_ms = excluded.last_ms
"""
DEVICE_COLUMNS = (
    "device, kind, first_seen_ms, last_seen_ms, received, duplicates, min_seq, max_seq, "
    "status_state, status_ts_ms, status_health"
)
MESSAGE_COLUMNS = "device, seq, kind, channel, type, ts_ms, received_ms, data"
PURGE_CHUNK = 5000


class Cursor(Protocol):
    """The DB-API cursor methods the store uses, common to sqlite3 and psycopg."""

    rowcount: int

    def execute(self, sql: str, params: Sequence[Any] = ...) -> Any: ...
    def executemany(self, sql: str, params: Sequence[Sequence[Any]]) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchone(self) -> Any: ...


class Dialect(Protocol):
    """What one database does its own way."""

    name: str
    types: dict[str, str]  # json, blob, autoid: column types for SCHEMA
    transient: tuple[type[BaseException], ...]  # errors worth retrying (connection, lock)

    def writing(self) -> AbstractContextManager[Cursor]: ...
    def reading(self) -> AbstractContextManager[Cursor]: ...
    def lock_schema(self, cur: Cursor) -> None:
        """Keep other processes out while this one creates the schema."""
        ...

    def insert_new(self, cur: Cursor, messages: list[Message], received_ms: int) -> set[Any]:
        """Insert ``messages``, skipping (device, seq) already stored; the (device, seq) that
        were new."""
        ...

    def json_number(self, field: str) -> tuple[str, list[Any]]:
        """SQL for ``data.<field>`` as a number, NULL if it is not one, and its parameters."""
        ...

    def sql(self, text: str) -> str:
        """``text`` with this driver's placeholders."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class DeviceRow:
    device: str
    kind: str
    first_seen_ms: int
    last_seen_ms: int
    received: int
    duplicates: int
    min_seq: int | None
    max_seq: int | None
    status_state: str | None
    status_ts_ms: int | None
    status_health: dict[str, Any] | None

    @property
    def lost(self) -> int:
        """Readings never received: the gaps in seq between the first and the newest seen."""
        if self.min_seq is None or self.max_seq is None:
            return 0
        return self.max_seq - self.min_seq + 1 - self.received


@dataclass(frozen=True)
class MessageRow:
    device: str
    seq: int
    kind: str
    channel: str
    type: str
    ts_ms: int
    received_ms: int
    data: dict[str, Any]


@dataclass(frozen=True)
class LatestRow:
    device: str
    type: str
    kind: str
    seq: int
    ts_ms: int
    data: dict[str, Any]


@dataclass(frozen=True)
class ImageRow:
    device: str
    event_id: str
    kind: str
    sha256: str
    size: int
    received_ms: int


@dataclass(frozen=True)
class Bucket:
    start_ms: int
    avg: float | None
    min: float | None
    max: float | None
    count: int


@dataclass(frozen=True)
class RejectedRow:
    id: int
    received_ms: int
    topic: str
    reason: str
    detail: str
    payload: bytes


@dataclass(frozen=True)
class WriteResult:
    stored: int  # new readings and events
    duplicates: int
    statuses: int
    images: int
    rejected: int
    # device -> (kind, watermark) for every device the batch brought messages or images of, or
    # whose watermark a status's floor moved: the acknowledgements to publish
    watermarks: dict[str, tuple[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class Filter:
    """Which messages a query looks at; ``kinds`` None means all kinds."""

    kinds: Sequence[str] | None = None
    device: str | None = None
    type: str | None = None
    channel: str | None = None
    start_ms: int | None = None
    end_ms: int | None = None

    def where(self, prefix: str = "") -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.kinds is not None:
            if not self.kinds:
                return "1 = 0", []
            clauses.append(f"{prefix}kind IN ({', '.join('?' * len(self.kinds))})")
            params += list(self.kinds)
        for name in ("device", "type", "channel"):
            value = getattr(self, name)
            if value is not None:
                clauses.append(f"{prefix}{name} = ?")
                params.append(value)
        if self.start_ms is not None:
            clauses.append(f"{prefix}ts_ms >= ?")
            params.append(self.start_ms)
        if self.end_ms is not None:
            clauses.append(f"{prefix}ts_ms < ?")
            params.append(self.end_ms)
        return " AND ".join(clauses) or "1 = 1", params


def _json(value: Any) -> Any:
    """psycopg hands JSON columns back decoded; sqlite3 as text."""
    return json.loads(value) if isinstance(value, str | bytes) else value


class Store:
    """All reads and writes of the city store, on one :class:`Dialect`."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.name = dialect.name
        self._sql: dict[str, str] = {}
        with dialect.writing() as cur:
            dialect.lock_schema(cur)
            for statement in SCHEMA.format(**dialect.types).split(";"):
                if statement.strip():
                    cur.execute(statement)
            cur.execute(self.sql("SELECT value FROM meta WHERE key = ?"), ("schema",))
            row = cur.fetchone()
            if row is None:
                cur.execute(
                    self.sql("INSERT INTO meta (key, value) VALUES (?, ?)"),
                    ("schema", str(SCHEMA_VERSION)),
                )
            elif int(row[0]) != SCHEMA_VERSION:
                raise RuntimeError(
                    f"database schema {row[0]} is not this version's ({SCHEMA_VERSION})"
                )
            # a database made before acknowledgements: the column is added, empty
            cur.execute("SELECT * FROM devices LIMIT 0")
            if "ack_seq" not in {column[0] for column in cur.description}:
                cur.execute("ALTER TABLE devices ADD COLUMN ack_seq BIGINT")

    def sql(self, text: str) -> str:
        cached = self._sql.get(text)
        if cached is None:
            cached = self._sql[text] = self.dialect.sql(text)
        return cached

    def _rows(self, text: str, params: Sequence[Any] = ()) -> list[Any]:
        with self.dialect.reading() as cur:
            cur.execute(self.sql(text), params)
            return cur.fetchall()

    # -- writing --------------------------------------------------------------------------------
    def write(self, batch: Batch) -> WriteResult:
        """Store one batch in one transaction. Idempotent: (device, seq) already stored is
        counted as a duplicate, an image already stored for (device, event_id) is kept as is."""
        at = batch.received_ms
        messages = batch.messages
        keys = [(m.device, m.seq) for m in messages]
        unique = messages
        if len(set(keys)) != len(keys):
            first: dict[tuple[str, int], Message] = {}
            for key, m in zip(keys, messages, strict=True):
                first.setdefault(key, m)  # the first copy of a key is the one stored
            unique = list(first.values())
        with self.dialect.writing() as cur:
            new = self.dialect.insert_new(cur, unique, at) if unique else set()
            latest = self._count(cur, messages, keys, new, at)
            if latest:
                cur.executemany(
                    self.sql(UPSERT_LATEST),
                    [(m.device, m.type, m.kind, m.seq, m.ts_ms, m.data) for m in latest.values()],
                )
            if batch.statuses:
                cur.executemany(
                    self.sql(UPSERT_STATUS),
                    [
                        (s.device, s.kind, at, at, s.state, s.ts_ms, s.health)
                        for s in batch.statuses
                    ],
                )
            if batch.images:
                cur.executemany(
                    self.sql(INSERT_IMAGE),
                    [
                        (i.device, i.event_id, i.kind, i.sha256, len(i.jpeg), at)
                        for i in batch.images
                    ],
                )
                self._touch(cur, [(i.device, i.kind) for i in batch.images], at)
            if batch.rejections:
                self._reject(cur, batch, at)
            watermarks = self._watermarks(cur, batch)
        return WriteResult(
            stored=len(new),
            duplicates=len(messages) - len(new),
            statuses=len(batch.statuses),
            images=len(batch.images),
            rejected=len(batch.rejections),
            watermarks=watermarks,
        )

    # -- acknowledgement watermarks ------------------------------------------------------------
    def _watermarks(self, cur: Cursor, batch: Batch) -> dict[str, tuple[str, int]]:
        """Advance each device's watermark (the highest seq up to which every message is held)
        inside the transaction that wrote the batch, from what the database holds: several
        workers then agree, and a watermark never counts a message that is not committed. The
        device rows were written above, so on PostgreSQL a concurrent worker's transaction
        waits for this one and sees its rows. Returns the watermark of each device to
        acknowledge."""
        seqs: dict[str, list[int]] = {}
        kinds: dict[str, str] = {}
        for m in batch.messages:
            seqs.setdefault(m.device, []).append(m.seq)
            kinds[m.device] = m.kind
        for image in batch.images:
            kinds.setdefault(image.device, image.kind)
        floors = {s.device: (s.kind, s.floor) for s in batch.statuses if s.floor is not None}
        devices = sorted(kinds.keys() | floors.keys())
        if not devices:
            return {}
        marks = ", ".join("?" * len(devices))
        cur.execute(
            self.sql(
                f"SELECT device, kind, ack_seq, max_seq FROM devices WHERE device IN ({marks})"
            ),
            devices,
        )
        known = {row[0]: (row[1], row[2], row[3]) for row in cur.fetchall()}
        result: dict[str, tuple[str, int]] = {}
        moved: list[tuple[int, str, int]] = []
        for device in devices:
            if device not in known:
                continue  # a status from a device never seen before: nothing to acknowledge
            kind, old, newest = known[device]
            mark = -1 if old is None else old
            floor = floors.get(device, (kind, None))[1]
            if floor is not None and floor - 1 > mark:
                mark = floor - 1  # the device holds nothing below its floor: lost for good
            mark = self._advance(cur, device, mark, seqs.get(device, []), newest)
            if mark != (-1 if old is None else old):
                moved.append((mark, device, mark))
            if device in kinds or mark != (-1 if old is None else old):
                result[device] = (kinds.get(device, kind), mark)
        if moved:
            cur.executemany(
                self.sql(
                    "UPDATE devices SET ack_seq = ? WHERE device = ? "
                    "AND (ack_seq IS NULL OR ack_seq < ?)"
                ),
                moved,
            )
        return result

    def _advance(
        self, cur: Cursor, device: str, mark: int, batch_seqs: list[int], newest: int | None
    ) -> int:
        """The watermark ``mark`` moved up over every seq held right above it. The usual case,
        a batch that continues the device's run and holds its newest seq, needs no query."""
        above = {seq for seq in batch_seqs if seq > mark}
        if above and max(above) - mark == len(above):
            mark = max(above)  # the batch alone fills (mark, its max]
            if newest is None or newest <= mark:
                return mark
        elif newest is None or newest <= mark:
            return mark
        while True:  # what arrived out of order earlier may continue the run
            cur.execute(
                self.sql(
                    "SELECT seq FROM messages WHERE device = ? AND seq > ? ORDER BY seq LIMIT 500"
                ),
                (device, mark),
            )
            rows = cur.fetchall()
            for (seq,) in rows:
                if seq != mark + 1:
                    return mark
                mark = seq
            if len(rows) < 500:
                return mark

    def watermarks(self) -> list[tuple[str, str, int]]:
        """``(device, kind, watermark)`` of every device that has one, for acknowledging all
        devices again after the broker lost the store's session."""
        rows = self._rows("SELECT device, kind, ack_seq FROM devices WHERE ack_seq IS NOT NULL")
        return [(d, k, int(w)) for d, k, w in rows]

    def _count(
        self,
        cur: Cursor,
        messages: list[Message],
        keys: list[tuple[str, int]],
        new: set[Any],
        at: int,
    ) -> dict[tuple[str, str], Message]:
        """Add the batch to each device's counters; the newest new message per (device, type),
        for ``latest``. One pass over the batch, as it runs for every message stored."""
        per_device: dict[str, list[Any]] = {}  # device -> [kind, new, duplicates, min, max seq]
        latest: dict[tuple[str, str], Message] = {}
        counted: set[tuple[str, int]] = set()
        all_new = len(new) == len(messages)  # then no key repeats and each one is new
        for m, key in zip(messages, keys, strict=True):
            entry = per_device.get(m.device)
            if entry is None:
                entry = per_device[m.device] = [m.kind, 0, 0, None, None]
            if all_new or (key in new and key not in counted):
                if not all_new:
                    counted.add(key)
                if entry[1] == 0:
                    entry[3] = entry[4] = m.seq
                elif m.seq < entry[3]:
                    entry[3] = m.seq
                elif m.seq > entry[4]:
                    entry[4] = m.seq
                entry[1] += 1
                best = latest.get((m.device, m.type))
                if (
                    best is None
                    or m.ts_ms > best.ts_ms
                    or (m.ts_ms == best.ts_ms and m.seq > best.seq)
                ):
                    latest[(m.device, m.type)] = m
            else:
                entry[2] += 1
        if per_device:
            cur.executemany(
                self.sql(UPSERT_COUNTERS),
                [(d, k, at, at, n, dup, lo, hi) for d, (k, n, dup, lo, hi) in per_device.items()],
            )
        return latest

    def _touch(self, cur: Cursor, devices: list[tuple[str, str]], at: int) -> None:
        cur.executemany(
            self.sql(UPSERT_COUNTERS),
            [(d, k, at, at, 0, 0, None, None) for d, k in dict(devices).items()],
        )

    def _reject(self, cur: Cursor, batch: Batch, at: int) -> None:
        cur.executemany(
            self.sql(
                "INSERT INTO rejected (received_ms, topic, reason, detail, payload) "
                "VALUES (?, ?, ?, ?, ?)"
            ),
            [(at, r.topic, r.reason, r.detail, r.payload) for r in batch.rejections],
        )
        counts: dict[str, int] = {}
        for r in batch.rejections:
            counts[r.reason] = counts.get(r.reason, 0) + 1
        cur.executemany(self.sql(UPSERT_REJECTION_COUNT), [(r, n, at) for r, n in counts.items()])

    # -- retention ------------------------------------------------------------------------------
    def purge_kind(self, kind: str, before_ms: int) -> int:
        """Delete readings, events and latest values of ``kind`` measured before ``before_ms``."""
        removed = self._purge_chunks(
            "DELETE FROM messages WHERE (device, seq) IN (SELECT device, seq FROM messages "
            "WHERE kind = ? AND ts_ms < ? LIMIT ?)",
            (kind, before_ms, PURGE_CHUNK),
        )
        with self.dialect.writing() as cur:
            cur.execute(
                self.sql("DELETE FROM latest WHERE kind = ? AND ts_ms < ?"), (kind, before_ms)
            )
        return removed

    def purge_images(self, kind: str, before_ms: int) -> list[str]:
        """Forget images of ``kind`` received before ``before_ms``; the content hashes no row
        refers to any more, whose files can go."""
        with self.dialect.writing() as cur:
            cur.execute(
                self.sql("SELECT DISTINCT sha256 FROM images WHERE kind = ? AND received_ms < ?"),
                (kind, before_ms),
            )
            candidates = [row[0] for row in cur.fetchall()]
            cur.execute(
                self.sql("DELETE FROM images WHERE kind = ? AND received_ms < ?"),
                (kind, before_ms),
            )
            orphans = []
            for sha in candidates:
                cur.execute(self.sql("SELECT 1 FROM images WHERE sha256 = ? LIMIT 1"), (sha,))
                if cur.fetchone() is None:
                    orphans.append(sha)
        return orphans

    def purge_rejected(self, before_ms: int, keep_at_most: int = 100_000) -> int:
        removed = self._purge_chunks(
            "DELETE FROM rejected WHERE id IN (SELECT id FROM rejected WHERE received_ms < ? "
            "LIMIT ?)",
            (before_ms, PURGE_CHUNK),
        )
        with self.dialect.writing() as cur:
            cur.execute(
                self.sql("DELETE FROM rejected WHERE id <= (SELECT max(id) FROM rejected) - ?"),
                (keep_at_most,),
            )
            return removed + max(cur.rowcount, 0)

    def _purge_chunks(self, text: str, params: tuple[Any, ...]) -> int:
        """Delete in chunks, one transaction each, so ingest never waits long for the lock."""
        total = 0
        while True:
            with self.dialect.writing() as cur:
                cur.execute(self.sql(text), params)
                removed = max(cur.rowcount, 0)
            total += removed
            if removed < PURGE_CHUNK:
                return total

    # -- reading --------------------------------------------------------------------------------
    def devices(self, kinds: Sequence[str] | None = None) -> list[DeviceRow]:
        where, params = Filter(kinds=kinds).where()
        rows = self._rows(
            f"SELECT {DEVICE_COLUMNS} FROM devices WHERE {where} ORDER BY device", params
        )
        return [
            DeviceRow(*row[:10], _json(row[10]) if row[10] is not None else None) for row in rows
        ]

    def device(self, device: str) -> DeviceRow | None:
        rows = self._rows(f"SELECT {DEVICE_COLUMNS} FROM devices WHERE device = ?", (device,))
        if not rows:
            return None
        row = rows[0]
        return DeviceRow(*row[:10], _json(row[10]) if row[10] is not None else None)

    def latest(self, where: Filter) -> list[LatestRow]:
        clause, params = Filter(kinds=where.kinds, device=where.device, type=where.type).where()
        rows = self._rows(
            f"SELECT device, type, kind, seq, ts_ms, data FROM latest WHERE {clause} "
            "ORDER BY device, type",
            params,
        )
        return [LatestRow(*row[:5], _json(row[5])) for row in rows]

    def messages(self, where: Filter, limit: int, newest_first: bool = False) -> list[MessageRow]:
        clause, params = where.where()
        order = "DESC" if newest_first else "ASC"
        rows = self._rows(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {clause} "
            f"ORDER BY ts_ms {order}, device {order}, seq {order} LIMIT ?",
            [*params, limit],
        )
        return [MessageRow(*row[:7], _json(row[7])) for row in rows]

    def scan(self, where: Filter, chunk: int = 5000) -> Iterator[MessageRow]:
        """Every message ``where`` selects, oldest first, fetched in chunks (for exports): each
        chunk is its own short query, so a slow download never holds a connection."""
        clause, params = where.where()
        after: tuple[int, str, int] | None = None
        while True:
            extra, extra_params = "", []
            if after is not None:
                extra = (
                    " AND (ts_ms > ? OR (ts_ms = ? AND device > ?) "
                    "OR (ts_ms = ? AND device = ? AND seq > ?))"
                )
                extra_params = [after[0], after[0], after[1], after[0], after[1], after[2]]
            rows = self._rows(
                f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {clause}{extra} "
                "ORDER BY ts_ms, device, seq LIMIT ?",
                [*params, *extra_params, chunk],
            )
            for row in rows:
                yield MessageRow(*row[:7], _json(row[7]))
            if len(rows) < chunk:
                return
            after = (rows[-1][5], rows[-1][0], rows[-1][1])

    def series(
        self,
        device: str,
        type: str,
        field: str,
        start_ms: int,
        end_ms: int,
        step_ms: int | None,
        limit: int,
    ) -> list[Bucket]:
        """``data.<field>`` of one device's messages of ``type`` in [start, end): every value, or
        average/min/max per ``step_ms`` bucket. Messages without a number (欠測) are gaps."""
        number, number_params = self.dialect.json_number(field)
        base = "FROM messages WHERE device = ? AND type = ? AND ts_ms >= ? AND ts_ms < ?"
        params = [*number_params, device, type, start_ms, end_ms]
        if step_ms is None:
            rows = self._rows(
                f"SELECT ts_ms, {number} {base} ORDER BY ts_ms LIMIT ?", [*params, limit]
            )
            return [Bucket(ts, v, v, v, 0 if v is None else 1) for ts, v in rows]
        rows = self._rows(
            f"SELECT b, avg(x), min(x), max(x), count(x) FROM "
            f"(SELECT (ts_ms - ?) / ? AS b, {number} AS x {base}) AS s GROUP BY b ORDER BY b "
            "LIMIT ?",
            [start_ms, step_ms, *params, limit],
        )
        return [
            Bucket(start_ms + b * step_ms, _float(a), _float(lo), _float(hi), n)
            for b, a, lo, hi, n in rows
        ]

    def images_for(self, device: str, event_ids: Sequence[str]) -> dict[str, ImageRow]:
        if not event_ids:
            return {}
        marks = ", ".join("?" * len(event_ids))
        rows = self._rows(
            "SELECT device, event_id, kind, sha256, size, received_ms FROM images "
            f"WHERE device = ? AND event_id IN ({marks})",
            [device, *event_ids],
        )
        return {row[1]: ImageRow(*row) for row in rows}

    def image(self, device: str, event_id: str) -> ImageRow | None:
        return self.images_for(device, [event_id]).get(event_id)

    def rejections(self, limit: int, reason: str | None = None) -> list[RejectedRow]:
        where, params = ("reason = ?", [reason]) if reason else ("1 = 1", [])
        rows = self._rows(
            "SELECT id, received_ms, topic, reason, detail, payload FROM rejected "
            f"WHERE {where} ORDER BY id DESC LIMIT ?",
            [*params, limit],
        )
        return [RejectedRow(*row[:5], bytes(row[5])) for row in rows]

    def rejection_counts(self) -> dict[str, tuple[int, int]]:
        """reason -> (how many ever, when the last one came)."""
        rows = self._rows("SELECT reason, count, last_ms FROM rejection_counts ORDER BY reason")
        return {reason: (count, last) for reason, count, last in rows}

    # -- staff sessions -------------------------------------------------------------------------
    def revoke_session(self, sid: str, expires_ms: int, now_ms: int) -> None:
        """Remember a logged-out session until it would have expired anyway (every web process
        on this database then refuses it), and forget revocations that have run out."""
        with self.dialect.writing() as cur:
            cur.execute(self.sql("DELETE FROM revoked_sessions WHERE expires_ms < ?"), (now_ms,))
            cur.execute(
                self.sql(
                    "INSERT INTO revoked_sessions (sid, expires_ms) VALUES (?, ?) "
                    "ON CONFLICT (sid) DO NOTHING"
                ),
                (sid, expires_ms),
            )

    def session_revoked(self, sid: str) -> bool:
        return bool(self._rows("SELECT 1 FROM revoked_sessions WHERE sid = ?", (sid,)))

    def close(self) -> None:
        self.dialect.close()


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def open_store(url: str, sync: str = "full") -> Store:
    """A store on ``sqlite:///path`` or ``postgresql://...``; the schema is created if needed."""
    if url.startswith("sqlite:///"):
        from gateway.store.sqlite import SqliteDialect

        return Store(SqliteDialect(url.removeprefix("sqlite:///"), sync=sync))
    if url.startswith(("postgresql://", "postgres://")):
        from gateway.store.postgres import PostgresDialect

        return Store(PostgresDialect(url))
    raise ValueError(f"database URL {redact(url)!r}: expected sqlite:/// or postgresql://")


def redact(url: str) -> str:
    """A database URL fit for a log line: any password replaced."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest.split("/", 1)[0]:
        return url
    credentials, _, host = rest.partition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}{':***' if ':' in credentials else ''}@{host}"
