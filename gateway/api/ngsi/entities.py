"""What the city publishes, as Smart Data Models entities in NGSI v2's normalized form.

Each river site is three entities:

- ``WaterObserved`` (dataModel.Environment): ``height``, the water level in metres above the gauge
  datum, ``dateObserved`` its time, ``refDevice`` the gauge;
- ``FloodMonitoring`` (dataModel.Environment): ``currentLevel``, ``alertLevel`` (氾濫注意),
  ``dangerLevel`` (氾濫危険), ``floodLevelStatus``, ``referenceLevel`` (the sensor's height above
  the datum) and ``measuredDistance`` (sensor to water); Japan's two other levels are added as
  ``standbyLevel`` (水防団待機) and ``evacuationLevel`` (避難判断);
- ``Device`` (dataModel.Device): the gauge, ``deviceState``, ``dateLastValueReported`` and
  ``value`` as the model wants it, text (``level%3D1.23``, URL-encoded ``key=value`` pairs).

Each public wildlife sighting (gateway/api/sightings.py) is an ``Alert`` (dataModel.Alert):
category ``security``, ``subCategory`` ``animalSighting``, the species in ``name`` and
``description``, ``areaServed`` the area, ``location`` the centre of its grid square (never the
camera), ``dateIssued`` the time, ``severity`` high for a bear.

An attribute with nothing to say is left out, never ``null``: a gauge in 欠測 has no ``height``
(the models' schemas allow a number there, not null) and ``floodLevelStatus`` says ``Missing``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from gateway.api.sightings import SEVERITY, Sighting
from gateway.api.sites import SiteNow
from gateway.store.intake import iso_ms

Entity = dict[str, Any]
URN = "urn:ngsi-ld:{type}:{device}"
METRES = {"unitCode": {"type": "Text", "value": "MTR"}}
STATUS_WORDS = {
    "normal": "Normal",
    "standby": "Standby",
    "caution": "Caution",
    "evacuation": "EvacuationDecision",
    "danger": "Danger",
    "missing": "Missing",
}


def attr(kind: str, value: Any, **metadata: dict[str, Any]) -> dict[str, Any]:
    """One attribute; metadata in normalized form too (each with its own ``metadata: {}``
    removed, as Orion renders metadata)."""
    return {"type": kind, "value": value, "metadata": dict(metadata)}


def entity(kind: str, device: str, attrs: Iterable[tuple[str, str, Any, dict[str, Any]]]) -> Entity:
    """An entity from (name, type, value, metadata) rows, leaving out those without a value."""
    out: Entity = {"id": URN.format(type=kind, device=device), "type": kind}
    for name, ngsi_type, value, metadata in attrs:
        if value is not None:
            out[name] = attr(ngsi_type, value, **metadata)
    return out


def river_entities(now: SiteNow) -> list[Entity]:
    site = now.site
    location = {"type": "Point", "coordinates": [site.lon, site.lat]}
    observed = iso_ms(now.observed_ms) if now.observed_ms is not None else None
    device_urn = URN.format(type="Device", device=site.device)
    common = [("name", "Text", site.name, {}), ("location", "geo:json", location, {})]
    levels = site.levels_m
    water = entity(
        "WaterObserved",
        site.device,
        [
            *common,
            ("description", "Text", f"{site.river} {site.name}", {}),
            ("height", "Number", now.level_m, METRES),
            ("dateObserved", "DateTime", observed, {}),
            ("refDevice", "Relationship", device_urn, {}),
        ],
    )
    flood = entity(
        "FloodMonitoring",
        site.device,
        [
            *common,
            ("stationID", "Text", site.device, {}),
            ("currentLevel", "Number", now.level_m, METRES),
            ("standbyLevel", "Number", levels.standby, METRES),
            ("alertLevel", "Number", levels.caution, METRES),
            ("evacuationLevel", "Number", levels.evacuation, METRES),
            ("dangerLevel", "Number", levels.danger, METRES),
            ("referenceLevel", "Number", site.sensor_height_m, METRES),
            ("measuredDistance", "Number", now.measured_distance_m, METRES),
            ("floodLevelStatus", "Text", STATUS_WORDS[now.state], {}),
            ("observationDateTime", "DateTime", observed, {}),
            ("refDevice", "Relationship", device_urn, {}),
        ],
    )
    reported = None if now.level_m is None else "level%3D" + quote(f"{now.level_m:g}")
    device = entity(
        "Device",
        site.device,
        [
            *common,
            ("category", "StructuredValue", ["sensor"], {}),
            ("controlledProperty", "StructuredValue", ["depth"], {}),
            ("deviceState", "Text", "missing" if now.state == "missing" else "ok", {}),
            ("dateLastValueReported", "DateTime", observed, {}),
            ("value", "Text", reported, {}),
        ],
    )
    return [water, flood, device]


def sighting_entity(sighting: Sighting) -> Entity:
    words = sighting.words("ja")
    return entity(
        "Alert",
        f"sighting-{sighting.key}",
        [
            ("name", "Text", words, {}),
            ("description", "Text", f"{words}の出没 ({sighting.place})", {}),
            ("category", "Text", "security", {}),
            ("subCategory", "Text", "animalSighting", {}),
            ("severity", "Text", SEVERITY.get(sighting.species, "low"), {}),
            ("areaServed", "Text", sighting.place, {}),
            ("alertSource", "Text", "machimori wildlife cameras", {}),
            ("dateIssued", "DateTime", iso_ms(sighting.ts_ms), {}),
            (
                "location",
                "geo:json",
                {"type": "Point", "coordinates": [sighting.lon, sighting.lat]},
                {},
            ),
        ],
    )


def key_values(entity: Entity) -> dict[str, Any]:
    return {k: v["value"] if isinstance(v, dict) else v for k, v in entity.items()}


def attr_names(entity: Entity) -> list[str]:
    return [k for k in entity if k not in ("id", "type")]


def select(entity: Entity, attrs: list[str] | None, metadata: list[str] | None) -> Entity:
    """The entity with only the named attributes (``*`` for all) and metadata."""
    keep = attrs is None or "*" in attrs
    out = {
        k: v
        for k, v in entity.items()
        if k in ("id", "type") or keep or (attrs is not None and k in attrs)
    }
    if metadata is None or "*" in metadata:
        return out
    return {
        k: v
        if k in ("id", "type")
        else {**v, "metadata": {m: x for m, x in v["metadata"].items() if m in metadata}}
        for k, v in out.items()
    }


def values_row(entity: Entity, attrs: list[str] | None) -> list[Any]:
    """``options=values``: the attribute values in ``attrs`` order (null where absent), else in
    the entity's own order."""
    names = attr_names(entity) if attrs is None or "*" in attrs else attrs
    return [entity[n]["value"] if n in entity and n not in ("id", "type") else None for n in names]
