"""The NGSI v2 view as a FIWARE platform reads a context broker: entity lists with every filter of
the specification (q, mq, geo, orderBy, paging, options), one entity and its attributes, types,
version, tenants, and NGSI's error bodies. The city: four gauges in four different states."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import (
    BACKENDS,
    Running,
    empty_database,
    seed_four_states,
    start,
    store_config,
)

URN = "urn:ngsi-ld:{}:river-0{}"
NAGAI_BRIDGE = (38.1052, 140.0561)  # river-01, lat/lon


@pytest.fixture(scope="module", params=BACKENDS)
def city(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    tmp_path: Path = tmp_path_factory.mktemp("ngsi")
    run = start(store_config(tmp_path, empty_database(request, tmp_path)))
    seed_four_states(run.store)
    yield run
    run.stop()


def call(
    run: Running, path: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(run.url + path, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                (response.read()),
            )
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def ids(run: Running, path: str, **headers: str) -> list[str]:
    status, _, body = call(run, path, headers)
    assert status == 200, body
    return [e["id"] for e in json.loads(body)]


def flood(*sites: int) -> list[str]:
    return [URN.format("FloodMonitoring", n) for n in sites]


def test_entities_carry_the_smart_data_models_attributes(city):
    status, _, body = call(city, "ngsi/v2/entities/" + URN.format("FloodMonitoring", 1))
    entity = json.loads(body)
    metres = {"unitCode": {"type": "Text", "value": "MTR"}}
    assert entity["currentLevel"] == {"type": "Number", "value": 1.0, "metadata": metres}
    assert entity["referenceLevel"]["value"] == 5.2  # sensor face above the datum
    assert entity["measuredDistance"]["value"] == 4.2  # as the gauge measured it
    assert entity["floodLevelStatus"]["value"] == "Normal"
    assert entity["location"]["value"] == {"type": "Point", "coordinates": [140.0561, 38.1052]}
    lora = json.loads(call(city, "ngsi/v2/entities/" + URN.format("FloodMonitoring", 4))[2])
    assert lora["measuredDistance"]["value"] == pytest.approx(3.6 - 2.5)  # from level and height
    water = json.loads(call(city, "ngsi/v2/entities/" + URN.format("WaterObserved", 1))[2])
    assert water["height"] == {"type": "Number", "value": 1.0, "metadata": metres}
    assert water["refDevice"] == {
        "type": "Relationship",
        "value": URN.format("Device", 1),
        "metadata": {},
    }
    device = json.loads(call(city, "ngsi/v2/entities/" + URN.format("Device", 2))[2])
    assert device["value"] == {"type": "Text", "value": "level%3D1.9", "metadata": {}}
    # 欠測: no height, no current level, no value at all (not null), and the status says so
    missing = json.loads(call(city, "ngsi/v2/entities/" + URN.format("WaterObserved", 3))[2])
    assert "height" not in missing and missing["dateObserved"]["value"]
    missing = json.loads(call(city, "ngsi/v2/entities/" + URN.format("FloodMonitoring", 3))[2])
    assert "currentLevel" not in missing and "measuredDistance" not in missing
    assert missing["floodLevelStatus"]["value"] == "Missing"
    gauge = json.loads(call(city, "ngsi/v2/entities/" + URN.format("Device", 3))[2])
    assert "value" not in gauge and gauge["deviceState"]["value"] == "missing"


@pytest.mark.parametrize(
    "q, sites",
    [
        ("floodLevelStatus==Danger", [4]),  # the dashboard's alarm query: Danger only
        ("floodLevelStatus==Danger,Caution", [2, 4]),
        ("floodLevelStatus!=Normal", [2, 3, 4]),
        ("floodLevelStatus!=Normal,Missing", [2, 4]),
        ("currentLevel>1.9", [4]),
        ("currentLevel>=1.9", [2, 4]),
        ("currentLevel<1.9", [1]),
        ("currentLevel<=1.9", [1, 2]),
        ("currentLevel==1.5..2.0", [2]),
        ("currentLevel!=1.5..2.0", [1, 4]),  # outside the range; 欠測 has no level at all
        ("currentLevel==1.9", [2]),
        ("currentLevel", [1, 2, 4]),
        ("!currentLevel", [3]),
        ("currentLevel>1;floodLevelStatus!=Danger", [2]),
        ("stationID=='river-02'", [2]),
        ("stationID~=river-0[13]", [1, 3]),
        ("name==長井橋", [1]),
        ("floodLevelStatus==Caution..Danger", [2, 4]),  # words compare as words
        ("floodLevelStatus==D..M", [4]),
        ("dangerLevel==2.8;alertLevel<2", [2]),
        ("location.type==Point;currentLevel>2", [4]),  # into a structured value
        ("observationDateTime>2000-01-01T00:00:00Z", [1, 2, 3, 4]),
        ("observationDateTime<2000-01-01T00:00:00Z", []),
        ("currentLevel==true", []),
    ],
)
def test_q_simple_query_language(city, q, sites):
    assert ids(city, f"ngsi/v2/entities?type=FloodMonitoring&q={urlq(q)}") == flood(*sites)


def urlq(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


@pytest.mark.parametrize(
    "mq, sites",
    [
        ("currentLevel.unitCode==MTR", [1, 2, 4]),
        ("currentLevel.unitCode!=MTR", []),
        ("measuredDistance.unitCode", [1, 2, 4]),
        ("!currentLevel.unitCode", [3]),
    ],
)
def test_mq_queries_metadata(city, mq, sites):
    assert ids(city, f"ngsi/v2/entities?type=FloodMonitoring&mq={urlq(mq)}") == flood(*sites)


def geo(georel: str, geometry: str, coords: str) -> str:
    return (
        f"ngsi/v2/entities?type=FloodMonitoring&georel={urlq(georel)}"
        f"&geometry={geometry}&coords={urlq(coords)}"
    )


def test_geographical_queries(city):
    lat, lon = NAGAI_BRIDGE
    # river-04 is 1.6 km from Nagai Bridge, river-02 2.1 km, river-03 4.2 km
    assert ids(city, geo("near;maxDistance:1000", "point", f"{lat},{lon}")) == flood(1)
    assert ids(city, geo("near;maxDistance:2500", "point", f"{lat},{lon}")) == flood(1, 4, 2)
    assert ids(city, geo("near;minDistance:2000", "point", f"{lat},{lon}")) == flood(2, 3)
    assert ids(city, geo("near;minDistance:100;maxDistance:2000", "point", f"{lat},{lon}")) == (
        flood(4)
    )
    box = "38.09,140.03;38.11,140.06"  # the town centre: river-01, -02 and -04
    assert ids(city, geo("coveredBy", "box", box)) == flood(1, 2, 4)
    assert ids(city, geo("disjoint", "box", box)) == flood(3)
    # corners on river-01 and river-03; river-02 lies inside, river-04 east of it
    triangle = "38.1052,140.0561;38.1251,140.0148;38.09,140.0;38.1052,140.0561"
    assert ids(city, geo("coveredBy", "polygon", triangle)) == flood(1, 2, 3)
    assert ids(city, geo("intersects", "polygon", triangle)) == flood(1, 2, 3)
    line = "38.1004,140.0334;38.1251,140.0148"  # from river-02 to river-03
    assert ids(city, geo("intersects", "line", line)) == flood(2, 3)
    assert ids(city, geo("equals", "point", f"{lat},{lon}")) == flood(1)
    assert ids(city, geo("intersects", "point", "38.0,140.0")) == []


def test_order_by_and_paging(city):
    base = "ngsi/v2/entities?type=FloodMonitoring&orderBy="
    assert ids(city, base + "!currentLevel") == flood(4, 2, 1, 3)  # absent sorts lowest
    assert ids(city, base + "currentLevel") == flood(3, 1, 2, 4)
    assert ids(city, base + "alertLevel,!stationID") == flood(4, 2, 3, 1)
    assert ids(city, base + "!id&limit=2&offset=1") == flood(3, 2)
    lat, lon = NAGAI_BRIDGE
    near = geo("near;maxDistance:10000", "point", f"{lat},{lon}") + "&orderBy=!geo:distance"
    assert ids(city, near) == flood(3, 2, 4, 1)
    status, headers, body = call(city, "ngsi/v2/entities?options=count&limit=5&offset=10")
    assert status == 200 and headers["fiware-total-count"] == "12" and len(json.loads(body)) == 2
    assert "fiware-total-count" not in call(city, "ngsi/v2/entities")[1]
    assert len(json.loads(call(city, "ngsi/v2/entities")[2])) == 12
    assert len(json.loads(call(city, "ngsi/v2/entities?limit=3")[2])) == 3


def test_representations(city):
    only = "ngsi/v2/entities?type=FloodMonitoring&q=currentLevel&attrs=stationID,floodLevelStatus"
    assert json.loads(call(city, only + "&options=values")[2]) == [
        ["river-01", "Normal"],
        ["river-02", "Caution"],
        ["river-04", "Danger"],
    ]
    levels = "ngsi/v2/entities?type=FloodMonitoring&attrs=alertLevel,dangerLevel&options=unique"
    assert json.loads(call(city, levels)[2]) == [[2.0, 3.0], [1.8, 2.8], [1.5, 2.4]]
    kv = json.loads(call(city, only + "&options=keyValues")[2])
    assert kv[0] == {
        "id": URN.format("FloodMonitoring", 1),
        "type": "FloodMonitoring",
        "stationID": "river-01",
        "floodLevelStatus": "Normal",
    }
    normalized = json.loads(call(city, only + "&options=normalized,count")[2])
    assert normalized[0]["stationID"] == {"type": "Text", "value": "river-01", "metadata": {}}
    no_md = json.loads(call(city, only.replace("stationID,", "currentLevel,") + "&metadata=x")[2])
    assert no_md[0]["currentLevel"]["metadata"] == {}


def test_one_entity_its_attributes_and_values(city):
    one = "ngsi/v2/entities/" + URN.format("FloodMonitoring", 2)
    assert json.loads(call(city, one + "?options=keyValues&attrs=currentLevel")[2]) == {
        "id": URN.format("FloodMonitoring", 2),
        "type": "FloodMonitoring",
        "currentLevel": 1.9,
    }
    attrs = json.loads(call(city, one + "/attrs")[2])
    assert "id" not in attrs and attrs["alertLevel"]["value"] == 1.8
    assert json.loads(call(city, one + "/attrs?options=keyValues&attrs=dangerLevel")[2]) == {
        "dangerLevel": 2.8
    }
    assert json.loads(call(city, one + "/attrs/floodLevelStatus")[2]) == {
        "type": "Text",
        "value": "Caution",
        "metadata": {},
    }
    status, headers, body = call(city, one + "/attrs/floodLevelStatus/value")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    assert body.decode() == '"Caution"'
    assert call(city, one + "/attrs/currentLevel/value")[2] == b"1.9"
    location = call(city, one + "/attrs/location/value")
    assert location[1]["content-type"] == "application/json"
    assert json.loads(location[2]) == {"type": "Point", "coordinates": [140.0334, 38.1004]}
    wrong_type = call(city, one + "?type=WaterObserved")
    assert wrong_type[0] == 404 and json.loads(wrong_type[2])["error"] == "NotFound"
    no_attr = call(city, one + "/attrs/height")
    assert no_attr[0] == 404 and json.loads(no_attr[2])["error"] == "NotFound"


def post_query(run: Running, body: object, params: str = "") -> tuple[int, object]:
    request = urllib.request.Request(
        run.url + "ngsi/v2/op/query" + params,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_batch_query(city):
    """POST /v2/op/query: any of the entity patterns, with an expression, like a list."""
    status, found = post_query(
        city,
        {
            "entities": [
                {"idPattern": "river-0[12]$", "type": "FloodMonitoring"},
                {"id": URN.format("FloodMonitoring", 4)},
            ],
            "attrs": ["floodLevelStatus"],
            "expression": {"q": "currentLevel>1.5"},
        },
        "?options=keyValues&orderBy=!floodLevelStatus",
    )
    assert status == 200
    assert found == [
        {
            "id": URN.format("FloodMonitoring", 4),
            "type": "FloodMonitoring",
            "floodLevelStatus": "Danger",
        },
        {
            "id": URN.format("FloodMonitoring", 2),
            "type": "FloodMonitoring",
            "floodLevelStatus": "Caution",
        },
    ]
    status, near = post_query(
        city,
        {
            "expression": {
                "georel": "near;maxDistance:1000",
                "geometry": "point",
                "coords": "38.1052,140.0561",
            }
        },
        "?options=values&limit=2",
    )
    assert status == 200 and len(near) == 2  # river-01's three entities, two per page
    for body, words in (
        ({"entities": [{"id": "a", "idPattern": "b"}]}, "exclude"),
        ({"entities": [{"idPattern": "("}]}, "regular expression"),
        ({"expression": {"q": "a=="}}, "q"),
        ({"attrs": "name"}, "attrs"),
        ({"filter": {}}, "filter"),
        ([], "object"),
    ):
        status, answer = post_query(city, body)
        assert status == 400 and answer["error"] == "BadRequest", body
        assert words in answer["description"], (body, answer)


def test_types_version_and_resources(city):
    types = json.loads(call(city, "ngsi/v2/types")[2])
    assert [t["type"] for t in types] == ["WaterObserved", "FloodMonitoring", "Device"]
    assert all(t["count"] == 4 for t in types)
    assert types[1]["attrs"]["currentLevel"] == {"types": ["Number"]}
    assert types[0]["attrs"]["location"] == {"types": ["geo:json"]}
    status, headers, body = call(city, "ngsi/v2/types?options=values,count&limit=2")
    assert json.loads(body) == ["WaterObserved", "FloodMonitoring"]
    assert headers["fiware-total-count"] == "3"
    device = json.loads(call(city, "ngsi/v2/types/Device")[2])
    assert device["count"] == 4 and device["attrs"]["value"] == {"types": ["Text"]}
    assert call(city, "ngsi/v2/types/Vehicle")[0] == 404
    version = json.loads(call(city, "ngsi/version")[2])
    assert version["orion"]["version"] and version["machimori"]["ngsi"] == "v2"
    assert json.loads(call(city, "ngsi/v2")[2])["entities_url"] == "/v2/entities"
    assert json.loads(call(city, "ngsi/v2/registrations")[2]) == []  # no context providers
    # a trailing slash names the same resource (FIWARE's Python client adds one)
    assert len(json.loads(call(city, "ngsi/v2/entities/?limit=100")[2])) == 12
    assert json.loads(call(city, "ngsi/v2/types/?options=values")[2]) == [
        "WaterObserved",
        "FloodMonitoring",
        "Device",
    ]


def test_tenants_and_service_paths(city):
    everything = "ngsi/v2/entities?limit=100"
    assert len(ids(city, everything)) == 12
    assert len(ids(city, everything, **{"Fiware-ServicePath": "/"})) == 12
    assert len(ids(city, everything, **{"Fiware-ServicePath": "/#"})) == 12
    assert len(ids(city, everything, **{"Fiware-ServicePath": "/other,/"})) == 12
    # a tenant or a path the city does not publish in: empty, not an error
    assert ids(city, everything, **{"Fiware-Service": "othercity"}) == []
    assert ids(city, everything, **{"Fiware-ServicePath": "/river"}) == []
    assert ids(city, everything, **{"Fiware-ServicePath": "/river/#"}) == []
    assert json.loads(call(city, "ngsi/v2/types", {"Fiware-Service": "othercity"})[2]) == []
    one = "ngsi/v2/entities/" + URN.format("Device", 1)
    assert call(city, one, {"Fiware-Service": "othercity"})[0] == 404
    bad = call(city, everything, {"Fiware-ServicePath": "no-slash"})
    assert bad[0] == 400 and json.loads(bad[2])["error"] == "BadRequest"
    bad = call(city, everything, {"Fiware-Service": "city-with-dash"})
    assert bad[0] == 400


def test_a_tenant_of_its_own(tmp_path):
    """A city that publishes as tenant ``nagai`` under ``/river`` answers there and only there."""
    config = store_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
    config.ngsi.service, config.ngsi.service_path = "nagai", "/river"
    run = start(config)
    try:
        seed_four_states(run.store)
        path = "ngsi/v2/entities?type=Device"
        assert ids(run, path) == []  # the default tenant holds nothing
        assert len(ids(run, path, **{"Fiware-Service": "nagai"})) == 4
        for scope in ("/river", "/#", "/river/#", "/a,/river"):
            got = ids(run, path, **{"Fiware-Service": "nagai", "Fiware-ServicePath": scope})
            assert len(got) == 4, scope
        for scope in ("/", "/riv", "/river/gauges", "/river/gauges/#"):
            got = ids(run, path, **{"Fiware-Service": "nagai", "Fiware-ServicePath": scope})
            assert got == [], scope
    finally:
        run.stop()


@pytest.mark.parametrize(
    "path, status, error",
    [
        ("ngsi/v2/entities?limit=0", 400, "BadRequest"),
        ("ngsi/v2/entities?limit=1001", 400, "BadRequest"),
        ("ngsi/v2/entities?limit=abc", 400, "BadRequest"),
        ("ngsi/v2/entities?offset=-1", 400, "BadRequest"),
        ("ngsi/v2/entities?idPattern=(", 400, "BadRequest"),
        ("ngsi/v2/entities?id=a&idPattern=a", 400, "BadRequest"),
        ("ngsi/v2/entities?options=keyValues,values", 400, "BadRequest"),
        ("ngsi/v2/entities?options=sysAttrs", 400, "BadRequest"),
        ("ngsi/v2/entities?q=", 400, "BadRequest"),
        ("ngsi/v2/entities?q=a==", 400, "BadRequest"),
        ("ngsi/v2/entities?q=a>1,2", 400, "BadRequest"),
        ("ngsi/v2/entities?q=a==1..2..3", 400, "BadRequest"),
        ("ngsi/v2/entities?q=a=='x", 400, "BadRequest"),
        ("ngsi/v2/entities?q=a~=(", 400, "BadRequest"),
        ("ngsi/v2/entities?mq=currentLevel==1", 400, "BadRequest"),
        ("ngsi/v2/entities?georel=near&geometry=point&coords=38,140", 400, "BadRequest"),
        ("ngsi/v2/entities?georel=near;maxDistance:1000&geometry=box&coords=1,2;3,4", 400, ""),
        ("ngsi/v2/entities?georel=coveredBy&geometry=polygon&coords=1,2;3,4;5,6;7,8", 400, ""),
        ("ngsi/v2/entities?georel=coveredBy&geometry=circle&coords=1,2", 400, "BadRequest"),
        ("ngsi/v2/entities?georel=within&geometry=box&coords=1,2;3,4", 400, "BadRequest"),
        ("ngsi/v2/entities?georel=coveredBy&geometry=box&coords=91,2;3,4", 400, "BadRequest"),
        ("ngsi/v2/entities?georel=coveredBy&geometry=box", 400, "BadRequest"),
        ("ngsi/v2/entities?orderBy=geo:distance", 400, "BadRequest"),
        ("ngsi/v2/entities?type=" + "x" * 3000, 400, "BadRequest"),
        ("ngsi/v2/entities/urn:ngsi-ld:Device:river-99", 404, "NotFound"),
        ("ngsi/v2/entities/urn:ngsi-ld:Device:river-01?type=WaterObserved", 404, "NotFound"),
        ("ngsi/v2/no-such-thing", 404, "NotFound"),
        ("ngsi/v2/types?options=bogus", 400, "BadRequest"),
        ("ngsi/v2/entities/%0A", 400, "BadRequest"),
        ("ngsi/v2/entities%0A?type=Device", 400, "BadRequest"),
    ],
)
def test_errors_come_in_ngsi_form(city, path, status, error):
    got, headers, body = call(city, path)
    assert got == status, body
    answer = json.loads(body)
    assert set(answer) == {"error", "description"} and answer["description"]
    assert answer["error"] == (error or "BadRequest")
    assert headers["fiware-correlator"]


def test_a_wrong_method_and_the_correlator(city):
    status, _, body = call(city, "ngsi/v2/entities", method="DELETE")
    assert status == 405 and json.loads(body)["error"] == "MethodNotAllowed"
    _, headers, _ = call(city, "ngsi/v2/types", {"Fiware-Correlator": "abc-123"})
    assert headers["fiware-correlator"] == "abc-123"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "ngsi/v2/entities", "GET"),
        ("POST", "ngsi/v2/entities/urn:ngsi-ld:FloodMonitoring:river-01/attrs", "GET"),
        ("PATCH", "ngsi/v2/entities/urn:ngsi-ld:FloodMonitoring:river-01/attrs", "GET"),
        ("PUT", "ngsi/v2/entities/urn:ngsi-ld:FloodMonitoring:river-01/attrs", "GET"),
        ("PUT", "ngsi/v2/entities/urn:ngsi-ld:FloodMonitoring:river-01/attrs/currentLevel", "GET"),
        (
            "PUT",
            "ngsi/v2/entities/urn:ngsi-ld:FloodMonitoring:river-01/attrs/currentLevel/value",
            "GET",
        ),
        ("DELETE", "ngsi/v2/entities/urn:ngsi-ld:FloodMonitoring:river-01", "GET"),
        ("POST", "ngsi/v2/op/update", ""),
        ("POST", "ngsi/v2/op/notify", ""),
        ("POST", "ngsi/v2/registrations", "GET"),
    ],
)
def test_writes_are_refused_saying_why(city, method, path, allow):
    """The entities are what the devices measure: a write is a 405 that names what is served
    and why, in NGSI's error form, and changes nothing."""
    before = call(city, "ngsi/v2/entities/urn:ngsi-ld:FloodMonitoring:river-01")[2]
    request = urllib.request.Request(
        city.url + path,
        data=json.dumps({"currentLevel": {"value": 9.9}}).encode(),
        headers={"Content-Type": "application/json"},
        method=method,
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=15)
    answer = json.loads(refused.value.read())
    assert refused.value.code == 405 and answer["error"] == "MethodNotAllowed"
    assert "read-only" in answer["description"] and "devices" in answer["description"]
    assert refused.value.headers["Allow"] == allow
    assert call(city, "ngsi/v2/entities/urn:ngsi-ld:FloodMonitoring:river-01")[2] == before
