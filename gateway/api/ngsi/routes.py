"""NGSI v2's read side as a context broker serves it (specification sections "Entities",
"Attributes", "Attribute Value", "Types", "Pagination", "Ordering Results"): entity lists with
every filter, one entity, its attributes and their values, entity types, and the version.

Entities are made fresh from the store on each request (a city has tens of them, not millions),
so a filter never answers from stale data.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import JSONResponse, Response

from edge.runtime.health import package_version
from gateway.api.context import Context, Ctx
from gateway.api.ngsi import geo
from gateway.api.ngsi.entities import (
    Entity,
    attr_names,
    key_values,
    river_entities,
    select,
    sighting_entity,
    values_row,
    vehicle_entity,
)
from gateway.api.ngsi.errors import ERROR_SCHEMA, READ_ONLY, NgsiError, bad, not_found
from gateway.api.ngsi.expression import Expression, check_pattern, expression, fits
from gateway.api.ngsi.scope import visible
from gateway.api.sightings import sightings
from gateway.api.sites import sites_now

router = APIRouter(prefix="/ngsi", tags=["ngsi-v2"])
# The Orion release whose NGSI v2 behaviour this view follows. FIWARE clients read
# orion.version to decide what a broker can do (filip warns below 3.6.0).
COMPATIBLE_ORION = "3.12.0"
MAX_LIMIT = 1000
MAX_QUERY_BYTES = 64 * 1024
DEFAULT_LIMIT = 20
FORMATS = ("normalized", "keyValues", "values", "unique")
OPTIONS = (*FORMATS, "count")
Text = Annotated[str | None, Query(max_length=2048)]
# Identifiers (ids, types, attribute names): printable ASCII without whitespace, & ? / #, up to
# 256 characters (specification section "Field syntax restrictions").
IDENT = r"^[!\"$%'-.0-9:->@-~]{1,256}$"
Ident = Annotated[str, Path(pattern=IDENT, max_length=256)]
ERRORS = {400: ERROR_SCHEMA, 404: ERROR_SCHEMA}
JSON_LIST = {"content": {"application/json": {"schema": {"type": "array", "items": {}}}}}
JSON_OBJECT = {"content": {"application/json": {"schema": {"type": "object"}}}}


RIVER_TYPES = frozenset({"WaterObserved", "FloodMonitoring", "Device"})


def city_entities(ctx: Context, types: frozenset[str] | None = None) -> list[Entity]:
    """Everything the city publishes, in a stable order: the river sites one by one, the buses
    in the GTFS-Realtime feed by id, then the wildlife sightings, newest first. ``types``: only
    those entity types are wanted, so the others need not be made (a query for Vehicles does
    not read the gauges)."""

    def wanted(*kinds: str) -> bool:
        return types is None or any(kind in types for kind in kinds)

    now_ms = ctx.now_ms()
    out: list[Entity] = []
    if wanted(*RIVER_TYPES):
        out += [e for now in sites_now(ctx.store, ctx.sites, now_ms) for e in river_entities(now)]
    if ctx.transit is not None and wanted("Vehicle"):
        feed = ctx.transit.realtime.vehicle_positions(ctx.transit.positions(ctx.store), now_ms)
        out += [vehicle_entity(item) for item in feed.entity]
    if wanted("Alert"):
        out += [sighting_entity(s) for s in sightings(ctx)]
    return out


def scoped_entities(
    ctx: Context, request: Request, patterns: list[dict[str, str]] | None = None
) -> list[Entity]:
    """The entities this request's tenant and service path see; with ``patterns`` that all
    name a ``type``, only those types are made."""
    if not visible(request, ctx.config.ngsi):
        return []
    named = [p.get("type") for p in patterns or []]
    types = frozenset(t for t in named if t) if named and all(named) else None
    return city_entities(ctx, types)


def _options(text: str | None) -> tuple[str, bool]:
    """(representation, count) from ``options``."""
    options = [o for o in (text or "").split(",") if o]
    unknown = [o for o in options if o not in OPTIONS]
    if unknown:
        raise bad(f"options: unknown {unknown[0]!r} (known: {', '.join(OPTIONS)})")
    formats = [o for o in options if o in FORMATS]
    if len(set(formats)) > 1:
        raise bad(f"options: {' and '.join(sorted(set(formats)))} exclude each other")
    return (formats[0] if formats else "normalized"), "count" in options


def _list(text: str | None) -> list[str] | None:
    return [x for x in text.split(",") if x] if text else None


def _int(text: str | None, name: str, default: int, low: int, high: int) -> int:
    if text is None:
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise bad(f"Bad pagination data: {name} must be a number in {low}..{high}")
    return int(text)


def _represent(entity: Entity, form: str, attrs: list[str] | None) -> Any:
    if form == "keyValues":
        return key_values(entity)
    if form in ("values", "unique"):
        return values_row(entity, attrs)
    return entity


def _unique(rows: list[Any]) -> list[Any]:
    seen: list[Any] = []
    for row in rows:
        if row not in seen:
            seen.append(row)
    return seen


@dataclass(frozen=True)
class Order:
    key: str
    descending: bool


def _order(text: str | None, near: bool) -> list[Order]:
    orders = []
    for item in _list(text) or []:
        descending = item.startswith("!")
        key = item[1:] if descending else item
        if not key or (key == "geo:distance" and not near):
            raise bad(f"orderBy: {item!r} (geo:distance needs georel=near)")
        orders.append(Order(key, descending))
    return orders


def _sort_value(entity: Entity, key: str, where: geo.GeoQuery | None) -> tuple[int, Any]:
    """A key that orders like a document store: absent, numbers, strings, structured, bools."""
    if key in ("id", "type"):
        return 2, entity[key]
    if key == "geo:distance":
        point = geo.location(entity)
        return (1, where.distance_m(point)) if where and point else (0, 0)
    attribute = entity.get(key)
    if not isinstance(attribute, dict):
        return 0, 0
    value = attribute["value"]
    if isinstance(value, bool):
        return 4, value
    if isinstance(value, int | float):
        return 1, value
    if isinstance(value, str):
        return 2, value
    return 3, json.dumps(value, sort_keys=True)


def _sorted(entities: list[Entity], orders: list[Order], where: geo.GeoQuery | None) -> list:
    if not orders and where is not None and where.relation == "near":
        orders = [Order("geo:distance", False)]
    for order in reversed(orders):  # stable sorts, last key first
        entities = sorted(
            entities, key=lambda e: _sort_value(e, order.key, where), reverse=order.descending
        )
    return entities


def _headers(count: int | None = None) -> dict[str, str]:
    return {"Fiware-Total-Count": str(count)} if count is not None else {}


@router.get("/version", responses={200: JSON_OBJECT})
def version() -> JSONResponse:
    """What this context broker is: the Orion release whose NGSI v2 behaviour it follows (under
    ``orion``, where FIWARE clients look), and machimori's own version."""
    return JSONResponse(
        {
            "orion": {
                "version": COMPATIBLE_ORION,
                "compiled_by": "machimori city store (NGSI v2 read API and subscriptions)",
                "release_date": "",
                "doc": "/docs#/ngsi-v2",
            },
            "machimori": {"version": package_version(), "ngsi": "v2"},
        }
    )


