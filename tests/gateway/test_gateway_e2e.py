"""The gateway as the city sees it: a simulated device joins over OTAA through the UDP server,
its readings arrive on MQTT as its own envelopes, bad payloads become counted error events,
commands come back down and the city learns whether they arrived, and a restart neither forces a
re-join nor reopens a replay window."""

from __future__ import annotations

import json
import logging

import paho.mqtt.client as mqtt
from gateway_rig import (
    GATEWAY_ID,
    GW_EUI,
    TS,
    envelopes,
    gateway_events,
    join,
    level,
    otaa_device,
    statuses,
)

from edge.protocol import Envelope, Topic, utc_timestamp
from edge.runtime.logs import LogfmtFormatter
from gateway.lorawan.network import DevAddrSpace


def publish(broker, topic, payload):
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.connect(broker.host, broker.port)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()


def command(device_id, seq, type_, data):
    return Envelope(device_id, seq, utc_timestamp(TS), type_, data).to_json()


def test_otaa_device_joins_and_its_readings_arrive_as_envelopes(
    broker, make_config, gateway, forwarders, watch, keys
):
    watcher = watch(broker)
    with gateway(make_config(broker)) as gw:
        pf = forwarders(gw.address)
        device = otaa_device(keys)
        rxpk, accept = join(device, pf)
        assert accept.txpk.tmst == (rxpk.tmst + 5_000_000) % 2**32  # JOIN_ACCEPT_DELAY1
        assert device.dev_addr in DevAddrSpace.for_net_id(0)
        for seq in range(3):
            pf.uplink(level(device, seq, level_m=1.5 + seq / 10), rssi=-97, lsnr=-2.25)
        seen = watcher.collect(lambda s: len(envelopes(s)) >= 3)
        received = envelopes(seen)
        assert [(e.device, e.seq, e.ts, e.type) for e in received] == [
            ("river-lora-01", seq, f"2026-11-22T10:0{seq}:00.000Z", "level") for seq in range(3)
        ]
        assert [e.data["level_m"] for e in received] == [1.5, 1.6, 1.7]
        radio = received[0].data["radio"]
        assert radio["gateways"] == [{"id": f"{GW_EUI:016x}", "rssi": -97, "snr": -2.25}]
        assert (radio["frequency_hz"], radio["datr"], radio["dr"]) == (923_200_000, "SF10BW125", 2)
        assert 0.3 < radio["airtime_s"] < 0.4  # 22 octets at SF10: inside the 400 ms dwell
        topics = {m.topic for m in seen if "river" in m.topic}
        assert topics == {"machimori/v1/river/river-lora-01/telemetry"}
    seen = watcher.collect(lambda s: statuses(s) and statuses(s)[-1].state == "offline")
    health = statuses(seen)[-1].health
    assert health["lorawan"]["accepted"]["joins"] == 1
    assert health["lorawan"]["accepted"]["uplinks"] == 3
    assert health["outbox"]["queued"] == 0
    assert f"{GW_EUI:016x}" in health["lorawan"]["packet_forwarders"]


def test_payload_that_does_not_decode_is_a_counted_error_event(
    broker, make_config, gateway, forwarders, watch, keys
):
    watcher = watch(broker)
    with gateway(make_config(broker)) as gw:
        pf = forwarders(gw.address)
        device = otaa_device(keys)
        join(device, pf)
        pf.uplink(device.uplink(1, b"\x01\x02\x03"))  # too short for river-v1
        pf.uplink(device.uplink(9, bytes(9)))  # a port the codec does not use
        seen = watcher.collect(lambda s: len(gateway_events(s)) >= 2)
        errors = gateway_events(seen)
        assert [(e.device, e.type) for e in errors] == [(GATEWAY_ID, "uplink_error")] * 2
        assert errors[0].data == {
            "device": "river-lora-01",
            "fport": 1,
            "reason": "bad_length",
            "codec": "river-v1",
            "payload_hex": "010203",
        }
        assert errors[1].data["reason"] == "bad_fport"
        assert [e.seq for e in errors] == [0, 1]  # the gateway's own seq
        assert gw.stats.snapshot()["rejected"] == {"decode.bad_length": 1, "decode.bad_fport": 1}
        assert envelopes(seen) == []


def test_city_command_goes_down_in_rx1_after_the_next_uplink_and_its_delivery_is_reported(
    broker, make_config, gateway, forwarders, watch, keys
):
    watcher = watch(broker)
    with gateway(make_config(broker)) as gw:
        pf = forwarders(gw.address)
        device = otaa_device(keys)
        join(device, pf)
        cmd = str(Topic("river", "river-lora-01", "cmd"))
        publish(broker, cmd, b"not json")
        publish(broker, cmd, command("river-lora-01", 1, "set_interval", {"interval_s": 5}))
        publish(broker, cmd, command("river-lora-01", 2, "set_interval", {"interval_s": 60}))
        publish(broker, "machimori/v1/river/river-99/cmd", b"for a device that is not ours")
        gw.wait_for(lambda: gw.stats.value("cmd.queued") == 1)
        assert gw.stats.snapshot()["rejected"] == {"cmd.rejected": 2}
        assert "interval_s" in gw.service.health.last_error
        rxpk = pf.uplink(level(device, 0))
        downlink = pf.wait_downlink()
        assert downlink.txpk.tmst == (rxpk.tmst + 1_000_000) % 2**32  # RECEIVE_DELAY1
        assert downlink.txpk.freq == 923.2
        received = device.downlink(downlink.txpk.data)
        assert device.command(received) == ("set_interval", {"interval_s": 60})
        assert received.confirmed  # ConfirmedDataDown: the device must acknowledge it
        pf.uplink(level(device, 1))  # the device's next uplink carries the ACK
        seen = watcher.collect(lambda s: gateway_events(s))
        (event,) = gateway_events(seen)
        assert (event.device, event.type) == (GATEWAY_ID, "cmd_delivered")
        assert event.data == {
            "device": "river-lora-01",
            "command": "set_interval",
            "command_seq": 2,
            "fport": 10,
            "attempts": 1,
        }
        assert gw.stats.value("cmd.delivered") == 1


