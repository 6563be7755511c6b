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

Each bus is a ``Vehicle`` (dataModel.Transportation), made from its entry in the public GTFS-
Realtime VehiclePositions feed (gateway/services/gtfs_rt.py) and from nothing else, so NGSI
shows what that feed shows: ``vehicleType`` ``bus``, ``category`` public and tracked,
``serviceProvided`` urbanTransit, ``location``, ``speed`` in km/h and ``heading`` in degrees
(both ``-1`` where the model says: unknown, or heading while standing), ``observationDateTime``,
``serviceStatus`` (``onRoute`` on a trip of the static feed, else ``outOfService``). The model
has no trip or route attributes; the GTFS ids are added under the names Smart Data Models'
FareCollectionSystem gives them (``route_id``, ``trip_id``) with ``stop_id``, ``current_status``
and ``occupancy_status`` as GTFS-Realtime names them. No card, rider or head count reaches it:
the feed has none, only the occupancy band. A bus that left the feed (silent past
``transit.stale_after_s``) is gone here too.

Each public wildlife sighting (gateway/api/sightings.py) is an ``Alert`` (dataModel.Alert):
category ``security`` (the model's ``subCategory`` enum has no animal, so there is none), the
species in ``name`` and ``description``, ``alertSource`` ``wildlife-cameras`` (the model wants an
entity id or URI there, and no single camera may be named), ``areaServed`` the area,
``location`` the centre of its grid square (never the camera), ``dateIssued`` the time,
``severity`` high for a bear.

An attribute with nothing to say is left out, never ``null``: a gauge in 欠測 has no ``height``
(the models' schemas allow a number there, not null) and ``floodLevelStatus`` says ``Missing``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from google.transit import gtfs_realtime_pb2 as rt

from gateway.api.sightings import SEVERITY, Sighting
from gateway.api.sites import SiteNow
from gateway.store.intake import iso_ms

Entity = dict[str, Any]
URN = "urn:ngsi-ld:{type}:{device}"
METRES = {"unitCode": {"type": "Text", "value": "MTR"}}
KMH = {"unitCode": {"type": "Text", "value": "KMH"}}
STANDING_MPS = 0.5  # below this a GNSS speed is noise: the bus stands, its heading is -1
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
            ("severity", "Text", SEVERITY.get(sighting.species, "low"), {}),
            ("areaServed", "Text", sighting.place, {}),
            ("alertSource", "Text", "wildlife-cameras", {}),
            ("dateIssued", "DateTime", iso_ms(sighting.ts_ms), {}),
            (
                "location",
                "geo:json",
                {"type": "Point", "coordinates": [sighting.lon, sighting.lat]},
                {},
            ),
        ],
    )


def vehicle_entity(item: rt.FeedEntity) -> Entity:
    """A bus as a Vehicle, from its GTFS-Realtime VehiclePosition (``item.vehicle``)."""
    vp = item.vehicle
    pos = vp.position
    speed = pos.speed if pos.HasField("speed") else None
    standing = speed is not None and speed < STANDING_MPS
    heading = pos.bearing % 360 if pos.HasField("bearing") and not standing else -1
    on_trip = vp.HasField("trip")
    stop = vp.stop_id if on_trip and vp.HasField("stop_id") else None
    Status, Occupancy = rt.VehiclePosition.VehicleStopStatus, rt.VehiclePosition.OccupancyStatus
    return entity(
        "Vehicle",
        vp.vehicle.id,
        [
            ("name", "Text", vp.vehicle.id, {}),
            ("fleetVehicleId", "Text", vp.vehicle.id, {}),
            ("vehicleType", "Text", "bus", {}),
            ("category", "StructuredValue", ["public", "tracked"], {}),
            ("serviceProvided", "StructuredValue", ["urbanTransit"], {}),
            (
                "location",
                "geo:json",
                # the feed's 32-bit floats, to the metre they hold (not their binary tail)
                {"type": "Point", "coordinates": [round(pos.longitude, 5), round(pos.latitude, 5)]},
                {},
            ),
            ("speed", "Number", -1 if speed is None else round(speed * 3.6, 1), KMH),
            ("heading", "Number", round(heading, 1), {}),
            ("observationDateTime", "DateTime", iso_ms(vp.timestamp * 1000), {}),
            ("serviceStatus", "Text", "onRoute" if on_trip else "outOfService", {}),
            ("route_id", "Text", vp.trip.route_id if on_trip else None, {}),
            ("trip_id", "Text", vp.trip.trip_id if on_trip else None, {}),
            ("stop_id", "Text", stop, {}),
            ("current_status", "Text", Status.Name(vp.current_status) if stop else None, {}),
            (
                "occupancy_status",
                "Text",
                Occupancy.Name(vp.occupancy_status) if vp.HasField("occupancy_status") else None,
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
