"""NGSI v2 subscriptions as Orion 3 has them, past plain HTTP: MQTT notifications published with
the notifier's own least-privilege broker account, ``PATCH /v2/subscriptions/{id}`` (status,
expires, throttling), ``alterationTypes`` (entityCreate/Update/Change/Delete) on gauges and
buses, the builtin ``alterationType``, and the delivery counters."""

from __future__ import annotations

import json
import queue
import random
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from ngsi_receiver import Receiver
from store_helpers import GTFS_SAMPLE, Running, wait_until
from store_helpers import bus_position as position
from test_ngsi_vehicle import Buses
from test_store_ngsi_push import TOKEN, Levels, fiware, notifying_store, post, subscription

from edge.runtime.uplink import MqttConfig
from gateway.api.ngsi.mqtt_notify import MqttSender, NotifyFailed
from gateway.provision.mosquitto import acl_file, notifier_grant
from gateway.store.config import TransitConfig
from sim.broker import Mosquitto

AUTH = {"Authorization": f"Bearer {TOKEN}"}
FLOOD = "urn:ngsi-ld:FloodMonitoring:river-0{}".format
NOTIFIER_PASSWORD = "notifier-password-0123456789"
PLATFORM_PASSWORD = "platform-password-0123456789"


def settled(run: Running, entity_id: str, attr: str, value: Any) -> None:
    """Wait until the notifier has looked at the entity with this value."""
    notifier = run.service.http.notifier

    def seen() -> bool:
        entity = (notifier._seen or {}).get(entity_id)
        return entity is not None and entity.get(attr, {}).get("value") == value

    wait_until(seen, 10, f"the notifier seeing {entity_id} {attr}={value}")


def subscribe(run: Running, body: dict) -> str:
    status, headers, answer = post(run, body, **AUTH)
    assert status == 201, answer
    return headers["Location"].rsplit("/", 1)[1]