def test_a_command_never_acknowledged_is_sent_max_attempts_times_then_reported_failed(
    broker, make_config, gateway, forwarders, watch, keys
):
    watcher = watch(broker)
    with gateway(make_config(broker, lorawan={"cmd_max_attempts": 2})) as gw:
        pf = forwarders(gw.address)
        device = otaa_device(keys)
        join(device, pf)
        cmd = str(Topic("river", "river-lora-01", "cmd"))
        publish(broker, cmd, command("river-lora-01", 5, "set_interval", {"interval_s": 120}))
        gw.wait_for(lambda: gw.stats.value("cmd.queued") == 1)
        sent = []
        for seq in range(2):  # the device is out of reach of the gateway's transmitter
            pf.uplink(level(device, seq))
            sent.append(pf.wait_downlink().txpk.data)
        pf.uplink(level(device, 2))
        seen = watcher.collect(lambda s: gateway_events(s))
        (event,) = gateway_events(seen)
        assert event.type == "cmd_failed"
        assert event.data == {
            "device": "river-lora-01",
            "command": "set_interval",
            "command_seq": 5,
            "fport": 10,
            "attempts": 2,
        }
        assert len(set(sent)) == 2  # two distinct frames, each with its own FCntDown
        assert [device.command(device.downlink(phy)) for phy in sent] == [
            ("set_interval", {"interval_s": 120})
        ] * 2
        assert pf.downlinks.empty()  # given up: not sent a third time
    seen = watcher.collect(lambda s: statuses(s) and statuses(s)[-1].state == "offline")
    lorawan = statuses(seen)[-1].health["lorawan"]
    assert lorawan["accepted"]["cmd.sent"] == 2
    assert lorawan["rejected"] == {"cmd.unacknowledged": 1}


def test_restart_keeps_sessions_seq_and_the_replay_window_closed(
    broker, make_config, gateway, forwarders, watch, keys
):
    watcher = watch(broker)
    config = make_config(broker)
    device = otaa_device(keys)
    with gateway(config) as gw:
        pf = forwarders(gw.address)
        join(device, pf)
        captured = level(device, 65534)
        pf.uplink(captured)
        pf.uplink(level(device, 65535))
        watcher.collect(lambda s: len(envelopes(s)) >= 2)
    with gateway(config) as gw:  # same files: the gateway restarted
        pf = forwarders(gw.address)
        pf.uplink(captured)  # recorded before the restart, played again
        pf.uplink(level(device, 65536))  # the device just carries on, no new join
        seen = watcher.collect(lambda s: len(envelopes(s)) >= 3)
        gw.wait_for(lambda: gw.stats.value("frames") == 2)
        assert gw.stats.snapshot()["rejected"] == {"frame.fcnt_replay": 1}
        assert gw.stats.value("joins") == 0
    assert [e.seq for e in envelopes(seen)] == [65534, 65535, 65536]  # widened past 16 bits


def test_keys_never_appear_in_logs_status_or_messages(
    broker, make_config, gateway, forwarders, watch, keys, caplog
):
    watcher = watch(broker)
    caplog.set_level(logging.DEBUG)
    with gateway(make_config(broker, log_level="debug")) as gw:
        pf = forwarders(gw.address)
        device = otaa_device(keys)
        join(device, pf)
        pf.uplink(level(device, 0, confirmed=True))
        pf.wait_downlink()
        pf.uplink(device.uplink(1, b"\x00"))
        forged = bytearray(level(device, 1))
        forged[-1] ^= 0xFF
        pf.uplink(bytes(forged))
        device.dev_nonce = 0
        pf.uplink(device.join_request())
        gw.wait_for(lambda: gw.stats.value("frames") == 5)
    seen = watcher.collect(lambda s: statuses(s) and statuses(s)[-1].state == "offline")
    formatter = LogfmtFormatter()
    text = "\n".join(formatter.format(r) for r in caplog.records)
    text += "\n".join(m.payload.decode() for m in seen)
    assert "dev_nonce_reused" in text and "bad_mic" in text  # the rejections were logged
    secrets = keys.all_hex() + [device.nwk_s_key.hex(), device.app_s_key.hex()]
    for secret in secrets:
        assert secret not in text.lower()
    assert json.loads(seen[-1].payload)["state"] == "offline"
