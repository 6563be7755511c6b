"""A read-only NGSI v2 view, so a FIWARE-based city platform can read the river gauges.

Each river site is three Smart Data Models entities:

- ``WaterObserved`` (dataModel.Environment): ``height`` is the water level in metres above the
  gauge datum, ``dateObserved`` its time, ``refDevice`` the gauge;
- ``FloodMonitoring`` (dataModel.Environment): ``currentLevel``, ``alertLevel`` (氾濫注意),
  ``dangerLevel`` (氾濫危険), ``floodLevelStatus``; Japan's two other levels are added as
  ``standbyLevel`` (水防団待機) and ``evacuationLevel`` (避難判断);
- ``Device`` (dataModel.Device): the gauge, ``deviceState`` and ``dateLastValueReported``.

Only the part of NGSI v2 a reader needs: ``GET /ngsi/v2/entities`` (type, id, idPattern, attrs,
limit, offset, options=keyValues|count) and ``GET /ngsi/v2/entities/{id}``. Errors use NGSI's
``{"error", "description"}`` body.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from gateway.api.context import Context, Ctx
from gateway.api.sites import SiteNow, sites_now
from gateway.store.intake import iso_ms

router = APIRouter(prefix="/ngsi/v2", tags=["ngsi-v2"])
TYPES = ("WaterObserved", "FloodMonitoring", "Device")
URN = "urn:ngsi-ld:{type}:{device}"
STATUS_WORDS = {
    "normal": "Normal",
    "standby": "Standby",
    "caution": "Caution",
    "evacuation": "EvacuationDecision",
    "danger": "Danger",
    "missing": "Missing",
}
ERROR = {
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {"error": {"type": "string"}, "description": {"type": "string"}},
                "required": ["error", "description"],
            }
        }
    }
}
ENTITY_LIST = {"content": {"application/json": {"schema": {"type": "array", "items": {}}}}}
ENTITY = {"content": {"application/json": {"schema": {"type": "object"}}}}
MAX_LIMIT = 1000
TEXT_PARAM = Annotated[str | None, Query(max_length=256)]


class NgsiError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description

    def response(self) -> JSONResponse:
        return JSONResponse(
            {"error": self.error, "description": self.description}, status_code=self.status
        )


def _attr(kind: str, value: Any, **metadata: Any) -> dict[str, Any]:
    return {"type": kind, "value": value, "metadata": metadata}


def entities_of(now: SiteNow, now_ms: int) -> list[dict[str, Any]]:
    site = now.site
    location = _attr("geo:json", {"type": "Point", "coordinates": [site.lon, site.lat]})
    observed = iso_ms(now.observed_ms) if now.observed_ms is not None else None
    device_urn = URN.format(type="Device", device=site.device)
    common = {"name": _attr("Text", site.name), "location": location}
    levels = site.levels_m
    water = {
        "id": URN.format(type="WaterObserved", device=site.device),
        "type": "WaterObserved",
        **common,
        "description": _attr("Text", f"{site.river} {site.name}"),
        "height": _attr("Number", now.level_m, unitCode=_attr("Text", "MTR")),
        "dateObserved": _attr("DateTime", observed),
        "refDevice": _attr("Relationship", device_urn),
    }
    flood = {
        "id": URN.format(type="FloodMonitoring", device=site.device),
        "type": "FloodMonitoring",
        **common,
        "stationID": _attr("Text", site.device),
        "currentLevel": _attr("Number", now.level_m),
        "standbyLevel": _attr("Number", levels.standby),
        "alertLevel": _attr("Number", levels.caution),
        "evacuationLevel": _attr("Number", levels.evacuation),
        "dangerLevel": _attr("Number", levels.danger),
        "floodLevelStatus": _attr("Text", STATUS_WORDS[now.state]),
        "observationDateTime": _attr("DateTime", observed),
        "refDevice": _attr("Relationship", device_urn),
    }
    device = {
        "id": device_urn,
        "type": "Device",
        **common,
        "category": _attr("StructuredValue", ["sensor"]),
        "controlledProperty": _attr("StructuredValue", ["depth"]),
        "deviceState": _attr("Text", "missing" if now.state == "missing" else "ok"),
        "dateLastValueReported": _attr("DateTime", observed),
        "value": _attr("Number", now.level_m),
    }
    return [water, flood, device]


def _key_values(entity: dict[str, Any]) -> dict[str, Any]:
    return {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in entity.items()}


def _select_attrs(entity: dict[str, Any], attrs: list[str] | None) -> dict[str, Any]:
    if attrs is None:
        return entity
    return {k: v for k, v in entity.items() if k in ("id", "type") or k in attrs}


def _options(text: str | None) -> set[str]:
    options = {o for o in (text or "").split(",") if o}
    unknown = options - {"keyValues", "count"}
    if unknown:
        raise NgsiError(400, "BadRequest", f"unsupported option: {sorted(unknown)[0]}")
    return options


def _all_entities(ctx: Context) -> list[dict[str, Any]]:
    now_ms = ctx.now_ms()
    return [e for now in sites_now(ctx.store, ctx.sites, now_ms) for e in entities_of(now, now_ms)]


@router.get(
    "/entities",
    responses={200: ENTITY_LIST, 400: ERROR},
    response_class=JSONResponse,
)
def list_entities(
    ctx: Ctx,
    type: TEXT_PARAM = None,
    id: TEXT_PARAM = None,
    idPattern: TEXT_PARAM = None,  # noqa: N803 - NGSI's own name
    attrs: TEXT_PARAM = None,
    limit: TEXT_PARAM = None,
    offset: TEXT_PARAM = None,
    options: TEXT_PARAM = None,
) -> JSONResponse:
    """Entities, filtered like NGSI v2: type and id take comma-separated lists."""
    try:
        opts = _options(options)
        first, count = _int(offset, "offset", 0, 0, 10**9), _int(limit, "limit", 20, 1, MAX_LIMIT)
        types = set(type.split(",")) if type else None
        ids = set(id.split(",")) if id else None
        pattern = _pattern(idPattern)
        wanted = attrs.split(",") if attrs else None
    except NgsiError as exc:
        return exc.response()
    selected = [
        e
        for e in _all_entities(ctx)
        if (types is None or e["type"] in types)
        and (ids is None or e["id"] in ids)
        and (pattern is None or pattern.search(e["id"]))
    ]
    page = [_select_attrs(e, wanted) for e in selected[first : first + count]]
    if "keyValues" in opts:
        page = [_key_values(e) for e in page]
    headers = {"Fiware-Total-Count": str(len(selected))} if "count" in opts else None
    return JSONResponse(page, headers=headers)


@router.get(
    "/entities/{entity_id}",
    responses={200: ENTITY, 400: ERROR, 404: ERROR},
    response_class=JSONResponse,
)
def get_entity(
    ctx: Ctx,
    entity_id: str,
    type: TEXT_PARAM = None,
    attrs: TEXT_PARAM = None,
    options: TEXT_PARAM = None,
) -> JSONResponse:
    """One entity by id."""
    try:
        opts = _options(options)
    except NgsiError as exc:
        return exc.response()
    for entity in _all_entities(ctx):
        if entity["id"] == entity_id and (type is None or entity["type"] == type):
            found = _select_attrs(entity, attrs.split(",") if attrs else None)
            return JSONResponse(_key_values(found) if "keyValues" in opts else found)
    return NgsiError(
        404, "NotFound", "The requested entity has not been found. Check type and id"
    ).response()


def _int(text: str | None, name: str, default: int, low: int, high: int) -> int:
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise NgsiError(400, "BadRequest", f"Bad pagination data: {name} must be {low}..{high}")
    return int(text)


def _pattern(text: str | None) -> re.Pattern[str] | None:
    if text is None:
        return None
    try:
        return re.compile(text)
    except re.error as exc:
        raise NgsiError(400, "BadRequest", f"invalid regex for idPattern: {exc}") from exc
