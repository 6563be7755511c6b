"""FIWARE's own Python client (filip's ContextBrokerClient) reading the store's NGSI v2 view, run in
its own virtual environment (.venv-fiware: filip pins versions of paho-mqtt and pydantic that the
store does not use). Prints one JSON object of what each call returned, for the test to check.

filip 0.8.1 refuses any normalized attribute of type ``geo:json`` when it parses a broker's answer
(its attribute-type check excludes that name), so normalized reads here leave ``location`` out
and keyValues reads show it.

Usage: fiware_client.py BASE_URL read | subscribe NOTIFY_URL TOKEN | unsubscribe ID TOKEN
       | mqtt BROKER_URL TOPIC TOKEN | pause ID TOKEN
"""

from __future__ import annotations

import json
import sys

import requests
from filip.clients.ngsi_v2 import ContextBrokerClient
from filip.models.base import FiwareHeader
from filip.models.ngsi_v2.context import Query
from filip.models.ngsi_v2.subscriptions import Subscription

NORMALIZED = ["currentLevel", "floodLevelStatus", "alertLevel", "stationID", "referenceLevel"]


def client(url: str, token: str | None = None, service: str = "") -> ContextBrokerClient:
    session = requests.Session()
    if token:
        session.headers["Authorization"] = f"Bearer {token}"
    header = FiwareHeader(service=service, service_path="/")
    return ContextBrokerClient(url=url, session=session, fiware_header=header)


def ids(entities: list) -> list[str]:
    return [e.id for e in entities]


def read(url: str) -> dict:
    cb = client(url)
    flood = "urn:ngsi-ld:FloodMonitoring:river-02"
    near = {"georel": "near;maxDistance:2500", "geometry": "point", "coords": "38.1052,140.0561"}
    box = {"georel": "coveredBy", "geometry": "box", "coords": "38.09,140.03;38.11,140.06"}
    return {
        "version": cb.get_version(),
        "resources": cb.get_resources(),
        "statistics": cb.get_statistics(),
        "all": len(cb.get_entity_list(response_format="keyValues")),
        "types_filter": ids(cb.get_entity_list(entity_types=["Device"], attrs=["name"])),
        "id_pattern": ids(cb.get_entity_list(id_pattern=".*river-0[12]$", attrs=["name"])),
        "q_danger": ids(
            cb.get_entity_list(
                entity_types=["FloodMonitoring"], q="floodLevelStatus==Danger", attrs=NORMALIZED
            )
        ),
        "q_range": ids(cb.get_entity_list(q="currentLevel==1.5..3", response_format="keyValues")),
        "mq": ids(
            cb.get_entity_list(
                entity_types=["WaterObserved"],
                mq="height.unitCode==MTR",
                response_format="keyValues",
            )
        ),
        "near": ids(cb.get_entity_list(entity_types=["FloodMonitoring"], **near, attrs=NORMALIZED)),
        "box": ids(cb.get_entity_list(entity_types=["Device"], **box, response_format="keyValues")),
        "order": ids(
            cb.get_entity_list(
                entity_types=["FloodMonitoring"], order_by="!currentLevel", attrs=NORMALIZED
            )
        ),
        "limit": ids(cb.get_entity_list(limit=5, response_format="keyValues")),
        "values": cb.get_entity_list(
            entity_types=["FloodMonitoring"],
            attrs=["stationID", "floodLevelStatus"],
            response_format="values",
        ),
        "entity": cb.get_entity(flood, attrs=NORMALIZED).model_dump(mode="json"),
        "entity_kv": cb.get_entity(flood, response_format="keyValues").model_dump(mode="json"),
        "attrs": cb.get_entity_attributes(flood, attrs=NORMALIZED).keys().__len__(),
        "attribute": cb.get_attribute(flood, "floodLevelStatus").model_dump(mode="json"),
        "value_text": cb.get_attribute_value(flood, "floodLevelStatus"),
        "value_number": cb.get_attribute_value(flood, "currentLevel"),
        "value_geo": cb.get_attribute_value(flood, "location"),
        "types": cb.get_entity_types(),
        "type": cb.get_entity_type("Device"),
        "exists": cb.does_entity_exist(flood, "FloodMonitoring"),
        "missing": cb.does_entity_exist("urn:ngsi-ld:Device:river-99", "Device"),
        "other_tenant": len(client(url, service="othercity").get_entity_list()),
        "batch_query": ids(
            cb.query(
                query=Query(
                    entities=[{"idPattern": ".*", "type": "FloodMonitoring"}],
                    attrs=NORMALIZED,
                    expression={"q": "floodLevelStatus!=Normal;currentLevel>0"},
                ),
            )
        ),
        "registrations": len(cb.get_registration_list()),
        "vehicles": [
            v.model_dump(mode="json")
            for v in cb.get_entity_list(
                entity_types=["Vehicle"], q="serviceStatus==onRoute", response_format="keyValues"
            )
        ],
        "vehicle": cb.get_entity(
            "urn:ngsi-ld:Vehicle:bus-01", attrs=["speed", "heading", "trip_id"]
        ).model_dump(mode="json"),
    }


def subscribe(url: str, notify: str, token: str) -> dict:
    cb = client(url, token)
    subscription = Subscription(
        description="river gauges' flood state, for the city's dashboard",
        subject={
            "entities": [{"idPattern": ".*", "type": "FloodMonitoring"}],
            "condition": {"attrs": ["floodLevelStatus"]},
        },
        notification={
            "http": {"url": notify},
            "attrs": ["floodLevelStatus", "currentLevel", "stationID"],
        },
        throttling=0,
    )
    made = cb.post_subscription(subscription)
    listed = cb.get_subscription_list()
    one = cb.get_subscription(made)
    return {
        "id": made,
        "listed": [s.id for s in listed],
        "one": one.model_dump(mode="json", exclude_none=True),
    }


def mqtt(url: str, broker: str, topic: str, token: str) -> dict:
    """An MQTT subscription on every gauge update, read back."""
    cb = client(url, token)
    made = cb.post_subscription(
        Subscription(
            description="every gauge reading, over MQTT",
            subject={
                "entities": [{"idPattern": ".*", "type": "FloodMonitoring"}],
                "condition": {"attrs": ["currentLevel"], "alterationTypes": ["entityUpdate"]},
            },
            notification={
                "mqtt": {"url": broker, "topic": topic, "qos": 1},
                "attrs": ["currentLevel", "alterationType"],
                "attrsFormat": "keyValues",
            },
        )
    )
    return {"id": made, "one": cb.get_subscription(made).model_dump(mode="json", exclude_none=True)}


def pause(url: str, subscription_id: str, token: str) -> dict:
    """filip's update: a PATCH of the whole subscription as read back, status inactive."""
    cb = client(url, token)
    cb.update_subscription(
        cb.get_subscription(subscription_id).model_copy(update={"status": "inactive"})
    )
    return {"one": cb.get_subscription(subscription_id).model_dump(mode="json", exclude_none=True)}


def unsubscribe(url: str, subscription_id: str, token: str) -> dict:
    cb = client(url, token)
    cb.delete_subscription(subscription_id)
    return {"left": [s.id for s in cb.get_subscription_list()]}


if __name__ == "__main__":
    base, command, *rest = sys.argv[1:]
    actions = {
        "read": read,
        "subscribe": subscribe,
        "unsubscribe": unsubscribe,
        "mqtt": mqtt,
        "pause": pause,
    }
    action = actions[command]
    print(json.dumps(action(base, *rest), ensure_ascii=False, default=str))
