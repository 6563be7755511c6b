"""The buses over HTTP: the GTFS-Realtime feed for anyone (where the buses are is public), and
ridership for staff (CSV per stop and hour, the origin-destination matrix, a summary)."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import Response

from gateway.api.context import Context, Ctx, Who
from gateway.api.params import DAY_MS, EndQuery, StartQuery, time_range
from gateway.api.routes import BAD, STAFF
from gateway.services.ridership import Ridership, ridership
from gateway.services.transit import Transit

router = APIRouter(tags=["buses"])
PROTOBUF = "application/x-protobuf"
RouteQuery = Annotated[
    str | None, Query(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", description="only this GTFS route_id")
]
NO_TRANSIT = {404: {"description": "this city store has no transit section (no buses)"}}


def transit(ctx: Context) -> Transit:
    if ctx.transit is None:
        raise HTTPException(404, detail="no buses here: the store config has no transit section")
    return ctx.transit


REALTIME = {200: {"content": {PROTOBUF: {}}, "description": "GTFS-Realtime FeedMessage"}}


def _realtime(ctx: Context, message: str) -> Response:
    t = transit(ctx)
    build = getattr(t.realtime, message)  # vehicle_positions or trip_updates
    return Response(
        build(t.positions(ctx.store), ctx.now_ms()).SerializeToString(), media_type=PROTOBUF
    )


@router.get(
    "/gtfs-rt/vehicle-positions.pb", response_class=Response, responses=REALTIME | NO_TRANSIT
)
def vehicle_positions(ctx: Ctx) -> Response:
    """GTFS-Realtime VehiclePositions of the city's buses (protobuf, FULL_DATASET)."""
    return _realtime(ctx, "vehicle_positions")


@router.get("/gtfs-rt/trip-updates.pb", response_class=Response, responses=REALTIME | NO_TRANSIT)
def trip_updates(ctx: Ctx) -> Response:
    """GTFS-Realtime TripUpdates: each bus's measured delay, from its next stop on."""
    return _realtime(ctx, "trip_updates")


def load_ridership(
    ctx: Context, start: str | None, end: str | None, route: str | None
) -> Ridership:
    t = transit(ctx)
    start_ms, end_ms = time_range(start, end, ctx.now_ms(), 7 * DAY_MS)
    tz = ZoneInfo(ctx.config.http.timezone)
    return ridership(ctx.store, t.cards.all(), start_ms, end_ms, tz, route)


def _staff(who: Who) -> None:
    if who.staff is None:
        raise HTTPException(401, detail="log in as staff at /staff/login")


CSV = {200: {"content": {"text/csv": {}}, "description": "CSV, UTF-8"}} | STAFF | BAD | NO_TRANSIT


@router.get("/api/v1/ridership/stops.csv", response_class=Response, responses=CSV)
def ridership_stops(
    ctx: Ctx, who: Who, start: StartQuery = None, end: EndQuery = None, route: RouteQuery = None
) -> Response:
    """Boardings and alightings per route, stop, local hour and rider category (default: the
    last 7 days)."""
    _staff(who)
    body = load_ridership(ctx, start, end, route).stops_csv()
    return Response(body, media_type="text/csv; charset=utf-8")


@router.get("/api/v1/ridership/od.csv", response_class=Response, responses=CSV)
def ridership_od(
    ctx: Ctx, who: Who, start: StartQuery = None, end: EndQuery = None, route: RouteQuery = None
) -> Response:
    """Origin-destination matrix of card journeys with both taps, per route and category."""
    _staff(who)
    body = load_ridership(ctx, start, end, route).od_csv()
    return Response(body, media_type="text/csv; charset=utf-8")
