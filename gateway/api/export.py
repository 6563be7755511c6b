"""Exports for spreadsheets and maps: CSV of readings and events, GeoJSON of river sites and of
positions. Both stream, so a year of data never sits in memory.

A CSV cell is text a device sent; a spreadsheet would run one that starts with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return as a formula (CSV injection), so such text gets a leading
``'``, which spreadsheets show as plain text. Numbers are left as numbers. The GeoJSON carries the
data's licence as foreign members ``license`` and ``attribution`` (RFC 7946 section 6.1).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from gateway.api.context import Context, Ctx
from gateway.api.params import (
    FIELD_PATTERN,
    Recent,
)
from gateway.api.routes import BAD
from gateway.api.sites import sites_now
from gateway.store.db import MessageRow
from gateway.store.intake import iso_ms

router = APIRouter(prefix="/api/v1", tags=["export"])
GEOJSON = "application/geo+json"
FIELD_NAME = FIELD_PATTERN.strip("^$")
FIELDS_PATTERN = f"^{FIELD_NAME}(,{FIELD_NAME})*$"


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "CSV, UTF-8"}} | BAD,
)
def export_csv(
    ctx: Ctx,
    selection: Recent,
    fields: Annotated[
        str | None,
        Query(
            max_length=500,
            pattern=FIELDS_PATTERN,
            description="comma-separated data keys to put in their own columns, e.g. level_m",
        ),
    ] = None,
    bom: Annotated[bool, Query(description="start with a BOM, so Excel reads UTF-8")] = True,
) -> StreamingResponse:
    """Readings and events, oldest first (default: the last 7 days). The ``data`` column holds
    the whole data object as JSON; ``fields`` adds chosen keys as columns of their own."""
    columns = fields.split(",") if fields else []
    rows = ctx.store.scan(selection)

    def lines() -> Iterator[str]:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        head = ["device", "kind", "seq", "ts", "received", "channel", "type", *columns, "data"]
        writer.writerow(head)
        yield ("\ufeff" if bom else "") + _take(buffer)
        for n, row in enumerate(rows, 1):
            extra = [row.data.get(name) for name in columns]
            cells = [
                row.device,
                row.kind,
                row.seq,
                iso_ms(row.ts_ms),
                iso_ms(row.received_ms),
                row.channel,
                row.type,
                *extra,
                json.dumps(row.data, ensure_ascii=False, separators=(",", ":")),
            ]
            writer.writerow([safe_cell(cell) for cell in cells])
            if n % 500 == 0:
                yield _take(buffer)
        yield _take(buffer)

    return StreamingResponse(
        lines(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="machimori.csv"'},
    )


def _take(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """A value as a CSV cell that no spreadsheet runs as a formula."""
    if isinstance(value, dict | list):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


@router.get(
    "/sites.geojson",
    response_class=StreamingResponse,
    responses={200: {"content": {GEOJSON: {}}, "description": "a FeatureCollection"}},
)
def sites_geojson(ctx: Ctx) -> StreamingResponse:
    """River sites as points, with their current level and state, for a map."""
    now_ms = ctx.now_ms()
    features = []
    for now in sites_now(ctx.store, ctx.sites, now_ms):
        site = now.site
        features.append(
            {
                "type": "Feature",
                "id": site.device,
                "geometry": {"type": "Point", "coordinates": [site.lon, site.lat]},
                "properties": {
                    "device": site.device,
                    "name": site.name,
                    "river": site.river,
                    "state": now.state,
                    "level_m": now.level_m,
                    "observed": iso_ms(now.observed_ms) if now.observed_ms else None,
                    "levels_m": vars(site.levels_m),
                },
            }
        )
    body = {"type": "FeatureCollection", **licence_members(ctx), "features": features}
    return StreamingResponse(iter([json.dumps(body, ensure_ascii=False)]), media_type=GEOJSON)


@router.get(
    "/export.geojson",
    response_class=StreamingResponse,
    responses={200: {"content": {GEOJSON: {}}, "description": "a FeatureCollection"}} | BAD,
)
def export_geojson(
    ctx: Ctx,
    selection: Recent,
) -> StreamingResponse:
    """Readings and events that carry a position (``data.lat`` and ``data.lon``), as points, oldest
    first (default: the last 7 days). Positions of people are visible to staff only."""
    rows = ctx.store.scan(selection)

    def chunks() -> Iterator[str]:
        head = {"type": "FeatureCollection", **licence_members(ctx)}
        yield json.dumps(head, ensure_ascii=False)[:-1] + ',"features":['
        first = True
        for row in rows:
            feature = _feature(row)
            if feature is not None:
                yield ("" if first else ",") + json.dumps(feature, ensure_ascii=False)
                first = False
        yield "]}"

    return StreamingResponse(chunks(), media_type=GEOJSON)


def licence_members(ctx: Context) -> dict[str, Any]:
    http = ctx.config.http
    return {
        "license": {"name": http.licence, "url": http.licence_url},
        "attribution": http.attribution,
    }


def _feature(row: MessageRow) -> dict[str, Any] | None:
    lat, lon = row.data.get("lat"), row.data.get("lon")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (lat, lon)):
        return None
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": {
            "device": row.device,
            "kind": row.kind,
            "seq": row.seq,
            "ts": iso_ms(row.ts_ms),
            "type": row.type,
            "data": row.data,
        },
    }
