"""ChirpStack mode: ChirpStack v4 ``event/up`` JSON in, the same envelopes out.

The fixtures are written field by field after ChirpStack v4.1+'s ``integration.UplinkEvent`` and
``gw.UplinkRxInfo`` protobuf definitions in their JSON mapping (with ``fCnt``), as its MQTT
integration publishes them; they were not captured from a live ChirpStack."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import yaml
from gateway_rig import GATEWAY_ID, envelopes, gateway_events

from edge.protocol import Envelope, Topic, utc_timestamp
from edge.protocol.airtime import dr_time_on_air
from gateway.lorawan.chirpstack import ChirpStackError, parse_uplink_event

FIXTURES = Path(__file__).parent / "fixtures"
APPLICATION = "17c82e96-be03-4f38-aef3-f83d48582d97"
DEV_EUI = "ac1f09fffe000003"


def fixture(name):
    return (FIXTURES / name).read_bytes()


def test_uplink_event_fields_and_radio_metadata():
    event = parse_uplink_event(fixture("up_level_two_gateways.json"))
    assert (event.dev_eui, event.fport) == (0xAC1F09FFFE000003, 1)
    assert event.data == base64.b64decode("BNIM9twgBNKQ")
    assert event.radio == {
        "gateways": [
            {"id": "ac1f09fffe0a1b2c", "rssi": -97, "snr": 6.5},
            {"id": "ac1f09fffe0a1b2d", "rssi": -112, "snr": -4.25},
        ],
        "frequency_hz": 923_400_000,
        "datr": "SF10BW125",
        "dr": 2,
        "airtime_s": round(dr_time_on_air(2, 13 + 9), 4),
        "fcnt": 42,
    }


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"\xff\xfe", "bad_json"),
        (b"[1, 2]", "bad_json"),
        (b'{"deviceInfo": {"devEui": "zz"}}', "bad_event"),
        (b'{"deviceInfo": [], "data": ""}', "bad_event"),
        (b'{"deviceInfo": {"devEui": "01"}, "data": "%%%"}', "bad_event"),
        (b'{"deviceInfo": {"devEui": "01"}, "fPort": "1"}', "bad_event"),
        (b'{"deviceInfo": {"devEui": "01"}, "dr": 9}', "bad_event"),
        (b'{"deviceInfo": {"devEui": "01"}, "rxInfo": {"rssi": 1}}', "bad_event"),
    ],
)
def test_unusable_events_say_why(payload, reason):
    with pytest.raises(ChirpStackError) as err:
        parse_uplink_event(payload)
    assert err.value.reason == reason


@pytest.fixture
def chirpstack_config(tmp_path, broker, make_config):
    registry = {
        "devices": [{"id": "river-03", "kind": "river", "codec": "river-v1", "dev_eui": DEV_EUI}]
    }
    (tmp_path / "devices.yaml").write_text(yaml.safe_dump(registry))  # no keys: ChirpStack has them
    return make_config(broker, mode="chirpstack", chirpstack={"mqtt": {"port": broker.port}})


def test_chirpstack_events_become_the_same_envelopes(broker, chirpstack_config, gateway, watch):
    watcher = watch(broker)
    downlinks = watch(broker, "application/+/device/+/command/down")
    city = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    city.connect(broker.host, broker.port)
    city.loop_start()
    with gateway(chirpstack_config) as gw:
        for name in (
            "up_level_two_gateways.json",
            "up_crossing_confirmed.json",
            "up_bad_payload.json",
            "up_unknown_device.json",
        ):
            dev_eui = json.loads(fixture(name))["deviceInfo"]["devEui"]
            topic = f"application/{APPLICATION}/device/{dev_eui}/event/up"
            city.publish(topic, fixture(name), qos=1).wait_for_publish(5)
        seen = watcher.collect(lambda s: len(envelopes(s)) >= 1 and len(envelopes(s, "event")) >= 1)
        now = utc_timestamp(gw.service.clock.now())  # its application id is known by now
        cmd = Envelope("river-03", 1, now, "set_interval", {"interval_s": 300})
        city.publish(str(Topic("river", "river-03", "cmd")), cmd.to_json(), qos=1)
        # commands and ChirpStack events arrive on different subscriptions, in either order
        gw.wait_for(
            lambda: gw.stats.value("cmd.queued") == 1 and len(gw.stats.snapshot()["rejected"]) >= 2
        )
        assert gw.stats.snapshot()["rejected"] == {
            "chirpstack.unknown_device": 1,
            "decode.bad_length": 1,
        }
    (level,) = envelopes(seen)
    assert (level.device, level.seq, level.ts, level.type) == (
        "river-03",
        1234,
        "2026-11-22T10:00:00.000Z",
        "level",
    )
    assert level.data["level_m"] == 1.234 and len(level.data["radio"]["gateways"]) == 2
    (crossing,) = [e for e in envelopes(seen, "event") if e.device == "river-03"]
    assert (crossing.seq, crossing.type) == (1235, "level_crossing")
    assert crossing.data["threshold"] == "caution" and crossing.data["radio"]["dr"] == 3
    seen = watcher.collect(lambda s: gateway_events(s))
    (error,) = gateway_events(seen)
    assert (error.device, error.data["device"], error.data["reason"]) == (
        GATEWAY_ID,
        "river-03",
        "bad_length",
    )
    (down,) = downlinks.collect(lambda s: s)
    assert down.topic == f"application/{APPLICATION}/device/{DEV_EUI}/command/down"
    body = json.loads(down.payload)
    assert (body["devEui"], body["fPort"], body["confirmed"]) == (DEV_EUI, 10, False)
    assert base64.b64decode(body["data"]) == (300).to_bytes(4, "big")
    city.loop_stop()
    city.disconnect()
