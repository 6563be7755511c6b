"""The NGSI entities against Smart Data Models' own ``schema.json`` files (vendored, see
fixtures/sdm/README.md), validated whole with ``jsonschema`` in keyValues form: required
attributes, types, enums, ranges and formats as each model states them, nothing null, and the
only attributes outside a model are the ones docs/store.md names."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sdm_schemas import defined, problems
from test_store_ngsi import call, city  # noqa: F401 - city: the four-gauge fixture

# Japan's four-level scheme has two levels FloodMonitoring does not name, and it links its gauge
# as WaterObserved does; the Vehicle model has no trip or route (docs/store.md)
EXTENSIONS = {
    "FloodMonitoring": {"standbyLevel", "evacuationLevel", "refDevice"},
    "Vehicle": {"route_id", "trip_id", "stop_id", "current_status", "occupancy_status"},
}


def fits(model: str, entity: dict[str, Any]) -> None:
    """``entity`` passes its model's schema, holds no null, and adds only what the docs name."""
    assert problems(model, entity) == [], entity["id"]
    assert None not in entity.values(), entity["id"]
    outside = set(entity) - defined(model)
    assert outside <= EXTENSIONS.get(model, set()), (entity["id"], outside)


@pytest.mark.parametrize("model", ["WaterObserved", "FloodMonitoring", "Device"])
def test_entities_fit_the_smart_data_model(city, model):  # noqa: F811
    _, _, body = call(city, f"ngsi/v2/entities?type={model}&options=keyValues")
    entities = json.loads(body)
    assert len(entities) == 4
    for entity in entities:
        fits(model, entity)


LOCATION = {"type": "Point", "coordinates": [140.04, 38.1]}


@pytest.mark.parametrize(
    ("model", "entity", "found"),
    [
        ("Device", {"controlledProperty": ["depth"], "value": 1.5}, "value: 1.5 is not of type"),
        ("Device", {"value": "a"}, "'controlledProperty' is a required property"),
        ("WaterObserved", {"dateObserved": "2026-11-30T10:00:00Z", "height": None}, "height"),
        ("WaterObserved", {"dateObserved": "yesterday"}, "is not a 'date-time'"),
        ("FloodMonitoring", {"currentLevel": "1.2"}, "currentLevel: '1.2' is not of type"),
        ("Vehicle", {"vehicleType": "bus", "category": ["public"], "heading": 400}, "heading"),
        ("Vehicle", {"vehicleType": "bus", "category": ["public"], "speed": -3}, "speed"),
        ("Vehicle", {"vehicleType": "bus", "category": ["bus"]}, "category/0"),
        ("Vehicle", {"category": ["public"]}, "'vehicleType' is a required property"),
        ("Alert", {"category": "security", "dateIssued": "now"}, "is not a 'date-time'"),
    ],
)
def test_the_schemas_catch_a_wrong_entity(model, entity, found):
    """The checks would fail on what the issue found (a numeric Device value, a null height)
    and on the mistakes a Vehicle could make."""
    wrong = {"id": "urn:ngsi-ld:x:1", "type": model, "location": LOCATION} | entity
    assert any(found in line for line in problems(model, wrong)), problems(model, wrong)
