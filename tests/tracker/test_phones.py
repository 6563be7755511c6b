"""Phones and off-the-shelf trackers as devices: OwnTracks over MQTT (with the broker's ACL) and
over the Recorder's HTTP /pub, and Traccar Client's OsmAnd protocol, each with its own token."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from edge.protocol import EnvelopeError
from gateway.services.phones import from_osmand, from_owntracks, new_token
from sim.broker import Mosquitto
from sim.child_day import SCHOOL
from tests.store.store_helpers import wait_until
from tests.tracker.tracker_rig import Mailbox, Webhook, register, service_config, start_service

ACL = (Path(__file__).resolve().parents[2] / "configs" / "mosquitto" / "acl").read_text()
# the OwnTracks booklet's example location message
BOOKLET = (
    '{"_type":"location","acc":13,"alt":90,"batt":70,"conn":"w","lat":38.10791,"lon":140.0327,'
    '"tid":"hk","tst":1764626400,"vac":14,"vel":4}'
)


def test_owntracks_location_and_transition_map_onto_the_tracker_envelope():
    env = from_owntracks("phone-hana", BOOKLET)
    assert env is not None
    assert (env.device, env.type, env.seq) == ("phone-hana", "position", 1764626400000)
    assert env.ts == "2025-12-01T22:00:00.000Z"
    assert env.data == {
        "lat": 38.10791,
        "lon": 140.0327,
        "src": "owntracks",
        "why": "phone",
        "acc": 13.0,
        "spd": 1.1,
    }
    transition = json.loads(BOOKLET) | {"_type": "transition", "event": "enter", "desc": "学校"}
    assert from_owntracks("phone-hana", json.dumps(transition)).data["lat"] == 38.10791
    assert from_owntracks("phone-hana", '{"_type":"lwt","tst":1}') is None
    for bad in ('{"_type":"location","lat":95,"lon":1,"tst":1}', '{"_type":"location"}', "[]"):
        with pytest.raises(EnvelopeError):
            from_owntracks("phone-hana", bad)


def test_osmand_query_maps_knots_and_both_time_forms():
    env = from_osmand(
        {
            "id": "traccar-ken",
            "lat": "38.1",
            "lon": "140.03",
            "timestamp": "1764626400",
            "speed": "2.0",
            "accuracy": "8.5",
        }
    )
    assert env.data["spd"] == pytest.approx(1.0, abs=0.05)  # 2 knots
    assert env.data["acc"] == 8.5 and env.ts == "2025-12-01T22:00:00.000Z"
    iso = from_osmand(
        {"id": "traccar-ken", "lat": "38.1", "lon": "140.03", "timestamp": "2025-12-01T22:00:00Z"}
    )
    assert iso.ts == env.ts
    with pytest.raises(EnvelopeError):
        from_osmand({"id": "traccar-ken", "lat": "x", "lon": "1", "timestamp": "1"})


@pytest.fixture
def secured(tmp_path):
    """A broker with a password per user and the project's ACL."""
    users = {"phone-hana": "hana-phone-pw", "phone-ken": "ken-phone-pw", "city": "city-pw"}
    with Mosquitto(users=users, acl=ACL) as broker:
        yield broker, users


def publish(broker, user, password, topic, payload) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"{user}-{time.time()}")
    client.username_pw_set(user, password)
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def positions(service, child: str) -> list:
    return service.db.positions_for("test", child, 0, 2**62, 0)


def test_phones_over_mqtt_http_and_osmand_each_only_for_their_own_child(tmp_path, secured):
    broker, users = secured
    mailbox, hook = Mailbox(), Webhook()
    config = service_config(tmp_path, broker, mailbox.port, hook.url, "phones")
    secret = tmp_path / "city.pw"
    secret.write_text(users["city"])
    config.mqtt.username, config.mqtt.password_file = "city", secret
    service = start_service(config)
    try:
        register(service)
        db = service.db
        db.add_child("ken", "nagai-chuo", 0)
        hana_token, hana_hash = new_token()
        ken_token, ken_hash = new_token()
        db.add_device("phone-hana", "hana", "owntracks", hana_hash)
        db.add_device("phone-ken", "ken", "osmand", ken_hash)
        # OwnTracks over MQTT, on its own topic
        publish(broker, "phone-hana", users["phone-hana"], "owntracks/phone-hana/iphone", BOOKLET)
        wait_until(lambda: positions(service, "hana"), 10, "the OwnTracks position")
        # ... and hana's phone writing as ken's: the broker's ACL drops it
        forged = json.loads(BOOKLET) | {"tst": 1764626500}
        publish(
            broker, "phone-hana", users["phone-hana"], "owntracks/phone-ken/x", json.dumps(forged)
        )
        # OwnTracks HTTP (Recorder /pub) with the device's token
        later = json.dumps(json.loads(BOOKLET) | {"tst": 1764626460})
        assert post_pub(service.url, "phone-hana", hana_token, later) == 200
        assert post_pub(service.url, "phone-hana", "wrong-token", later) == 401
        assert post_pub(service.url, "phone-ken", hana_token, later) == 401  # not its token
        # OsmAnd
        query = f"id=phone-ken&lat={SCHOOL[0]}&lon={SCHOOL[1]}&timestamp=1764626400&accuracy=9"
        assert http(service.url + f"osmand?{query}&key={ken_token}") == 200
        assert http(service.url + f"osmand?{query}&key={hana_token}") == 401
        assert http(service.url + "osmand?id=phone-ken&lat=1&timestamp=1&key=" + ken_token) == 400
        wait_until(lambda: len(positions(service, "hana")) == 2, 10, "two hana positions")
        assert [p.src for p in positions(service, "hana")] == ["owntracks", "owntracks"]
        ken = positions(service, "ken")
        assert [(p.src, p.acc) for p in ken] == [("osmand", 9.0)]  # not hana's forged one
    finally:
        service.stop()
        hook.close()


def post_pub(url: str, user: str, token: str, body: str) -> int:
    auth = base64.b64encode(f"{user}:{token}".encode()).decode()
    request = urllib.request.Request(
        url + "pub",
        data=body.encode(),
        method="POST",
        headers={"Authorization": f"Basic {auth}", "Content-Type": "application/json"},
    )
    return http(request)


def http(request) -> int:
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
