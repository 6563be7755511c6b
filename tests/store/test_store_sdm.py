"""The NGSI entities against Smart Data Models: every attribute the model defines has the type its
schema gives (a Device's ``value`` is text, levels are numbers, times are date-times), nothing is
null, and the only attributes outside the models are the ones the docs name."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema_rs
import pytest
from test_store_ngsi import call, city  # noqa: F401 - city: the four-gauge fixture

SDM = Path(__file__).parent / "fixtures" / "sdm"
# Japan's four-level scheme has two levels FloodMonitoring does not name, and it links its gauge
# as WaterObserved does (docs/store.md)
EXTENSIONS = {"FloodMonitoring": {"standbyLevel", "evacuationLevel", "refDevice"}}


def schema(model: str) -> dict:
    properties = json.loads((SDM / f"{model}.json").read_text())["properties"]
    return {
        "type": "object",
        "properties": properties,
        "required": ["id", "type", "location"],
    }


@pytest.mark.parametrize("model", ["WaterObserved", "FloodMonitoring", "Device"])
def test_entities_fit_the_smart_data_model(city, model):  # noqa: F811
    _, _, body = call(city, f"ngsi/v2/entities?type={model}&options=keyValues")
    entities = json.loads(body)
    assert len(entities) == 4
    validator = jsonschema_rs.validator_for(schema(model), validate_formats=True)
    for entity in entities:
        errors = [f"{e.instance_path}: {e.message}" for e in validator.iter_errors(entity)]
        assert errors == [], (entity["id"], errors)
        assert None not in entity.values(), entity["id"]
        outside = set(entity) - set(schema(model)["properties"])
        assert outside <= EXTENSIONS.get(model, set()), (entity["id"], outside)


def test_the_schemas_catch_what_the_issue_found(city):  # noqa: F811
    """The checks would have failed on the old entities: a numeric Device value, a null height."""
    device = jsonschema_rs.validator_for(schema("Device"), validate_formats=True)
    assert not device.is_valid({"id": "x", "type": "Device", "location": {}, "value": 1.5})
    water = jsonschema_rs.validator_for(schema("WaterObserved"), validate_formats=True)
    assert not water.is_valid({"id": "x", "type": "WaterObserved", "location": {}, "height": None})
    assert not water.is_valid(
        {"id": "x", "type": "WaterObserved", "location": {}, "dateObserved": "yesterday"}
    )
