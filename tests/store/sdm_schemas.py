"""The Smart Data Models' own JSON Schemas (vendored in fixtures/sdm/schemas, see its README),
resolved offline: every ``$ref`` to common-schema.json, device-schema.json, alert-schema.json or
weather-schema.json is answered from the vendored copy under the ``$id`` the programme publishes
it at, so a test never reaches the network."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMAS = Path(__file__).parent / "fixtures" / "sdm" / "schemas"
MODELS = ("WaterObserved", "FloodMonitoring", "Device", "Alert", "Vehicle")


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def registry() -> Registry:
    resources = [
        (schema["$id"], Resource.from_contents(schema))
        for schema in map(_load, sorted(SCHEMAS.glob("*.json")))
    ]
    return Registry().with_resources(resources)


def validator(model: str) -> Draft202012Validator:
    """A validator for ``model``'s schema.json (keyValues form), checking formats too."""
    schema = _load(SCHEMAS / f"{model}.schema.json")
    return Draft202012Validator(
        schema, registry=registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def problems(model: str, entity: dict[str, Any]) -> list[str]:
    """Every way ``entity`` breaks its model's schema, as 'path: message' lines."""
    found = validator(model).iter_errors(entity)
    return sorted(f"{'/'.join(map(str, e.absolute_path)) or '.'}: {e.message}" for e in found)


def defined(model: str) -> set[str]:
    """Every top-level attribute ``model``'s schema names, through its ``allOf`` and ``$ref``s."""
    resolver = registry().resolver()
    names: set[str] = set()

    def walk(schema: dict[str, Any]) -> None:
        names.update(schema.get("properties", {}))
        for part in schema.get("allOf", []) + schema.get("anyOf", []):
            walk(resolver.lookup(part["$ref"]).contents if "$ref" in part else part)

    walk(_load(SCHEMAS / f"{model}.schema.json"))
    return names
