"""What selects entities in NGSI v2, in one place for entity lists, batch queries and
subscriptions: entity patterns (``id``/``idPattern`` with ``type``/``typePattern``) and an
expression of ``q``, ``mq`` and a geographical query."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from gateway.api.ngsi import geo, query
from gateway.api.ngsi.entities import Entity
from gateway.api.ngsi.errors import bad


@dataclass(frozen=True)
class Expression:
    q: tuple[query.Statement, ...] = ()
    mq: tuple[query.Statement, ...] = ()
    where: geo.GeoQuery | None = None

    def holds(self, entity: Entity) -> bool:
        point = geo.location(entity)
        return (
            query.matches(entity, list(self.q), metadata=False)
            and query.matches(entity, list(self.mq), metadata=True)
            and (self.where is None or (point is not None and self.where.holds(point)))
        )


def expression(
    q: str | None = None,
    mq: str | None = None,
    georel: str | None = None,
    geometry: str | None = None,
    coords: str | None = None,
) -> Expression:
    """An expression from its parts, or a BadRequest naming the part that is wrong."""
    return Expression(
        tuple(query.parse(q, metadata=False)) if q is not None else (),
        tuple(query.parse(mq, metadata=True)) if mq is not None else (),
        geo.parse(georel, geometry, coords),
    )


def check_pattern(item: Any, where: str) -> dict[str, str]:
    """An entity pattern from a request body: exactly one of id and idPattern (or neither, for
    a batch query), at most one of type and typePattern, patterns that compile."""
    if not isinstance(item, dict):
        raise bad(f"{where}: an object")
    unknown = set(item) - {"id", "idPattern", "type", "typePattern"}
    if unknown:
        raise bad(f"{where}: unknown field {sorted(unknown)[0]!r}")
    if "id" in item and "idPattern" in item:
        raise bad(f"{where}: id and idPattern exclude each other")
    if "type" in item and "typePattern" in item:
        raise bad(f"{where}: type and typePattern exclude each other")
    for key, value in item.items():
        if not isinstance(value, str) or not value:
            raise bad(f"{where}.{key}: a string")
        if key.endswith("Pattern"):
            try:
                re.compile(value)
            except re.error as exc:
                raise bad(f"{where}.{key}: invalid regular expression: {exc}") from exc
    return dict(item)


def fits(pattern: dict[str, str], entity: Entity) -> bool:
    """Whether a pattern names an entity; patterns are searched, as ``idPattern`` is."""
    id_ok = (
        pattern.get("id", entity["id"]) == entity["id"]
        if "idPattern" not in pattern
        else re.search(pattern["idPattern"], entity["id"]) is not None
    )
    type_ok = (
        pattern.get("type", entity["type"]) == entity["type"]
        if "typePattern" not in pattern
        else re.search(pattern["typePattern"], entity["type"]) is not None
    )
    return id_ok and type_ok
