"""The shapes the HTTP API answers with; FastAPI turns them into the OpenAPI document."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

Time = Annotated[
    str,
    Field(
        description="RFC 3339 UTC with milliseconds, like the envelope's ts",
        json_schema_extra={"format": "date-time"},
        examples=["2026-11-22T10:00:00.000Z"],
    ),
]


class Problem(BaseModel):
    """A request the API cannot answer, and why."""

    detail: str


class Device(BaseModel):
    """A field device as the store knows it: its status and how much of its stream arrived."""

    device: str
    kind: str
    first_seen: Time
    last_seen: Time = Field(description="when the store last heard from it (store clock)")
    state: Literal["online", "offline"] | None = Field(
        description="from its retained status message; null if it never sent one"
    )
    status_ts: Time | None
    received: int = Field(description="distinct readings and events stored, ever")
    duplicates: int = Field(description="copies received again and ignored")
    lost: int = Field(description="gaps in seq between the first and the newest seen")
    first_seq: int | None
    last_seq: int | None
    last_seq_issued: int | None = Field(
        description="newest seq the device says it has issued (status health.outbox.last_seq)"
    )
    health: dict[str, Any] | None


class Latest(BaseModel):
    device: str
    kind: str
    type: str
    seq: int
    ts: Time
    data: dict[str, Any]


class Point(BaseModel):
    ts: Time = Field(description="the reading's time, or the start of its bucket")
    value: float | None = Field(description="the value, or the bucket's average; null = 欠測")
    min: float | None
    max: float | None
    count: int = Field(description="readings with a number in this bucket")


class Series(BaseModel):
    device: str
    type: str
    field: str
    start: Time
    end: Time
    step_s: int | None
    points: list[Point]


class Event(BaseModel):
    device: str
    kind: str
    seq: int
    ts: Time
    type: str
    data: dict[str, Any]
    image: str | None = Field(description="URL of the event's image, if one arrived")


class ImageMeta(BaseModel):
    device: str
    event_id: str
    sha256: str
    size: int
    received: Time
    url: str


class WarningLevels(BaseModel):
    standby: float = Field(description="水防団待機水位, metres above the gauge datum")
    caution: float = Field(description="氾濫注意水位")
    evacuation: float = Field(description="避難判断水位")
    danger: float = Field(description="氾濫危険水位")


class Site(BaseModel):
    device: str
    name: str
    name_en: str
    river: str
    river_en: str
    lat: float
    lon: float
    levels_m: WarningLevels
    stale_after_min: float
    state: Literal["normal", "standby", "caution", "evacuation", "danger", "missing"]
    level_m: float | None = Field(description="null when 欠測")
    observed: Time | None
    missing: str | None = Field(description="why 欠測: stale, no_data, or the gauge's reason")
    trend: Literal["rising", "falling", "steady"] | None
    trend_m_per_h: float | None


class Sites(BaseModel):
    now: Time
    sites: list[Site]


class RejectionCount(BaseModel):
    reason: str
    count: int
    last: Time


class Rejected(BaseModel):
    id: int
    received: Time
    topic: str
    reason: str
    detail: str
    payload: str = Field(description="the payload as received (UTF-8 with replacements)")
    payload_bytes: int


class Rejections(BaseModel):
    counts: list[RejectionCount]
    recent: list[Rejected]


class Health(BaseModel):
    ok: bool
    database: str
    now: Time
    ingest: list[dict[str, Any]]
    # what an operator must look at: e.g. the broker lost the store's session (what it had
    # queued for the store is gone; the devices were asked to send it again)
    warnings: list[str] = []