@router.get("/statistics", responses={200: JSON_OBJECT})
def statistics(request: Request) -> JSONResponse:
    """How long this process has served, and what its subscriptions' notifier has done:
    notifications sent, retried, failed for good, and dropped because the queue was full."""
    notifier = request.app.state.notifier
    uptime = int(time.monotonic() - notifier.started)
    return JSONResponse(
        {
            "uptime_in_secs": uptime,
            "measuring_interval_in_secs": uptime,
            "notifications": dict(notifier.stats),
        }
    )


@router.get("/v2", responses={200: JSON_OBJECT})
def resources() -> JSONResponse:
    """The API's entry points, as ``GET /v2`` answers on a context broker."""
    return JSONResponse(
        {
            "entities_url": "/v2/entities",
            "types_url": "/v2/types",
            "subscriptions_url": "/v2/subscriptions",
            "registrations_url": "/v2/registrations",
        }
    )


@dataclass(frozen=True)
class Page:
    """How a list is ordered, cut and shown."""

    order_by: str | None
    limit: str | None
    offset: str | None
    options: str | None
    attrs: list[str] | None
    metadata: list[str] | None


def _answer(
    ctx: Context,
    request: Request,
    patterns: list[dict[str, str]],
    where: Expression,
    page: Page,
) -> JSONResponse:
    """The entities any of ``patterns`` names (all if none) that satisfy ``where``, ordered,
    paged and represented as ``page`` says."""
    form, count = _options(page.options)
    first = _int(page.offset, "offset", 0, 0, 10**9)
    size = _int(page.limit, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    near = where.where if where.where is not None and where.where.relation == "near" else None
    orders = _order(page.order_by, near is not None)
    selected = [
        e
        for e in scoped_entities(ctx, request, patterns)
        if (not patterns or any(fits(p, e) for p in patterns)) and where.holds(e)
    ]
    selected = _sorted(selected, orders, where.where)
    shown = [
        _represent(select(e, page.attrs, page.metadata), form, page.attrs)
        for e in selected[first : first + size]
    ]
    if form == "unique":
        shown = _unique(shown)
    return JSONResponse(shown, headers=_headers(len(selected) if count else None))


@router.get("/v2/entities", responses={200: JSON_LIST} | ERRORS)
def list_entities(
    ctx: Ctx,
    request: Request,
    id: Text = None,
    type: Text = None,
    idPattern: Text = None,  # noqa: N803 - NGSI's own names
    typePattern: Text = None,  # noqa: N803
    q: Text = None,
    mq: Text = None,
    georel: Text = None,
    geometry: Text = None,
    coords: Text = None,
    attrs: Text = None,
    metadata: Text = None,
    orderBy: Text = None,  # noqa: N803
    limit: Text = None,
    offset: Text = None,
    options: Text = None,
) -> JSONResponse:
    """Entities, filtered as NGSI v2 says: ``id`` and ``type`` take comma-separated lists,
    ``idPattern``/``typePattern`` regular expressions, ``q``/``mq`` the Simple Query Language,
    ``georel``/``geometry``/``coords`` a geographical query; ``attrs`` and ``metadata`` pick what
    is shown; ``orderBy`` (``!`` for descending), ``limit`` (≤1000) and ``offset`` page;
    ``options`` is ``count`` and one of ``normalized``, ``keyValues``, ``values``, ``unique``."""
    if id is not None and idPattern is not None:
        raise bad("id and idPattern exclude each other")
    if type is not None and typePattern is not None:
        raise bad("type and typePattern exclude each other")
    ids = [{"id": i} for i in _list(id) or []] or [
        check_pattern({"idPattern": idPattern}, "idPattern") if idPattern else {}
    ]
    types = [{"type": t} for t in _list(type) or []] or [
        check_pattern({"typePattern": typePattern}, "typePattern") if typePattern else {}
    ]
    patterns = [i | t for i in ids for t in types]
    where = expression(q, mq, georel, geometry, coords)
    page = Page(orderBy, limit, offset, options, _list(attrs), _list(metadata))
    return _answer(ctx, request, patterns, where, page)


@router.post("/v2/op/query", responses={200: JSON_LIST} | ERRORS)
async def batch_query(
    ctx: Ctx,
    request: Request,
    orderBy: Text = None,  # noqa: N803 - NGSI's own name
    limit: Text = None,
    offset: Text = None,
    options: Text = None,
) -> JSONResponse:
    """Batch query (specification section "Query operation"): the body names ``entities``
    (patterns, any of which may match), ``attrs``, ``expression`` (``q``, ``mq``, ``georel``,
    ``geometry``, ``coords``) and ``metadata``; the URL pages and orders as for a list."""
    raw = await request.body()
    if len(raw) > MAX_QUERY_BYTES:
        raise NgsiError("RequestEntityTooLarge", f"a query is at most {MAX_QUERY_BYTES} bytes")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise bad("the body is not JSON") from None
    if not isinstance(body, dict):
        raise bad("a query is a JSON object")
    unknown = set(body) - {"entities", "attrs", "expression", "metadata"}
    if unknown:
        raise bad(f"unknown field {sorted(unknown)[0]!r}")
    items = body.get("entities", [])
    if not isinstance(items, list):
        raise bad("entities: a list of {id|idPattern, type|typePattern}")
    patterns = [check_pattern(item, f"entities[{n}]") for n, item in enumerate(items)]
    given = body.get("expression", {})
    if not isinstance(given, dict) or not all(isinstance(v, str) for v in given.values()):
        raise bad("expression: an object of strings")
    unknown = set(given) - {"q", "mq", "georel", "geometry", "coords"}
    if unknown:
        raise bad(f"expression: unsupported {sorted(unknown)[0]!r}")
    names = {}
    for key in ("attrs", "metadata"):
        value = body.get(key)
        if value is not None and not (
            isinstance(value, list) and all(isinstance(v, str) and v for v in value)
        ):
            raise bad(f"{key}: a list of names")
        names[key] = value or None
    page = Page(orderBy, limit, offset, options, names["attrs"], names["metadata"])
    return _answer(ctx, request, patterns, expression(**given), page)


@router.post("/v2/op/update", status_code=405, responses={405: ERROR_SCHEMA})
@router.post("/v2/op/notify", status_code=405, responses={405: ERROR_SCHEMA})
def no_batch_writes() -> None:
    """Not served: batch updates and notifications in. Entities here are read-only (their data
    comes from the devices), so these answer 405 with an empty ``Allow``."""
    raise NgsiError("MethodNotAllowed", READ_ONLY, {"Allow": ""})


@router.get("/v2/registrations", responses={200: JSON_LIST})
def registrations() -> JSONResponse:
    """Context providers registered here: none (the store answers for its own entities)."""
    return JSONResponse([], headers=_headers(0))


def _one(ctx: Context, request: Request, entity_id: str, type: str | None) -> Entity:
    found = [
        e
        for e in scoped_entities(ctx, request)
        if e["id"] == entity_id and (type is None or e["type"] == type)
    ]
    if not found:
        raise not_found()
    if len(found) > 1:
        raise NgsiError("TooManyResults", "More than one matching entity. Please refine your query")
    return found[0]


@dataclass(frozen=True)
class OneEntity:
    """What a read of one entity (or its attributes) asks for."""

    type: str | None
    attrs: str | None
    metadata: str | None
    options: str | None


def one_entity(
    type: Text = None, attrs: Text = None, metadata: Text = None, options: Text = None
) -> OneEntity:
    return OneEntity(type, attrs, metadata, options)


OneQuery = Annotated[OneEntity, Depends(one_entity)]


def _shown(ctx: Context, request: Request, entity_id: str, asked: OneEntity) -> Any:
    form, _ = _options(asked.options)
    wanted = _list(asked.attrs)
    entity = select(_one(ctx, request, entity_id, asked.type), wanted, _list(asked.metadata))
    return _represent(entity, form, wanted)


@router.get("/v2/entities/{entity_id}", responses={200: JSON_OBJECT} | ERRORS)
def get_entity(ctx: Ctx, request: Request, entity_id: Ident, asked: OneQuery) -> JSONResponse:
    """One entity by id (``type`` to tell apart entities that share an id)."""
    return JSONResponse(_shown(ctx, request, entity_id, asked))


@router.get("/v2/entities/{entity_id}/attrs", responses={200: JSON_OBJECT} | ERRORS)
def get_attrs(ctx: Ctx, request: Request, entity_id: Ident, asked: OneQuery) -> JSONResponse:
    """An entity's attributes without its id and type."""
    shown = _shown(ctx, request, entity_id, asked)
    if isinstance(shown, dict):
        shown = {k: v for k, v in shown.items() if k not in ("id", "type")}
    return JSONResponse(shown)


def _attribute(entity: Entity, name: str) -> dict[str, Any]:
    if name in ("id", "type") or name not in entity:
        raise not_found("The entity does not have such an attribute")
    return entity[name]


@router.get("/v2/entities/{entity_id}/attrs/{attr_name}", responses={200: JSON_OBJECT} | ERRORS)
def get_attribute(
    ctx: Ctx,
    request: Request,
    entity_id: Ident,
    attr_name: Ident,
    type: Text = None,
    metadata: Text = None,
) -> JSONResponse:
    """One attribute: its type, value and metadata."""
    entity = select(_one(ctx, request, entity_id, type), [attr_name], _list(metadata))
    return JSONResponse(_attribute(entity, attr_name))


@router.get(
    "/v2/entities/{entity_id}/attrs/{attr_name}/value",
    responses={200: {"content": {"application/json": {}, "text/plain": {}}}} | ERRORS,
)
def get_attribute_value(
    ctx: Ctx, request: Request, entity_id: Ident, attr_name: Ident, type: Text = None
) -> Response:
    """An attribute's bare value: JSON for a structured value; a number, string or boolean as
    ``text/plain`` in JSON notation (a string keeps its quotes), as the specification says."""
    value = _attribute(_one(ctx, request, entity_id, type), attr_name)["value"]
    if isinstance(value, dict | list):
        return JSONResponse(value)
    accept = request.headers.get("accept", "*/*")
    if not any(kind in accept for kind in ("text/plain", "*/*", "text/*")):
        raise NgsiError("NotAcceptable", "accepted MIME types: text/plain")
    return Response(json.dumps(value, ensure_ascii=False), media_type="text/plain")


def _types(entities: list[Entity]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for e in entities:
        entry = found.setdefault(e["type"], {"attrs": {}, "count": 0})
        entry["count"] += 1
        for name in attr_names(e):
            kinds = entry["attrs"].setdefault(name, {"types": []})["types"]
            if e[name]["type"] not in kinds:
                kinds.append(e[name]["type"])
    return found


@router.get("/v2/types", responses={200: JSON_LIST} | ERRORS)
def list_types(
    ctx: Ctx, request: Request, limit: Text = None, offset: Text = None, options: Text = None
) -> JSONResponse:
    """Entity types with their attributes' NGSI types and how many entities each has;
    ``options=values`` for the names alone."""
    names = [o for o in (options or "").split(",") if o]
    unknown = [o for o in names if o not in ("count", "values", "noAttrDetail")]
    if unknown:
        raise bad(f"options: unknown {unknown[0]!r} (known: count, values, noAttrDetail)")
    first = _int(offset, "offset", 0, 0, 10**9)
    size = _int(limit, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    types = _types(scoped_entities(ctx, request))
    rows: list[Any] = [
        name if "values" in names else {"type": name, **entry} for name, entry in types.items()
    ]
    headers = _headers(len(rows) if "count" in names else None)
    return JSONResponse(rows[first : first + size], headers=headers)


@router.get("/v2/types/{entity_type}", responses={200: JSON_OBJECT} | ERRORS)
def get_type(ctx: Ctx, request: Request, entity_type: Ident) -> JSONResponse:
    """One entity type: its attributes and how many entities it has."""
    types = _types(scoped_entities(ctx, request))
    if entity_type not in types:
        raise not_found("Entity type not found")
    return JSONResponse(types[entity_type])
