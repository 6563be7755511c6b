"""NGSI v2 subscriptions: FIWARE's own client (filip) subscribes to the gauges' flood state, a
test HTTP server receives the notifications when a gauge crosses a level, a failing endpoint is
retried, and nobody without a token or staff login may manage subscriptions."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ngsi_receiver import Receiver
from store_helpers import (
    GTFS_SAMPLE,
    ROOT,
    Running,
    Writer,
    at,
    login,
    seed_four_states,
    start,
    store_config,
    wait_until,
)
from store_helpers import bus_position as position
from test_ngsi_vehicle import Buses

from edge.runtime.uplink import MqttConfig
from gateway.store.config import TransitConfig

FIWARE_PYTHON = ROOT / ".venv-fiware" / "bin" / "python"
TOKEN = "k3Jx9-dashboard-token-0123456789"


def fiware(*args: str) -> dict:
    """Run FIWARE's client in its own environment (``make .venv-fiware/bin/filip-ok``)."""
    assert FIWARE_PYTHON.exists(), (
        "FIWARE's client is missing: run `make .venv-fiware/bin/filip-ok`"
    )
    done = subprocess.run(
        [str(FIWARE_PYTHON), str(ROOT / "tests/store/fiware_client.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


class Levels(Writer):
    """Gauge readings, each a second newer than the last."""

    def __call__(self, device: str, level: float | None) -> None:
        data = {"level_m": level, "valid": 9, "samples": 9}
        if level is None:
            data = {"missing": "timeout", "valid": 0, "samples": 9}
        self.write(device, data, lambda seq: at(-seq / 60))


def notifying_store(
    tmp_path: Path,
    attempts: int = 3,
    notifier: MqttConfig | None = None,
    transit: TransitConfig | None = None,
) -> Running:
    """A store whose notifier looks every 0.2 s, with the dashboard's token."""
    config = store_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
    tokens = tmp_path / "ngsi-tokens"
    tokens.write_text(f"dashboard:{TOKEN}\n")
    tokens.chmod(0o600)
    config.ngsi.tokens_file = tokens
    config.ngsi.poll_s = 0.2
    config.ngsi.notify_timeout_s = 2
    config.ngsi.notify_attempts = attempts  # retried after 1 s, 2 s, ...
    config.ngsi.notifier_mqtt = notifier
    config.transit = transit
    return start(config)


@pytest.fixture
def city(tmp_path: Path) -> Iterator[tuple[Running, Levels]]:
    run = notifying_store(tmp_path)
    levels = Levels(run)
    for device in ("river-01", "river-02", "river-03", "river-04"):
        levels(device, 1.0)
    # the notifier must have taken stock of these first: a subscription made before it looked
    # would be told of them as news (an entity that appeared), and a test would read that
    notifier = run.service.http.notifier
    wait_until(
        lambda: notifier._seen and "urn:ngsi-ld:FloodMonitoring:river-04" in notifier._seen,
        15,
        "the notifier's first look at the gauges",
    )
    yield run, levels
    run.stop()


def test_filip_reads_every_call_it_offers(tmp_path):
    config = store_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
    config.transit = TransitConfig(gtfs=GTFS_SAMPLE, stale_after_s=600)
    run = start(config)
    try:
        seed_four_states(run.store)
        Buses(run)("bus-01", **position("WD-03", "S04", speed_mps=5.0, bearing_deg=90.0))
        got = fiware(run.url + "ngsi", "read")
    finally:
        run.stop()
    flood = "urn:ngsi-ld:FloodMonitoring:river-0{}".format
    version = tuple(int(p) for p in got["version"]["orion"]["version"].split("."))
    assert version >= (3, 6)  # filip warns below 3.6.0
    assert got["resources"]["entities_url"] == "/v2/entities"
    assert got["statistics"]["uptime_in_secs"] >= 0
    assert got["statistics"]["notifications"]["failed"] == 0
    assert got["all"] == 13  # four gauges as three entities each, and a bus
    assert got["types_filter"] == [f"urn:ngsi-ld:Device:river-0{n}" for n in (1, 2, 3, 4)]
    assert got["id_pattern"] == [
        "urn:ngsi-ld:WaterObserved:river-01",
        "urn:ngsi-ld:FloodMonitoring:river-01",
        "urn:ngsi-ld:Device:river-01",
        "urn:ngsi-ld:WaterObserved:river-02",
        "urn:ngsi-ld:FloodMonitoring:river-02",
        "urn:ngsi-ld:Device:river-02",
    ]
    assert got["q_danger"] == [flood(4)]
    assert got["q_range"] == [flood(2), flood(4)]
    assert len(got["mq"]) == 3  # the gauge in 欠測 has no height, so no unit either
    assert got["near"] == [flood(1), flood(4), flood(2)]
    assert got["box"] == [f"urn:ngsi-ld:Device:river-0{n}" for n in (1, 2, 4)]
    assert got["order"] == [flood(4), flood(2), flood(1), flood(3)]
    assert len(got["limit"]) == 5
    assert got["values"] == [
        ["river-01", "Normal"],
        ["river-02", "Caution"],
        ["river-03", "Missing"],
        ["river-04", "Danger"],
    ]
    assert got["entity"]["currentLevel"]["value"] == 1.9
    assert got["entity_kv"]["location"] == {"type": "Point", "coordinates": [140.0334, 38.1004]}
    assert got["attrs"] == 5
    assert got["attribute"]["value"] == "Caution"
    assert got["value_text"] == "Caution" and got["value_number"] == 1.9
    assert got["value_geo"]["type"] == "Point"
    types = [t["type"] for t in got["types"]]
    assert types == ["WaterObserved", "FloodMonitoring", "Device", "Vehicle"]
    assert got["type"]["count"] == 4
    assert got["exists"] is True and got["missing"] is False
    assert got["other_tenant"] == 0
    assert got["batch_query"] == [flood(2), flood(4)]
    assert got["registrations"] == 0
    assert [v["trip_id"] for v in got["vehicles"]] == ["WD-03"]
    assert got["vehicles"][0]["vehicleType"] == "bus"
    assert got["vehicle"]["speed"]["value"] == 18.0 and got["vehicle"]["heading"]["value"] == 90.0


def test_filip_subscribes_and_a_level_crossing_is_notified(city):
    run, levels = city
    receiver = Receiver()
    try:
        made = fiware(run.url + "ngsi", "subscribe", receiver.url, TOKEN)
        assert made["listed"] == [made["id"]]
        assert made["one"]["status"] == "active"
        assert made["one"]["notification"]["http"]["url"] == receiver.url
        levels("river-01", 1.1)  # still Normal: the watched attribute did not change
        levels("river-02", 1.9)  # river-02 crosses flood caution (1.8)
        body = wait_until(receiver.bodies, 10, "a notification")[0]
        assert body["subscriptionId"] == made["id"]
        assert body["data"] == [
            {
                "id": "urn:ngsi-ld:FloodMonitoring:river-02",
                "type": "FloodMonitoring",
                "floodLevelStatus": {"type": "Text", "value": "Caution", "metadata": {}},
                "currentLevel": {
                    "type": "Number",
                    "value": 1.9,
                    "metadata": {"unitCode": {"type": "Text", "value": "MTR"}},
                },
                "stationID": {"type": "Text", "value": "river-02", "metadata": {}},
            }
        ]
        headers = {k.lower(): v for k, v in receiver.received[0]["headers"].items()}
        assert headers["fiware-servicepath"] == "/" and headers["ngsiv2-attrsformat"] == (
            "normalized"
        )
        levels("river-02", None)  # 欠測: the status changes to Missing
        wait_until(lambda: len(receiver.bodies()) == 2, 10, "the 欠測 notification")
        assert receiver.bodies()[1]["data"][0]["floodLevelStatus"]["value"] == "Missing"
        assert len(receiver.bodies()) == 2  # river-01's reading changed no status
        shown = json.loads(
            urllib.request.urlopen(
                urllib.request.Request(
                    run.url + "ngsi/v2/subscriptions/" + made["id"],
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ),
                timeout=10,
            ).read()
        )
        assert shown["notification"]["timesSent"] == 2
        assert shown["notification"]["lastSuccessCode"] == 200
        gone = fiware(run.url + "ngsi", "unsubscribe", made["id"], TOKEN)
        assert gone["left"] == []
    finally:
        receiver.close()


def post(run: Running, body: dict, **headers: str) -> tuple[int, Any, dict]:
    request = urllib.request.Request(
        run.url + "ngsi/v2/subscriptions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", **headers},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.headers, {}
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, json.loads(exc.read() or b"{}")


def subscription(url: str, **extra) -> dict:
    return {
        "subject": {
            "entities": [{"id": "urn:ngsi-ld:FloodMonitoring:river-04"}],
            "condition": {"attrs": ["floodLevelStatus"]},
        },
        "notification": {"http": {"url": url}, "attrsFormat": "keyValues"},
        **extra,
    }


def test_a_failing_endpoint_is_retried_and_does_not_hold_up_others(city):
    run, levels = city
    flaky = Receiver(answers=[500, 503])  # two failures, then it takes the notification
    healthy = Receiver()
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        dead = post(run, subscription("http://127.0.0.1:9/nothing-listens"), **auth)
        assert dead[0] == 201
        assert post(run, subscription(flaky.url), **auth)[0] == 201
        assert post(run, subscription(healthy.url), **auth)[0] == 201
        levels("river-04", 2.5)  # river-04: danger 2.4
        wait_until(healthy.bodies, 10, "the healthy endpoint's notification")
        assert healthy.bodies()[0]["data"] == [
            {
                "id": "urn:ngsi-ld:FloodMonitoring:river-04",
                "type": "FloodMonitoring",
                "name": "寺泉橋",
                "location": {"type": "Point", "coordinates": [140.0472, 38.0931]},
                "stationID": "river-04",
                "currentLevel": 2.5,
                "standbyLevel": 1.0,
                "alertLevel": 1.5,
                "evacuationLevel": 2.0,
                "dangerLevel": 2.4,
                "referenceLevel": 3.6,
                "measuredDistance": pytest.approx(1.1),
                "floodLevelStatus": "Danger",
                "observationDateTime": healthy.bodies()[0]["data"][0]["observationDateTime"],
                "refDevice": "urn:ngsi-ld:Device:river-04",
            }
        ]
        wait_until(flaky.bodies, 15, "the flaky endpoint's notification after two retries")
        assert flaky.bodies()[0]["data"][0]["floodLevelStatus"] == "Danger"
        dead_id = dead[1]["Location"].rsplit("/", 1)[1]

        def dead_state() -> dict:
            request = urllib.request.Request(
                run.url + "ngsi/v2/subscriptions/" + dead_id, headers=auth
            )
            return json.loads(urllib.request.urlopen(request, timeout=10).read())

        shown = wait_until(lambda: dead_state()["status"] == "failed" and dead_state(), 30)
        assert shown["notification"]["lastFailureReason"].startswith("URLError")
        counters = json.loads(urllib.request.urlopen(run.url + "ngsi/statistics").read())
        assert counters["notifications"]["failed"] == 1  # the dead endpoint, after 3 tries
        assert counters["notifications"]["retried"] >= 4  # 2 for it, 2 for the flaky one
        assert counters["notifications"]["sent"] == 2
    finally:
        flaky.close()
        healthy.close()


def test_only_platforms_with_a_token_or_staff_manage_subscriptions(city):
    run, _ = city
    body = subscription("http://127.0.0.1:9/x")
    status, _, answer = post(run, body)
    assert status == 401 and answer["error"] == "Unauthorized"
    assert post(run, body, Authorization="Bearer wrong-token-wrong-token-wrong")[0] == 401
    request = urllib.request.Request(run.url + "ngsi/v2/subscriptions")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    cookie = login(run.url)
    assert cookie is not None
    assert post(run, body, Cookie=cookie)[0] == 201


@pytest.mark.parametrize(
    "change, error",
    [
        ({"subject": {"entities": []}}, "subject.entities"),
        ({"subject": {"entities": [{"type": "Device"}]}}, "id and idPattern"),
        ({"subject": {"entities": [{"idPattern": "("}]}}, "idPattern"),
        ({"notification": {"http": {"url": "ftp://x"}}}, "url"),
        ({"notification": {"http": {"url": "http://x"}, "attrsFormat": "xml"}}, "attrsFormat"),
        ({"throttling": -1}, "throttling"),
        ({"expires": "soon"}, "expires"),
        ({"subject": {"entities": [{"id": "a"}], "condition": {"expression": {"q": "a=="}}}}, "q"),
        ({"owner": "me"}, "owner"),
        (
            {
                "subject": {
                    "entities": [{"id": "a"}],
                    "condition": {"alterationTypes": ["entityMoved"]},
                }
            },
            "entityMoved",
        ),
    ],
)
def test_a_bad_subscription_is_refused_with_a_reason(city, change, error):
    run, _ = city
    status, _, answer = post(
        run, subscription("http://127.0.0.1:9/x") | change, Authorization=f"Bearer {TOKEN}"
    )
    assert status == 400 and answer["error"] == "BadRequest" and error in answer["description"]


def test_subscriptions_survive_a_restart(tmp_path):
    config = store_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
    run = start(config)
    cookie = login(run.url)
    assert post(run, subscription("http://127.0.0.1:9/x"), Cookie=cookie)[0] == 201
    run.stop()
    again = start(config)
    try:
        cookie = login(again.url)
        request = urllib.request.Request(
            again.url + "ngsi/v2/subscriptions", headers={"Cookie": cookie}
        )
        listed = json.loads(urllib.request.urlopen(request, timeout=10).read())
        assert [s["notification"]["http"]["url"] for s in listed] == ["http://127.0.0.1:9/x"]
        assert (tmp_path / "ngsi-subscriptions.json").stat().st_mode & 0o077 == 0
    finally:
        again.stop()
