"""The data API under /api/v1: devices, latest values, time series, events, images, river sites,
rejected messages, and /healthz.

Anyone may read the kinds in ``http.public_kinds`` (river gauges by default); everything else,
children's positions above all, needs a staff login and is simply absent for anyone else.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse

from edge.protocol.envelope import TYPE
from gateway.api import models
from gateway.api.context import Context, Ctx, Viewer, Who
from gateway.api.params import (
    DAY_MS,
    FIELD_PATTERN,
    MAX_POINTS,
    DevicePath,
    DeviceQuery,
    EndQuery,
    EventIdPath,
    KindQuery,
    LimitQuery,
    Recent,
    StartQuery,
    TypeQuery,
    bad_request,
    kind_value,
    time_range,
)
from gateway.api.sites import SiteNow, sites_now
from gateway.store.db import DeviceRow, Filter, ImageRow
from gateway.store.intake import iso_ms

NOT_FOUND = {404: {"model": models.Problem, "description": "no such device (for you)"}}
BAD = {400: {"model": models.Problem, "description": "parameters that do not fit together"}}
STAFF = {401: {"model": models.Problem, "description": "staff login needed"}}

router = APIRouter(prefix="/api/v1", tags=["data"])


def device_model(row: DeviceRow) -> models.Device:
    health = row.status_health or {}
    outbox = health.get("outbox") if isinstance(health.get("outbox"), dict) else {}
    issued = outbox.get("last_seq") if outbox else None
    return models.Device(
        device=row.device,
        kind=row.kind,
        first_seen=iso_ms(row.first_seen_ms),
        last_seen=iso_ms(row.last_seen_ms),
        state=row.status_state,
        status_ts=iso_ms(row.status_ts_ms) if row.status_ts_ms is not None else None,
        received=row.received,
        duplicates=row.duplicates,
        lost=row.lost,
        first_seq=row.min_seq,
        last_seq=row.max_seq,
        last_seq_issued=issued
        if isinstance(issued, int) and not isinstance(issued, bool)
        else None,
        health=row.status_health,
    )


def image_url(row: ImageRow) -> str:
    return f"/api/v1/images/{row.device}/{row.event_id}"


def _readable_device(ctx: Context, who: Viewer, device: str, data: bool = True) -> DeviceRow:
    """The device, if the viewer may see it (and, with ``data``, read its messages)."""
    row = ctx.store.device(device)
    if row is None or not (who.may_read(row.kind) if data else who.may_list(row.kind)):
        raise HTTPException(404, detail=f"no device {device!r}")
    return row


@router.get("/devices", response_model=list[models.Device])
def devices(ctx: Ctx, who: Who, kind: KindQuery = None) -> list[models.Device]:
    """Every device the store has heard from, with its status and measured loss."""
    return [device_model(row) for row in ctx.store.devices(who.device_kinds(kind_value(kind)))]


@router.get("/devices/{device}", response_model=models.Device, responses=NOT_FOUND)
def device(ctx: Ctx, who: Who, device: DevicePath) -> models.Device:
    return device_model(_readable_device(ctx, who, device, data=False))


@router.get("/latest", response_model=list[models.Latest])
def latest(
    ctx: Ctx, who: Who, kind: KindQuery = None, device: DeviceQuery = None, type: TypeQuery = None
) -> list[models.Latest]:
    """The newest reading or event of each type from each device (by measurement time)."""
    where = Filter(kinds=who.kinds(kind_value(kind)), device=device, type=type)
    return [
        models.Latest(
            device=r.device, kind=r.kind, type=r.type, seq=r.seq, ts=iso_ms(r.ts_ms), data=r.data
        )
        for r in ctx.store.latest(where)
    ]


@router.get("/devices/{device}/series", response_model=models.Series, responses=NOT_FOUND | BAD)
def series(
    ctx: Ctx,
    who: Who,
    device: DevicePath,
    type: Annotated[str, Query(pattern=TYPE.pattern, description="message type")] = "level",
    field: Annotated[
        str, Query(pattern=FIELD_PATTERN, description="numeric key of data")
    ] = "level_m",
    start: StartQuery = None,
    end: EndQuery = None,
    step: Annotated[
        int | None,
        Query(ge=1, le=366 * 86400, description="seconds per bucket; omit for every reading"),
    ] = None,
    limit: LimitQuery = MAX_POINTS,
) -> models.Series:
    """One number from a device's readings over time (default: the last 24 hours), every
    reading or downsampled to average/min/max per ``step`` seconds. 欠測 readings are nulls."""
    _readable_device(ctx, who, device)
    start_ms, end_ms = time_range(start, end, ctx.now_ms(), DAY_MS)
    step_ms = step * 1000 if step is not None else None
    if step_ms is not None and (end_ms - start_ms) / step_ms > MAX_POINTS:
        raise bad_request(f"more than {MAX_POINTS} buckets: use a larger step or a shorter range")
    points = ctx.store.series(device, type, field, start_ms, end_ms, step_ms, limit)
    return models.Series(
        device=device,
        type=type,
        field=field,
        start=iso_ms(start_ms),
        end=iso_ms(end_ms),
        step_s=step,
        points=[
            models.Point(ts=iso_ms(p.start_ms), value=p.avg, min=p.min, max=p.max, count=p.count)
            for p in points
        ],
    )


@router.get("/events", response_model=list[models.Event], responses=BAD)
def events(
    ctx: Ctx, selection: Recent, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[models.Event]:
    """Discrete happenings (level crossings, detections, alerts), newest first; default: the
    last 7 days. An event whose data names an ``event_id`` links its image when one arrived."""
    where = replace(selection, channel="event")
    rows = ctx.store.messages(where, limit, newest_first=True)
    wanted: dict[str, list[str]] = {}
    for row in rows:
        if isinstance(row.data.get("event_id"), str):
            wanted.setdefault(row.device, []).append(row.data["event_id"])
    images = {
        (dev, event_id): image
        for dev, ids in wanted.items()
        for event_id, image in ctx.store.images_for(dev, ids).items()
    }
    out = []
    for row in rows:
        image = images.get((row.device, row.data.get("event_id")))
        out.append(
            models.Event(
                device=row.device,
                kind=row.kind,
                seq=row.seq,
                ts=iso_ms(row.ts_ms),
                type=row.type,
                data=row.data,
                image=image_url(image) if image else None,
            )
        )
    return out


@router.get(
    "/images/{device}/{event_id}",
    response_class=FileResponse,
    responses={200: {"content": {"image/jpeg": {}}, "description": "the JPEG"}} | NOT_FOUND,
)
def image(ctx: Ctx, who: Who, device: DevicePath, event_id: EventIdPath) -> FileResponse:
    """An event's image as it arrived (JPEG); only for kinds the caller may read."""
    row = ctx.store.image(device, event_id)
    path = ctx.images.path(row.sha256) if row is not None else None
    if row is None or not who.may_read(row.kind) or path is None or not path.exists():
        raise HTTPException(404, detail="no such image")
    return FileResponse(
        path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
    )


