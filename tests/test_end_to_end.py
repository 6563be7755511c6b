"""Nothing lost when the broker crashes: a reading leaves a device only when the city store has it.

MQTT river gauges (their own processes, as on a device) and LoRaWAN gauges (real frames through a
simulated packet forwarder into the real gateway) report every fraction of a second while the store
ingests. Mosquitto is killed with SIGKILL and comes back without its persistence file: no sessions,
nothing queued, no retained acknowledgements. Every seq a device issued must then be in the store
exactly once, with no gap; the same when the store itself is down across the crash and comes back
only after the devices have reconnected and published to a broker that had nobody to give it to.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from river.river_rig import LoraNetwork, level_payload
from river_process import write_river_config
from store.store_helpers import start, store_config

from edge.protocol import Envelope
from sim.devices.ultrasonic import UltrasonicSim

MQTT_GAUGES = ("river-m1", "river-m2")
LORA_GAUGES = ("river-l1", "river-l2")


class MqttGauge:
    """A river agent process on a simulated sensor, confirming through the store."""

    def __init__(self, tmp_path: Path, broker, device: str, **outbox) -> None:
        self.device = device
        self.sensor = UltrasonicSim("a02yyuw", lambda: 2000.0)
        self.outbox = tmp_path / f"{device}.db"
        self.config = write_river_config(
            tmp_path / f"{device}.yaml",
            device,
            broker,
            self.sensor.path,
            {"path": str(self.outbox), "sync": "normal", **outbox},
            interval_s=0.2,
            confirm_timeout_s=3.0,
            confirm_timeout_max_s=6.0,
        )
        self.log = tmp_path / f"{device}.log"
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "machimori", "agent", "run", "--config", str(self.config)],
                stdout=log,
                stderr=log,
            )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(timeout=30) == 0, self.log.read_text()[-2000:]
        self.sensor.close()

    def issued(self) -> set[int]:
        with contextlib.closing(sqlite3.connect(self.outbox, timeout=5)) as db:
            (value,) = db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
        return set(range(int(value)))

    def held(self) -> set[int]:
        """Seqs still in the device's outbox (never lost: it sends them when it can)."""
        with contextlib.closing(sqlite3.connect(self.outbox, timeout=5)) as db:
            return {row[0] for row in db.execute("SELECT seq FROM message WHERE seq IS NOT NULL")}


class LoraGauges:
    """LoRaWAN gauges on the air, one thread: each sends its next reading as a confirmed uplink
    and moves on only when the network acknowledged it, as a gauge's outbox does."""

    def __init__(self, network: LoraNetwork, names: tuple[str, ...]) -> None:
        self.radios = {network.ids[name]: network.radio(name) for name in names}
        self.next = dict.fromkeys(self.radios, 0)
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop_event.is_set():
            for device, radio in self.radios.items():
                if not radio.joined and not radio.join():  # at the MAC layer's DR2
                    continue
                port, payload = level_payload(self.next[device])
                acknowledged, _ = radio.send(port, payload, confirmed=True)
                if acknowledged:
                    self.next[device] += 1
            self.stop_event.wait(0.1)

    def stop(self) -> None:
        self.stop_event.set()
        self.thread.join(timeout=20)


def stored_seqs(store, device: str) -> list[int]:
    """Every seq the store holds for ``device``, with repeats if there were any."""
    rows = store._rows("SELECT seq FROM messages WHERE device = ? ORDER BY seq", (device,))
    return [row[0] for row in rows]


