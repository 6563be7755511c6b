"""NGSI v2's geographical queries (specification section "Geographical Queries"): ``georel``,
``geometry`` and ``coords``, always the three together.

``coords`` are ``lat,lon`` pairs separated by ``;`` (WGS84, latitude first, unlike GeoJSON).
``geometry`` is ``point``, ``line``, ``polygon`` (closed: the last pair repeats the first) or
``box`` (two opposite corners). ``georel`` is ``near;maxDistance:M`` and/or ``;minDistance:M``
(metres, with a point), ``coveredBy``, ``intersects``, ``equals`` or ``disjoint``. The city's
entities are points (their ``location``), so coveredBy and intersects both mean "inside or on
the edge"; a near query without orderBy answers nearest first, as Orion does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from gateway.api.ngsi.entities import Entity
from gateway.api.ngsi.errors import bad

EARTH_RADIUS_M = 6_371_008.8  # mean radius (IUGG), as the haversine distance needs
RELATIONS = ("near", "coveredBy", "intersects", "equals", "disjoint")
SHAPES = ("point", "line", "polygon", "box")
ON_EDGE_DEG = 1e-9
Point = tuple[float, float]  # (lat, lon)


@dataclass(frozen=True)
class GeoQuery:
    relation: str
    shape: str
    points: tuple[Point, ...]
    max_distance_m: float | None = None
    min_distance_m: float | None = None

    def distance_m(self, point: Point) -> float:
        return haversine_m(point, self.points[0])

    def holds(self, point: Point) -> bool:
        if self.relation == "near":
            distance = self.distance_m(point)
            return (self.max_distance_m is None or distance <= self.max_distance_m) and (
                self.min_distance_m is None or distance >= self.min_distance_m
            )
        if self.relation == "equals":
            return self.shape == "point" and _same(point, self.points[0])
        touches = self._touches(point)
        return not touches if self.relation == "disjoint" else touches

    def _touches(self, point: Point) -> bool:
        if self.shape == "point":
            return _same(point, self.points[0])
        if self.shape == "line":
            return any(
                _on_segment(point, a, b) for a, b in zip(self.points, self.points[1:], strict=False)
            )
        ring = _box_ring(*self.points) if self.shape == "box" else self.points
        return _in_ring(point, ring)


def parse(georel: str | None, geometry: str | None, coords: str | None) -> GeoQuery | None:
    given = [x is not None for x in (georel, geometry, coords)]
    if not any(given):
        return None
    if not all(given):
        raise bad("georel, geometry and coords go together")
    assert georel is not None and geometry is not None and coords is not None
    if geometry not in SHAPES:
        raise bad(f"geometry: one of {', '.join(SHAPES)}, not {geometry!r}")
    points = tuple(_point(pair) for pair in coords.split(";"))
    need = {"point": (1, 1), "line": (2, 1000), "polygon": (4, 1000), "box": (2, 2)}[geometry]
    if not need[0] <= len(points) <= need[1]:
        raise bad(f"coords: a {geometry} needs {need[0]}..{need[1]} lat,lon pairs")
    if geometry == "polygon" and points[0] != points[-1]:
        raise bad("coords: a polygon is closed (its last pair repeats the first)")
    relation, *modifiers = georel.split(";")
    if relation not in RELATIONS:
        raise bad(f"georel: one of {', '.join(RELATIONS)}, not {relation!r}")
    limits: dict[str, float] = {}
    for modifier in modifiers:
        name, _, value = modifier.partition(":")
        if relation != "near" or name not in ("maxDistance", "minDistance"):
            raise bad(f"georel: unknown modifier {modifier!r}")
        try:
            limits[name] = float(value)
        except ValueError:
            raise bad(f"georel: {name} must be metres, not {value!r}") from None
        if not 0 <= limits[name] < 1e8:
            raise bad(f"georel: {name} out of range")
    if relation == "near" and (geometry != "point" or not limits):
        raise bad("georel near needs geometry=point and maxDistance or minDistance")
    if relation == "equals" and geometry != "point":
        raise bad("georel equals: the city's entities are points; use geometry=point")
    return GeoQuery(
        relation, geometry, points, limits.get("maxDistance"), limits.get("minDistance")
    )


def _point(pair: str) -> Point:
    try:
        lat_text, lon_text = pair.split(",")
        lat, lon = float(lat_text), float(lon_text)
    except ValueError:
        raise bad(f"coords: {pair!r} is not lat,lon") from None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise bad(f"coords: {pair!r} is off the globe")
    return lat, lon


def location(entity: Entity) -> Point | None:
    """An entity's position from its geo:json Point ``location`` (GeoJSON is lon, lat)."""
    attribute = entity.get("location")
    if not isinstance(attribute, dict) or attribute.get("type") != "geo:json":
        return None
    value = attribute.get("value")
    if not isinstance(value, dict) or value.get("type") != "Point":
        return None
    lon, lat = value["coordinates"][:2]
    return float(lat), float(lon)


def haversine_m(a: Point, b: Point) -> float:
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = (
        math.sin((lat2 - lat1) / 2) ** 2
        + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def _same(a: Point, b: Point) -> bool:
    return abs(a[0] - b[0]) <= ON_EDGE_DEG and abs(a[1] - b[1]) <= ON_EDGE_DEG


def _box_ring(a: Point, b: Point) -> tuple[Point, ...]:
    (s, n), (w, e) = sorted((a[0], b[0])), sorted((a[1], b[1]))
    return ((s, w), (s, e), (n, e), (n, w), (s, w))


def _on_segment(p: Point, a: Point, b: Point) -> bool:
    cross = (b[0] - a[0]) * (p[1] - a[1]) - (b[1] - a[1]) * (p[0] - a[0])
    if abs(cross) > ON_EDGE_DEG * max(1.0, abs(b[0] - a[0]) + abs(b[1] - a[1])):
        return False
    return (
        min(a[0], b[0]) - ON_EDGE_DEG <= p[0] <= max(a[0], b[0]) + ON_EDGE_DEG
        and min(a[1], b[1]) - ON_EDGE_DEG <= p[1] <= max(a[1], b[1]) + ON_EDGE_DEG
    )


def _in_ring(p: Point, ring: tuple[Point, ...]) -> bool:
    """Inside or on the edge of a closed ring, by the even-odd rule on the lat/lon plane: edges
    are straight in degrees, which at a city's few kilometres differs from great circles by
    centimetres."""
    edges = list(zip(ring, ring[1:], strict=False))
    if any(_on_segment(p, a, b) for a, b in edges):
        return True
    inside = False
    for (lat1, lon1), (lat2, lon2) in edges:
        if (lon1 > p[1]) != (lon2 > p[1]):
            crossing = lat1 + (p[1] - lon1) * (lat2 - lat1) / (lon2 - lon1)
            if p[0] < crossing:
                inside = not inside
    return inside