@router.get("/sites", response_model=models.Sites)
def sites(ctx: Ctx) -> models.Sites:
    """River sites with their current level and state against the four warning levels: what
    the public river page shows. Open to everyone."""
    now_ms = ctx.now_ms()
    return models.Sites(
        now=iso_ms(now_ms), sites=[site_model(s) for s in sites_now(ctx.store, ctx.sites, now_ms)]
    )


def site_model(now: SiteNow) -> models.Site:
    site = now.site
    return models.Site(
        device=site.device,
        name=site.name,
        name_en=site.name_en or site.name,
        river=site.river,
        river_en=site.river_en or site.river,
        lat=site.lat,
        lon=site.lon,
        levels_m=models.WarningLevels(**vars(site.levels_m)),
        stale_after_min=site.stale_after_min,
        state=now.state,
        level_m=now.level_m,
        observed=iso_ms(now.observed_ms) if now.observed_ms is not None else None,
        missing=now.missing,
        trend=now.trend,
        trend_m_per_h=now.trend_m_per_h,
    )


@router.get("/rejections", response_model=models.Rejections, responses=STAFF)
def rejections(
    ctx: Ctx,
    who: Who,
    reason: Annotated[str | None, Query(pattern=r"^[a-z_]{1,32}$")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> models.Rejections:
    """Messages that broke the contract: how many per reason, and the latest kept as received."""
    if who.staff is None:
        raise HTTPException(401, detail="log in as staff at /staff/login")
    counts = ctx.store.rejection_counts()
    return models.Rejections(
        counts=[
            models.RejectionCount(reason=reason, count=n, last=iso_ms(last))
            for reason, (n, last) in counts.items()
        ],
        recent=[
            models.Rejected(
                id=r.id,
                received=iso_ms(r.received_ms),
                topic=r.topic,
                reason=r.reason,
                detail=r.detail,
                payload=r.payload.decode("utf-8", "replace"),
                payload_bytes=len(r.payload),
            )
            for r in ctx.store.rejections(limit, reason)
        ],
    )


health_router = APIRouter(tags=["operations"])


@health_router.get(
    "/healthz",
    response_model=models.Health,
    responses={503: {"model": models.Problem, "description": "the database does not answer"}},
)
def healthz(ctx: Ctx) -> models.Health:
    """Whether the database answers, and each ingest worker's counters in this process."""
    try:
        ctx.store.device("-")  # a query that must work
    except Exception as exc:
        raise HTTPException(503, detail=f"database: {type(exc).__name__}") from exc
    ingest: list[dict[str, Any]] = [stats() for stats in ctx.ingest_stats]
    warnings = [
        f"the broker lost the store's session at {iso_ms(s['broker_session_lost_ms'])}: what it "
        "had queued for the store was lost there and the devices were asked to send it again"
        for s in ingest
        if s.get("broker_session_lost_ms") is not None
    ]
    return models.Health(
        ok=all(s.get("connected", True) for s in ingest),
        database=ctx.store.name,
        now=iso_ms(ctx.now_ms()),
        ingest=ingest,
        warnings=warnings,
    )