def call(run: Running, method: str, sub_id: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(
        run.url + "ngsi/v2/subscriptions/" + sub_id,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **AUTH},
        method=method,
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            raw = answer.read()
            return answer.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@pytest.fixture
def gauges(tmp_path: Path) -> Iterator[tuple[Running, Levels]]:
    run = notifying_store(tmp_path, 2)
    levels = Levels(run)
    for device in ("river-01", "river-02", "river-03", "river-04"):
        levels(device, 1.0)
    settled(run, FLOOD(4), "currentLevel", 1.0)
    yield run, levels
    run.stop()


# -- MQTT ------------------------------------------------------------------------------------


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker with the provisioned notifier's ACL, and a platform account reading ngsi/#."""
    acl = acl_file([notifier_grant("ngsi-notifier")])
    acl += "\nuser platform\ntopic read ngsi/#\ntopic read machimori/v1/#\n"
    users = {"ngsi-notifier": NOTIFIER_PASSWORD, "platform": PLATFORM_PASSWORD}
    with Mosquitto(users=users, acl=acl) as broker:
        yield broker


def listen(broker: Mosquitto, topic: str) -> queue.Queue:
    got: queue.Queue = queue.Queue()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set("platform", PLATFORM_PASSWORD)
    subscribed = queue.Queue()
    client.on_message = lambda _c, _u, message: got.put(message)
    client.on_subscribe = lambda *_: subscribed.put(True)
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.connect(broker.host, broker.port)
    client.loop_start()
    subscribed.get(timeout=10)
    got.client = client  # type: ignore[attr-defined]
    return got


def notifier_account(broker: Mosquitto, tmp_path: Path) -> MqttConfig:
    secret = tmp_path / "notifier.password"
    secret.write_text(NOTIFIER_PASSWORD)
    secret.chmod(0o600)
    return MqttConfig(
        host=broker.host, port=broker.port, username="ngsi-notifier", password_file=secret
    )


@pytest.fixture
def mqtt_city(acl_broker, tmp_path) -> Iterator[tuple[Running, Levels, str, queue.Queue]]:
    """The store with its notifier's account on ``acl_broker``, the broker's URL, and what a
    platform reading ``ngsi/#`` hears."""
    run = notifying_store(tmp_path, 2, notifier_account(acl_broker, tmp_path))
    heard = listen(acl_broker, "ngsi/#")
    yield run, Levels(run), f"mqtt://{acl_broker.host}:{acl_broker.port}", heard
    heard.client.loop_stop()  # type: ignore[attr-defined]
    run.stop()


def test_an_mqtt_notification_goes_out_with_the_notifiers_own_account(mqtt_city):
    run, levels, url, heard = mqtt_city
    levels("river-02", 1.0)
    settled(run, FLOOD(2), "currentLevel", 1.0)
    body = subscription(url) | {
        "notification": {
            "mqtt": {"url": url, "topic": "ngsi/nagai/flood", "qos": 1},
            "attrs": ["floodLevelStatus", "currentLevel"],
            "attrsFormat": "keyValues",
        }
    }
    body["subject"]["entities"] = [{"idPattern": ".*", "type": "FloodMonitoring"}]
    sub_id = subscribe(run, body)
    levels("river-02", 1.9)  # crosses caution
    message = heard.get(timeout=10)
    assert message.topic == "ngsi/nagai/flood" and message.qos == 1
    assert json.loads(message.payload) == {
        "subscriptionId": sub_id,
        "data": [
            {
                "id": FLOOD(2),
                "type": "FloodMonitoring",
                "floodLevelStatus": "Caution",
                "currentLevel": 1.9,
            }
        ],
    }
    status, shown = call(run, "GET", sub_id)
    assert shown["notification"]["mqtt"] == {
        "url": url,
        "topic": "ngsi/nagai/flood",
        "qos": 1,
        "retain": False,
    }
    wait_until(lambda: call(run, "GET", sub_id)[1]["notification"]["timesSent"] == 1, 10)
    counters = call(run, "GET", sub_id)[1]["notification"]
    assert "lastSuccess" in counters and "lastFailure" not in counters
    # the notifier may not publish outside its prefix: refused when the subscription is made
    body["notification"]["mqtt"]["topic"] = "machimori/v1/river/river-02/telemetry"
    status, _, answer = post(run, body, **AUTH)
    assert status == 400 and "ngsi/" in answer["description"]


def test_filip_subscribes_over_mqtt_and_pauses_with_a_patch(mqtt_city):
    """FIWARE's own client makes an MQTT subscription on every update, reads it back, and
    pauses it with its update call (a PATCH of the whole subscription as read)."""
    run, levels, url, heard = mqtt_city
    levels("river-01", 1.0)
    settled(run, FLOOD(1), "currentLevel", 1.0)
    made = fiware(run.url + "ngsi", "mqtt", url, "ngsi/nagai/levels", TOKEN)
    assert made["one"]["status"] == "active"
    assert made["one"]["notification"]["mqtt"]["topic"] == "ngsi/nagai/levels"
    assert made["one"]["subject"]["condition"]["alterationTypes"] == ["entityUpdate"]
    levels("river-01", 1.0)  # the same level, a new reading: an update, not a change
    message = json.loads(heard.get(timeout=10).payload)
    assert message["subscriptionId"] == made["id"]
    assert message["data"] == [
        {
            "id": FLOOD(1),
            "type": "FloodMonitoring",
            "currentLevel": 1.0,
            "alterationType": "entityUpdate",
        }
    ]
    paused = fiware(run.url + "ngsi", "pause", made["id"], TOKEN)["one"]
    assert paused["status"] == "inactive"
    assert paused["notification"]["timesSent"] == 1  # the PATCH kept the counters
    levels("river-01", 1.2)
    settled(run, FLOOD(1), "currentLevel", 1.2)
    with pytest.raises(queue.Empty):
        heard.get(timeout=1)


def test_the_broker_holds_the_notifier_to_its_acl(acl_broker, tmp_path):
    """Least privilege is the broker's, not only ours: the notifier's account cannot publish a
    forged reading even if the store's own check were bypassed, and a wrong password is a
    failure with a reason."""
    heard = listen(acl_broker, "machimori/v1/#")
    sender = MqttSender(None, 3)
    url = f"mqtt://{acl_broker.host}:{acl_broker.port}"
    forged = {
        "url": url,
        "topic": "machimori/v1/river/river-01/telemetry",
        "qos": 1,
        "retain": False,
        "user": "ngsi-notifier",
        "passwd": NOTIFIER_PASSWORD,
    }
    try:
        with pytest.raises(NotifyFailed, match="Not authorized"):
            sender.send(forged, b'{"v": 1}')
        sender.send(forged | {"topic": "ngsi/ok"}, b"{}")  # the same account, its own prefix
        with pytest.raises(NotifyFailed, match="refused the connection"):
            sender.send(forged | {"passwd": "wrong-password-wrong"}, b"{}")
        with pytest.raises(queue.Empty):
            heard.get(timeout=1)
    finally:
        sender.close()
        heard.client.loop_stop()  # type: ignore[attr-defined]


def test_a_subscriptions_own_mqtt_password_is_never_shown(gauges):
    run, _ = gauges
    target = {"url": "mqtt://127.0.0.1:9", "topic": "t/flood", "user": "u", "passwd": "s3cret"}
    sub_id = subscribe(run, subscription("x") | {"notification": {"mqtt": target}})
    read = call(run, "GET", sub_id)[1]
    assert "s3cret" not in json.dumps(read) and read["notification"]["mqtt"]["passwd"] == "*****"
    # a client that sends the subscription back as read (filip's update does) keeps the password
    assert call(run, "PATCH", sub_id, {"notification": read["notification"]})[0] == 204
    stored = json.loads(run.service.config.subscriptions_file.read_text())
    assert stored[0]["notification"]["mqtt"]["passwd"] == "s3cret"


@pytest.mark.parametrize(
    ("mqtt_target", "error"),
    [
        ({"url": "http://x", "topic": "t"}, "mqtt.url"),
        ({"url": "mqtt://x:1883", "topic": "a/#"}, "mqtt.topic"),
        ({"url": "mqtt://x:1883", "topic": "t", "qos": 3}, "qos"),
        ({"url": "mqtt://x:1883", "topic": "t", "user": "u"}, "user and passwd"),
        ({"url": "mqtt://x:1883", "topic": "t", "clientId": "c"}, "clientId"),
    ],
)
def test_a_bad_mqtt_target_is_refused_with_a_reason(gauges, mqtt_target, error):
    run, _ = gauges
    status, _, answer = post(
        run, subscription("x") | {"notification": {"mqtt": mqtt_target}}, **AUTH
    )
    assert status == 400 and error in answer["description"], answer


# -- PATCH -----------------------------------------------------------------------------------


def test_patch_changes_status_expiry_and_throttling_and_keeps_the_counters(gauges):
    run, levels = gauges
    receiver = Receiver()
    try:
        sub_id = subscribe(run, subscription(receiver.url))
        levels("river-04", 2.5)  # Danger
        wait_until(lambda: len(receiver.bodies()) == 1, 10, "the first notification")
        assert call(run, "PATCH", sub_id, {"status": "inactive"})[0] == 204
        assert call(run, "GET", sub_id)[1]["status"] == "inactive"
        levels("river-04", 1.9)  # Caution: an inactive subscription is not told
        settled(run, FLOOD(4), "currentLevel", 1.9)
        assert call(run, "PATCH", sub_id, {"status": "active"})[0] == 204
        levels("river-04", 2.5)
        wait_until(lambda: len(receiver.bodies()) == 2, 10, "the notification after re-activation")
        assert call(run, "PATCH", sub_id, {"throttling": 3600})[0] == 204
        levels("river-04", 1.9)  # within an hour of the last one: dropped, as Orion drops it
        settled(run, FLOOD(4), "currentLevel", 1.9)
        shown = call(run, "GET", sub_id)[1]
        assert shown["throttling"] == 3600 and shown["notification"]["timesSent"] == 2
        assert shown["subject"]["entities"] == [{"id": FLOOD(4)}]  # untouched by the PATCH
        past = {"expires": "2020-01-01T00:00:00Z", "throttling": 0}
        assert call(run, "PATCH", sub_id, past)[0] == 204
        assert call(run, "GET", sub_id)[1]["status"] == "expired"
        levels("river-04", 2.5)
        settled(run, FLOOD(4), "currentLevel", 2.5)
        assert call(run, "PATCH", sub_id, {"expires": None})[0] == 204
        assert call(run, "GET", sub_id)[1]["status"] == "active"
        assert len(receiver.bodies()) == 2
    finally:
        receiver.close()


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"status": "paused"}, 400, "status"),
        ({"owner": "me"}, 400, "owner"),
        ({}, 400, "fields to change"),
        ({"throttling": -5}, 400, "throttling"),
    ],
)
def test_a_bad_patch_is_refused_and_changes_nothing(gauges, body, status, error):
    run, _ = gauges
    sub_id = subscribe(run, subscription("http://127.0.0.1:9/x"))
    code, answer = call(run, "PATCH", sub_id, body)
    assert code == status and error in answer["description"]
    assert call(run, "GET", sub_id)[1]["status"] == "active"
    assert call(run, "PATCH", "0" * 24, {"status": "inactive"})[0] == 404