def wait_for(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@pytest.mark.parametrize("seed", [3, 11])
@pytest.mark.parametrize("store_down", [False, True], ids=["store-up", "store-restarted-later"])
def test_broker_sigkill_without_persistence_loses_nothing(tmp_path, own_broker, seed, store_down):
    rng = random.Random(seed)
    store = start(store_config(tmp_path, f"sqlite:///{tmp_path}/city.db", own_broker))
    network = LoraNetwork(tmp_path, own_broker, list(LORA_GAUGES), confirm="store")
    gauges = [MqttGauge(tmp_path, own_broker, device) for device in MQTT_GAUGES]
    lora = LoraGauges(network, LORA_GAUGES)
    devices = [*MQTT_GAUGES, *network.ids.values()]
    try:
        wait_for(
            lambda: all(len(stored_seqs(store.store, d)) >= 8 for d in devices),
            60,
            "readings from every gauge before the crash",
        )
        time.sleep(rng.uniform(0.0, 1.5))  # the crash lands anywhere in the stream
        own_broker.kill()
        own_broker.forget()
        before = {d: len(stored_seqs(store.store, d)) for d in devices}
        if store_down:
            store.stop()
        time.sleep(rng.uniform(1.0, 2.5))  # the devices keep measuring; nothing to send to
        own_broker.start()
        if store_down:
            # devices and the gateway reconnect and publish to a broker that holds no session
            # for the store: what they send now is acknowledged by the broker and dropped
            time.sleep(rng.uniform(2.0, 3.0))
            store = start(store_config(tmp_path, f"sqlite:///{tmp_path}/city.db", own_broker))
        wait_for(
            lambda: all(len(stored_seqs(store.store, d)) >= before[d] + 10 for d in devices),
            60,
            "readings after the crash",
        )
        lost_session = store.service.ingest.stats.snapshot()
        assert lost_session.get("broker_sessions_lost") == 1, lost_session
        assert lost_session["broker_session_lost_ms"] is not None
        with urllib.request.urlopen(f"{store.url}healthz", timeout=10) as response:
            warnings = json.loads(response.read())["warnings"]
        assert len(warnings) == 1 and "the broker lost the store's session" in warnings[0]
    finally:
        lora.stop()
        for gauge in gauges:
            gauge.stop()
        network.close()

    def complete() -> bool:
        mqtt_done = all(set(stored_seqs(store.store, g.device)) == g.issued() for g in gauges)
        lora_done = all(
            set(stored_seqs(store.store, device)) == set(range(lora.next[device]))
            for device in network.ids.values()
        )
        return mqtt_done and lora_done

    with contextlib.suppress(AssertionError):
        wait_for(complete, 30, "every issued seq in the store")
    for gauge in gauges:
        seqs = stored_seqs(store.store, gauge.device)
        assert len(seqs) == len(set(seqs)), f"{gauge.device}: a seq stored twice"
        missing = sorted(gauge.issued() - set(seqs))
        assert missing == [], f"{gauge.device} lost {missing} (still on the device: {gauge.held()})"
    for device in network.ids.values():
        seqs = stored_seqs(store.store, device)
        assert len(seqs) == len(set(seqs)), f"{device}: a seq stored twice"
        # the gateway acknowledged these over the air; the device has forgotten them
        missing = sorted(set(range(lora.next[device])) - set(seqs))
        assert missing == [], f"{device} lost {missing}"
        row = store.store.device(device)
        assert row.lost == 0 and row.received == lora.next[device]
    store.stop()


def test_an_oversized_reading_is_rejected_and_counted_and_the_rest_stored(tmp_path, own_broker):
    import paho.mqtt.client as mqtt

    store = start(store_config(tmp_path, f"sqlite:///{tmp_path}/city.db", own_broker))
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="river-big")
    client.connect(own_broker.host, own_broker.port)
    client.loop_start()
    topic = "machimori/v1/river/river-big/telemetry"
    ts = "2026-11-22T10:00:00.000Z"
    big = Envelope("river-big", 0, ts, "level", {"level_m": 1.0, "note": "x" * 100_000})
    client.publish(topic, big.to_json(), qos=1).wait_for_publish(10)
    small = Envelope("river-big", 1, ts, "level", {"level_m": 1.0})
    client.publish(topic, small.to_json(), qos=1).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()
    wait_for(lambda: stored_seqs(store.store, "river-big") == [1], 20, "the valid reading")
    counts = store.service.ingest.stats.snapshot()
    assert counts["rejected"] == 1
    rejected = store.store._rows("SELECT reason, detail FROM rejected")
    assert rejected == [("envelope_too_large", f"{len(big.to_json())} bytes, limit 65536")]
    store.stop()


