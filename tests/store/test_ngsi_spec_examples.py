"""The NGSI v2 query engine against the kinds of example the specification gives in its sections
"Simple Query Language" and "Geographical Queries" (rooms with temperature and pressure, cars,
dates, a triangle of cities, a line, a point with a distance), on entities made here. Pure unit
tests: what the HTTP tests do through the store, these do for each rule on its own."""

from __future__ import annotations

import pytest

from gateway.api.ngsi import geo, query
from gateway.api.ngsi.entities import attr
from gateway.api.ngsi.errors import NgsiError
from gateway.api.ngsi.expression import expression, fits


def entity(id: str, kind: str, **attrs: tuple[str, object] | tuple[str, object, dict]) -> dict:
    out: dict = {"id": id, "type": kind}
    for name, spec in attrs.items():
        ngsi_type, value, *meta = spec
        out[name] = attr(ngsi_type, value, **(meta[0] if meta else {}))
    return out


ROOMS = [
    entity(
        "Room1",
        "Room",
        temperature=("Number", 23.5, {"accuracy": {"type": "Number", "value": 0.8}}),
        pressure=("Number", 720),
        status=("Text", "running"),
        color=("Text", "black"),
        frozen=("Boolean", False),
        dateExpires=("DateTime", "2017-12-24T10:00:00.000Z"),
        owner=("StructuredValue", {"name": "Ortega, José", "floor": 2}),
    ),
    entity(
        "Room2",
        "Room",
        temperature=("Number", 25, {"accuracy": {"type": "Number", "value": 0.95}}),
        pressure=("Number", 760),
        status=("Text", "stopped"),
        color=("Text", "red"),
        frozen=("Boolean", True),
        dateExpires=("DateTime", "2018-01-10T00:00:00.000Z"),
    ),
    entity("Car1", "Car", brandName=("Text", "Mercedes"), color=("Text", "white")),
    entity("Car2", "Car", brandName=("Text", "Seat"), color=("Text", "red")),
]


def q(text: str) -> list[str]:
    statements = query.parse(text, metadata=False)
    return [e["id"] for e in ROOMS if query.matches(e, statements, metadata=False)]


def mq(text: str) -> list[str]:
    statements = query.parse(text, metadata=True)
    return [e["id"] for e in ROOMS if query.matches(e, statements, metadata=True)]


@pytest.mark.parametrize(
    "text, found",
    [
        ("temperature==25", ["Room2"]),
        ("temperature!=25", ["Room1"]),  # only entities that have a temperature
        ("temperature>24", ["Room2"]),
        ("temperature<24;pressure==700..750;status==running", ["Room1"]),
        ("pressure!=700..750", ["Room2"]),
        ("color==black,white", ["Room1", "Car1"]),
        ("color!=black,white", ["Room2", "Car2"]),
        ("brandName!=Mercedes", ["Car2"]),
        ("frozen==false", ["Room1"]),
        ("frozen==true", ["Room2"]),
        ("brandName", ["Car1", "Car2"]),
        ("!brandName", ["Room1", "Room2"]),
        ("dateExpires<2018-01-01T00:00:00Z", ["Room1"]),
        ("dateExpires<2018-01-01", ["Room1"]),  # no zone: UTC
        ("dateExpires==2017-12-01T00:00:00Z..2017-12-31T00:00:00Z", ["Room1"]),
        ("owner.floor==2", ["Room1"]),
        ("owner.name=='Ortega, José'", ["Room1"]),  # a comma inside quotes is no list
        ("brandName~=^Mer", ["Car1"]),
        ("status=='running'", ["Room1"]),
        ("temperature=='25'", []),  # quoted: the text 25, not the number
    ],
)
def test_simple_query_language(text, found):
    assert q(text) == found


@pytest.mark.parametrize(
    "text, found",
    [
        ("temperature.accuracy<0.9", ["Room1"]),
        ("temperature.accuracy>=0.9", ["Room2"]),
        ("temperature.accuracy", ["Room1", "Room2"]),
        ("pressure.accuracy", []),
    ],
)
def test_metadata_queries(text, found):
    assert mq(text) == found


@pytest.mark.parametrize(
    "text", ["", ";", "a==", "==1", "a b==1", "a>1,2", "a>1..2", "a==1..2..3", "a=='x", "a~=("]
)
def test_malformed_queries_are_bad_requests(text):
    with pytest.raises(NgsiError) as refused:
        query.parse(text, metadata=False)
    assert refused.value.error == "BadRequest"


def place(name: str, kind: str, lat: float, lon: float) -> dict:
    return entity(name, kind, location=("geo:json", {"type": "Point", "coordinates": [lon, lat]}))


CITIES = [
    place("Miami", "City", 25.774, -80.190),  # the triangle's corners
    place("SanJuan", "City", 18.466, -66.118),
    place("Hamilton", "City", 32.321, -64.757),
    place("Inside", "Buoy", 25.5, -70.0),
    place("Outside", "Buoy", 25.0, -80.0),  # just south of the Miami-San Juan side
    place("Madrid", "City", 40.42, -3.70),
]
TRIANGLE = "25.774,-80.190;18.466,-66.118;32.321,-64.757;25.774,-80.190"


def where(georel: str, geometry: str, coords: str) -> list[str]:
    selection = expression(georel=georel, geometry=geometry, coords=coords)
    return [e["id"] for e in CITIES if selection.holds(e)]


def test_geographical_queries():
    inside = ["Miami", "SanJuan", "Hamilton", "Inside"]  # corners on the edge count
    assert where("coveredBy", "polygon", TRIANGLE) == inside
    assert where("disjoint", "polygon", TRIANGLE) == ["Outside", "Madrid"]
    assert where("intersects", "box", "18.0,-81.0;33.0,-64.0") == [*inside, "Outside"]
    assert where("disjoint", "box", "18.0,-81.0;33.0,-64.0") == ["Madrid"]
    assert where("near;maxDistance:1000", "point", "40.4168,-3.7038") == ["Madrid"]
    # from Madrid: Hamilton 5,432 km, Inside 6,256, San Juan 6,375, Miami 7,090, Outside 7,123
    assert where("near;minDistance:7000000", "point", "40.4168,-3.7038") == ["Miami", "Outside"]
    assert where("near;minDistance:6000000;maxDistance:6500000", "point", "40.4168,-3.7038") == [
        "SanJuan",
        "Inside",
    ]
    assert where("equals", "point", "40.42,-3.70") == ["Madrid"]
    assert where("intersects", "line", "25.774,-80.190;18.466,-66.118") == ["Miami", "SanJuan"]
    # Madrid-Miami is 7,100 km on the great circle (haversine, mean Earth radius)
    madrid = geo.parse("near;maxDistance:1", "point", "40.42,-3.70")
    assert madrid is not None
    assert madrid.distance_m((25.77, -80.19)) == pytest.approx(7_100_000, rel=0.01)


def test_entity_patterns():
    car = {"id": "Car1", "type": "Car"}
    assert fits({}, car) and fits({"idPattern": "^Car"}, car) and fits({"typePattern": "ar$"}, car)
    assert not fits({"id": "Car2"}, car) and not fits({"idPattern": "^Car", "type": "Room"}, car)
