"""PostgreSQL (psycopg 3) for the city store, for a city that outgrows one file or runs several
ingest workers on several hosts.

A batch of readings goes in as one ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING
RETURNING``: one round trip, and the database itself says which (device, seq) were new, so two
workers racing on the same message still count it once. The arrays go in binary (``%b``): the text
form escapes every element with a regular expression, which cost more than the insert. Reads come
from a small connection pool.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from gateway.store.intake import Message

INSERT = (
    "INSERT INTO messages (device, seq, kind, channel, type, ts_ms, received_ms, data) "
    "SELECT * FROM unnest(%b::text[], %b::bigint[], %b::text[], %b::text[], %b::text[], "
    "%b::bigint[], %b::bigint[], %b::text[]::jsonb[]) "
    "ON CONFLICT (device, seq) DO NOTHING RETURNING device, seq"
)
SCHEMA_LOCK = 0x6D616368  # pg_advisory_xact_lock key: one process creates the schema at a time


class PostgresDialect:
    name = "postgresql"
    types = {
        "json": "JSONB",
        "blob": "BYTEA",
        "autoid": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    }
    transient: tuple[type[BaseException], ...] = (psycopg.OperationalError, psycopg.InterfaceError)

    def __init__(self, url: str, pool_size: int = 8) -> None:
        self.url = url
        self._lock = threading.Lock()
        self._writer = psycopg.connect(url, autocommit=True)
        self._pool = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            check=ConnectionPool.check_connection,
            open=True,
        )

    @contextmanager
    def writing(self) -> Iterator[Any]:
        with self._lock:
            if self._writer.closed or self._writer.broken:
                self._writer = psycopg.connect(self.url, autocommit=True)
            with self._writer.transaction(), self._writer.cursor() as cur:
                yield cur

    @contextmanager
    def reading(self) -> Iterator[Any]:
        with self._pool.connection() as conn, conn.cursor() as cur:
            yield cur

    def lock_schema(self, cur: Any) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))

    def insert_new(self, cur: Any, messages: list[Message], received_ms: int) -> set[Any]:
        rows = [(m.device, m.seq, m.kind, m.channel, m.type, m.ts_ms) for m in messages]
        columns = [list(column) for column in zip(*rows, strict=True)]  # lists become arrays
        cur.execute(INSERT, [*columns, [received_ms] * len(messages), [m.data for m in messages]])
        return {(device, seq) for device, seq in cur.fetchall()}

    def json_number(self, field: str) -> tuple[str, list[Any]]:
        return (
            "CASE WHEN jsonb_typeof(data -> ?) = 'number' THEN (data ->> ?)::float8 END",
            [field, field],
        )

    def sql(self, text: str) -> str:
        if "%" in text:
            raise ValueError("a literal % in SQL would clash with psycopg's placeholders")
        return text.replace("?", "%s")

    def close(self) -> None:
        with self._lock:
            self._pool.close()
            self._writer.close()
