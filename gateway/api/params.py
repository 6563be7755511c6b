"""Query parameters shared by the API's endpoints, each with its pattern or bounds, so a bad value
gets a 4xx with a message before it reaches the database."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Query

from edge.protocol import KINDS
from edge.protocol.envelope import TYPE
from edge.protocol.topics import DEVICE_ID, EVENT_ID
from gateway.api.context import Ctx, Who
from gateway.store.db import Filter
from gateway.store.intake import to_ms

Kind = Enum("Kind", {kind: kind for kind in KINDS}, type=str)
FIELD_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
MAX_POINTS = 10_000
DAY_MS = 86_400_000

DevicePath = Annotated[str, Path(pattern=DEVICE_ID.pattern, description="device id")]
EventIdPath = Annotated[str, Path(pattern=EVENT_ID.pattern)]
KindQuery = Annotated[Kind | None, Query(description="only this kind of device")]
DeviceQuery = Annotated[
    str | None, Query(pattern=DEVICE_ID.pattern, description="only this device")
]
TypeQuery = Annotated[str | None, Query(pattern=TYPE.pattern, description="only this message type")]
# RFC 3339 with a timezone: a time without one would mean UTC to a server and JST to a person.
RFC3339 = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})$"
StartQuery = Annotated[
    str | None,
    Query(
        alias="from",
        pattern=RFC3339,
        description="start, inclusive: RFC 3339 with a timezone, e.g. 2026-11-22T10:00:00+09:00",
        json_schema_extra={"format": "date-time"},
    ),
]
EndQuery = Annotated[
    str | None,
    Query(
        alias="to",
        pattern=RFC3339,
        description="end, exclusive (default: now)",
        json_schema_extra={"format": "date-time"},
    ),
]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_POINTS, description="at most this many rows")]


def bad_request(detail: str) -> HTTPException:
    return HTTPException(status_code=400, detail=detail)


def _moment(name: str, text: str) -> int:
    try:
        return to_ms(datetime.fromisoformat(text))
    except ValueError as exc:
        raise bad_request(f"{name}: not a real date and time: {text!r}") from exc


def time_range(
    start: str | None, end: str | None, now_ms: int, default_span_ms: int
) -> tuple[int, int]:
    """[start, end) in milliseconds; a missing end is now, a missing start ``default_span_ms``
    before the end."""
    end_ms = _moment("to", end) if end is not None else now_ms
    start_ms = _moment("from", start) if start is not None else end_ms - default_span_ms
    if start_ms >= end_ms:
        raise bad_request("from must be before to")
    return start_ms, end_ms


def kind_value(kind: Kind | None) -> str | None:
    return None if kind is None else kind.value


def recent(
    ctx: Ctx,
    who: Who,
    kind: KindQuery = None,
    device: DeviceQuery = None,
    type: TypeQuery = None,
    start: StartQuery = None,
    end: EndQuery = None,
) -> Filter:
    """The selection events and exports share: the kinds this viewer may see, optionally one
    device or type, from..to defaulting to the last 7 days."""
    start_ms, end_ms = time_range(start, end, ctx.now_ms(), 7 * DAY_MS)
    kinds = who.kinds(kind_value(kind))
    return Filter(kinds=kinds, device=device, type=type, start_ms=start_ms, end_ms=end_ms)


Recent = Annotated[Filter, Depends(recent)]
