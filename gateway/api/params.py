"""Query parameters shared by the API's endpoints, each with its pattern or bounds, so a bad value
gets a 4xx with a message before it reaches the database."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

from fastapi import HTTPException, Path, Query

from edge.protocol import KINDS
from edge.protocol.envelope import TYPE
from edge.protocol.topics import DEVICE_ID, EVENT_ID
from gateway.store.intake import to_ms

Kind = Enum("Kind", {kind: kind for kind in KINDS}, type=str)
FIELD_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
MAX_POINTS = 10_000

DevicePath = Annotated[str, Path(pattern=DEVICE_ID.pattern, description="device id")]
EventIdPath = Annotated[str, Path(pattern=EVENT_ID.pattern)]
KindQuery = Annotated[Kind | None, Query(description="only this kind of device")]
DeviceQuery = Annotated[
    str | None, Query(pattern=DEVICE_ID.pattern, description="only this device")
]
TypeQuery = Annotated[str | None, Query(pattern=TYPE.pattern, description="only this message type")]
StartQuery = Annotated[
    datetime | None,
    Query(alias="from", description="start, inclusive (RFC 3339 with a timezone)"),
]
EndQuery = Annotated[
    datetime | None, Query(alias="to", description="end, exclusive (default: now)")
]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_POINTS, description="at most this many rows")]


def bad_request(detail: str) -> HTTPException:
    return HTTPException(status_code=400, detail=detail)


def time_range(
    start: datetime | None, end: datetime | None, now_ms: int, default_span_ms: int
) -> tuple[int, int]:
    """[start, end) in milliseconds; a missing end is now, a missing start ``default_span_ms``
    before the end."""
    for name, value in (("from", start), ("to", end)):
        if value is not None and value.tzinfo is None:
            raise bad_request(f"{name}: give a timezone, e.g. 2026-11-22T10:00:00Z or +09:00")
    end_ms = to_ms(end) if end is not None else now_ms
    start_ms = to_ms(start) if start is not None else end_ms - default_span_ms
    if start_ms >= end_ms:
        raise bad_request("from must be before to")
    return start_ms, end_ms


def kind_value(kind: Kind | None) -> str | None:
    return None if kind is None else kind.value