def test_a_oneshot_subscription_tells_once_then_rests(gauges):
    run, levels = gauges
    receiver = Receiver()
    try:
        sub_id = subscribe(run, subscription(receiver.url) | {"status": "oneshot"})
        levels("river-04", 2.5)
        wait_until(lambda: len(receiver.bodies()) == 1, 10, "the one notification")
        assert call(run, "GET", sub_id)[1]["status"] == "inactive"
        levels("river-04", 1.9)
        settled(run, FLOOD(4), "currentLevel", 1.9)
        assert len(receiver.bodies()) == 1
    finally:
        receiver.close()


# -- alterationTypes -------------------------------------------------------------------------


def watch(receiver: Receiver, kinds: list[str] | None, attrs: list[str]) -> dict:
    condition: dict[str, Any] = {"attrs": attrs}
    if kinds is not None:
        condition["alterationTypes"] = kinds
    return {
        "subject": {
            "entities": [{"idPattern": ".*", "type": "FloodMonitoring"}],
            "condition": condition,
        },
        "notification": {
            "http": {"url": receiver.url},
            "attrs": ["floodLevelStatus", "alterationType"],
            "attrsFormat": "keyValues",
        },
    }


# one storm in `make test`, two more in `make test-slow` (each about 5 s of waiting on the notifier)
@pytest.mark.parametrize(
    "seed", [5, pytest.param(11, marks=pytest.mark.slow), pytest.param(42, marks=pytest.mark.slow)]
)
def test_update_and_change_tell_what_orion_would(gauges, seed):
    """A random storm: each reading is an update; only a status that differs is a change."""
    run, levels = gauges
    changes, updates = Receiver(), Receiver()
    try:
        subscribe(run, watch(changes, None, ["floodLevelStatus"]))  # Orion's default kinds
        subscribe(run, watch(updates, ["entityUpdate"], ["floodLevelStatus"]))
        rng = random.Random(seed)
        seen = run.service.http.notifier._seen
        status = {
            d: seen[FLOOD(d[-1])]["floodLevelStatus"]["value"]
            for d in map("river-0{}".format, "1234")
        }
        expected_changes = []
        steps = 12
        for step in range(steps):
            device = rng.choice(sorted(status))
            level = round(rng.choice([1.0, 1.2, 1.6, 1.9, 2.2, 2.6]) + step / 1000, 3)
            levels(device, level)
            settled(run, f"urn:ngsi-ld:FloodMonitoring:{device}", "currentLevel", level)
            now = run.service.http.notifier._seen[f"urn:ngsi-ld:FloodMonitoring:{device}"]
            word = now["floodLevelStatus"]["value"]
            if word != status[device]:
                expected_changes.append((device, word))
            status[device] = word
        wait_until(lambda: len(updates.bodies()) == steps, 10, "one update per reading")
        wait_until(lambda: len(changes.bodies()) == len(expected_changes), 10, "the changes")
        time.sleep(0.5)  # nothing more arrives
        told = [
            (b["data"][0]["id"].rsplit(":", 1)[1], b["data"][0]["floodLevelStatus"])
            for b in changes.bodies()
        ]
        assert told == expected_changes
        assert {b["data"][0]["alterationType"] for b in changes.bodies()} <= {"entityChange"}
        kinds = [b["data"][0]["alterationType"] for b in updates.bodies()]
        assert len(kinds) == steps and set(kinds) == {"entityUpdate"}
    finally:
        changes.close()
        updates.close()


