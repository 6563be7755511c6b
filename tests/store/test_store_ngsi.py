"""The NGSI v2 view: river gauges as Smart Data Models entities a FIWARE platform can read."""

from __future__ import annotations

import json

import pytest
from store_helpers import get, get_json


def test_each_site_is_three_entities_with_typed_attributes(api):
    entities = get_json(api.url + "ngsi/v2/entities?limit=100")
    assert [e["id"] for e in entities[:3]] == [
        "urn:ngsi-ld:WaterObserved:river-01",
        "urn:ngsi-ld:FloodMonitoring:river-01",
        "urn:ngsi-ld:Device:river-01",
    ]
    assert len(entities) == 12  # four sites
    water, flood, device = entities[:3]
    assert water["type"] == "WaterObserved"
    assert water["height"] == {
        "type": "Number",
        "value": 1.0,
        "metadata": {"unitCode": {"type": "Text", "value": "MTR", "metadata": {}}},
    }
    assert water["dateObserved"]["type"] == "DateTime" and water["dateObserved"]["value"]
    assert water["refDevice"] == {"type": "Relationship", "value": device["id"], "metadata": {}}
    assert water["location"]["type"] == "geo:json"
    assert water["location"]["value"] == {"type": "Point", "coordinates": [140.0561, 38.1052]}
    assert flood["alertLevel"]["value"] == 2.0 and flood["dangerLevel"]["value"] == 3.0
    assert flood["floodLevelStatus"]["value"] == "Normal"
    assert device["deviceState"]["value"] == "ok"
    missing = get_json(api.url + "ngsi/v2/entities/urn:ngsi-ld:FloodMonitoring:river-02")
    assert missing["currentLevel"]["value"] is None
    assert missing["floodLevelStatus"]["value"] == "Missing"  # 欠測, never an old number


def test_filters_key_values_and_count(api):
    status, headers, body = get(
        api.url + "ngsi/v2/entities?type=FloodMonitoring&options=keyValues,count&limit=2"
    )
    rows = json.loads(body)
    assert status == 200 and headers["fiware-total-count"] == "4"
    assert [r["id"] for r in rows] == [
        "urn:ngsi-ld:FloodMonitoring:river-01",
        "urn:ngsi-ld:FloodMonitoring:river-02",
    ]
    assert rows[0]["currentLevel"] == 1.0 and rows[0]["stationID"] == "river-01"
    page2 = get_json(api.url + "ngsi/v2/entities?type=FloodMonitoring&offset=2&limit=2")
    assert [r["id"] for r in page2] == [
        "urn:ngsi-ld:FloodMonitoring:river-03",
        "urn:ngsi-ld:FloodMonitoring:river-04",
    ]
    page3 = get_json(api.url + "ngsi/v2/entities?type=FloodMonitoring&offset=4&limit=2")
    assert page3 == []
    picked = get_json(api.url + "ngsi/v2/entities?idPattern=river-0[23]$&attrs=name&type=Device")
    assert picked == [
        {
            "id": "urn:ngsi-ld:Device:river-02",
            "type": "Device",
            "name": {"type": "Text", "value": "あやめ公園前", "metadata": {}},
        },
        {
            "id": "urn:ngsi-ld:Device:river-03",
            "type": "Device",
            "name": {"type": "Text", "value": "上流観測所", "metadata": {}},
        },
    ]
    one = get_json(api.url + "ngsi/v2/entities?id=urn:ngsi-ld:WaterObserved:river-03")
    assert len(one) == 1


@pytest.mark.parametrize(
    "path, status, error",
    [
        ("ngsi/v2/entities?limit=0", 400, "BadRequest"),
        ("ngsi/v2/entities?limit=abc", 400, "BadRequest"),
        ("ngsi/v2/entities?offset=-1", 400, "BadRequest"),
        ("ngsi/v2/entities?idPattern=(", 400, "BadRequest"),
        ("ngsi/v2/entities?options=values", 400, "BadRequest"),
        ("ngsi/v2/entities/urn:ngsi-ld:Device:river-99", 404, "NotFound"),
        ("ngsi/v2/entities/urn:ngsi-ld:Device:river-01?type=WaterObserved", 404, "NotFound"),
    ],
)
def test_errors_come_in_ngsi_form(api, path, status, error):
    got, _, body = get(api.url + path)
    assert got == status
    answer = json.loads(body)
    assert answer["error"] == error and answer["description"]