def test_the_store_acknowledges_once_per_batch_and_not_a_quiet_device(tmp_path, own_broker):
    """The watermark is retained per device, one publication per batch, none for silence."""
    import paho.mqtt.client as mqtt

    store = start(store_config(tmp_path, f"sqlite:///{tmp_path}/city.db", own_broker))
    acks: list[tuple[str, dict]] = []
    seen = threading.Event()
    watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="ack-watcher")
    watcher.on_connect = lambda c, *_: c.subscribe("machimori/v1/+/+/ack", qos=1)
    watcher.on_subscribe = lambda *_: seen.set()
    watcher.on_message = lambda _c, _u, m: acks.append((m.topic, json.loads(m.payload)))
    watcher.connect(own_broker.host, own_broker.port)
    watcher.loop_start()
    assert seen.wait(10)
    device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="river-q")
    device.connect(own_broker.host, own_broker.port)
    device.loop_start()
    topic = "machimori/v1/river/river-q/telemetry"
    ts = "2026-11-22T10:00:00.000Z"
    for seq in (0, 1, 2, 4, 5):  # 3 is missing: held above the watermark, not under it
        payload = Envelope("river-q", seq, ts, "level", {"level_m": 1.0}).to_json()
        device.publish(topic, payload, qos=1).wait_for_publish(10)
    wait_for(lambda: len(stored_seqs(store.store, "river-q")) == 5, 20, "five readings")
    wait_for(lambda: acks and acks[-1][1].get("held") == [[4, 5]], 10, "the last ack")
    published = store.service.ingest.stats.snapshot()["acks_published"]
    assert published == len(acks) <= 5
    assert acks[-1] == (
        "machimori/v1/river/river-q/ack",
        {"v": 1, "device": "river-q", "seq": 2, "held": [[4, 5]]},
    )
    time.sleep(1.5)  # a quiet device costs nothing
    assert store.service.ingest.stats.snapshot()["acks_published"] == published
    # the missing reading arrives: the watermark passes over everything
    payload = Envelope("river-q", 3, ts, "level", {"level_m": 1.0}).to_json()
    device.publish(topic, payload, qos=1).wait_for_publish(10)
    wait_for(lambda: acks[-1][1]["seq"] == 5, 10, "the watermark at 5")
    device.loop_stop()
    device.disconnect()
    watcher.loop_stop()
    watcher.disconnect()
    store.stop()


def test_a_gap_the_full_outbox_made_is_passed_over_and_nothing_else_waits(tmp_path, own_broker):
    """The device's outbox of 10 drops its oldest readings while the broker is away. The store's
    watermark cannot wait for them for ever: the device's status tells its floor, the watermark
    passes the gap, and what the device still holds is confirmed and deleted."""
    store = start(store_config(tmp_path, f"sqlite:///{tmp_path}/city.db", own_broker))
    gauge = MqttGauge(tmp_path, own_broker, "river-m9", max_messages=10)
    try:
        wait_for(lambda: len(stored_seqs(store.store, "river-m9")) >= 5, 60, "first readings")
        own_broker.stop()
        at_outage = max(gauge.issued())
        wait_for(lambda: max(gauge.issued()) >= at_outage + 30, 60, "readings while away")
        own_broker.start()

        def watermark() -> int:
            return dict((d, w) for d, _k, w in store.store.watermarks()).get("river-m9", -1)

        wait_for(lambda: watermark() >= at_outage + 35, 60, "the watermark past the gap")
        wait_for(lambda: len(gauge.held()) <= 3, 60, "the device's outbox confirmed")
    finally:
        gauge.stop()
    with contextlib.closing(sqlite3.connect(gauge.outbox)) as db:
        (dropped,) = db.execute("SELECT value FROM meta WHERE key = 'dropped_full'").fetchone()
    row = store.store.device("river-m9")
    assert int(dropped) >= 15 and row.lost == int(dropped)
    store.stop()