def test_buses_are_created_changed_and_deleted(tmp_path):
    """Subscriptions fire on Vehicles: a bus joining the feed, moving on, and leaving it when it
    falls silent (stale_after_s: 10 s here)."""
    run = notifying_store(tmp_path, transit=TransitConfig(gtfs=GTFS_SAMPLE, stale_after_s=10))
    bus = Buses(run)
    receiver = Receiver()
    try:
        wait_until(lambda: run.service.http.notifier._seen is not None, 10, "the first look")
        subscribe(
            run,
            {
                "subject": {
                    "entities": [{"idPattern": ".*", "type": "Vehicle"}],
                    "condition": {
                        "attrs": ["stop_id"],
                        "alterationTypes": ["entityCreate", "entityChange", "entityDelete"],
                        "expression": {"q": "serviceStatus==onRoute"},
                    },
                },
                "notification": {
                    "http": {"url": receiver.url},
                    "attrs": ["stop_id", "alterationType"],
                    "attrsFormat": "keyValues",
                },
            },
        )
        bus("bus-01", minutes_ago=7 / 60, **position("WD-01", "S01"))  # 7 s old: gone in ~3 s
        events = wait_until(lambda: len(receiver.bodies()) >= 1 and receiver.bodies(), 10)
        assert events[0]["data"] == [
            {
                "id": "urn:ngsi-ld:Vehicle:bus-01",
                "type": "Vehicle",
                "stop_id": "S01",
                "alterationType": "entityCreate",
            }
        ]
        bus("bus-01", minutes_ago=7 / 60, **position("WD-01", "S02"))
        wait_until(lambda: len(receiver.bodies()) >= 2, 10, "the move to S02")
        wait_until(lambda: len(receiver.bodies()) >= 3, 15, "the bus leaving the feed")
        kinds = [b["data"][0]["alterationType"] for b in receiver.bodies()]
        assert kinds == ["entityCreate", "entityChange", "entityDelete"]
        assert receiver.bodies()[2]["data"][0]["stop_id"] == "S02"  # as it last was
    finally:
        receiver.close()
        run.stop()
