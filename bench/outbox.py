"""Throughput of the durable outbox + MQTT uplink against plain paho QoS 1, in the same run.

Both sides publish the same envelopes to the same Mosquitto with the same in-flight window. Plain
paho counts a message done at its PUBACK. The machimori side also writes each message to SQLite
before sending, and counts it done when it leaves the outbox: on PUBACK (``confirm: broker``, as
before end-to-end acknowledgement), or when the city store, running in the same run, has committed
it and its acknowledgement covers it (``confirm: store``, the default). Then the idle cost of a
real river agent process: RSS and CPU.

    python bench/outbox.py [--messages 5000]
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psutil
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.protocol import Envelope, Topic, utc_timestamp  # noqa: E402
from edge.runtime.clock import Clock  # noqa: E402
from edge.runtime.health import Health  # noqa: E402
from edge.runtime.outbox import Outbox  # noqa: E402
from edge.runtime.uplink import MqttConfig, MqttUplink  # noqa: E402
from gateway.store.config import HttpConfig, IngestConfig, StoreConfig  # noqa: E402
from gateway.store.service import StoreService  # noqa: E402
from sim.broker import Mosquitto  # noqa: E402
from sim.devices.ultrasonic import UltrasonicSim  # noqa: E402

INFLIGHT = 20
TOPIC = Topic("river", "bench-01", "telemetry")
DATA = {"level_m": 1.234, "distance_mm": 3766, "valid": 9, "samples": 9}


def plain_paho(broker: Mosquitto, n: int) -> float:
    done = threading.Semaphore(0)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-plain")
    client.max_inflight_messages_set(INFLIGHT)
    client.on_publish = lambda *_: done.release()
    client.connect(broker.host, broker.port)
    client.loop_start()
    ts = utc_timestamp(Clock().now())
    started = time.perf_counter()
    for seq in range(n):
        payload = Envelope("bench-01", seq, ts, "level", DATA).to_json()
        client.publish(str(TOPIC), payload, qos=1)
    for _ in range(n):
        done.acquire()
    elapsed = time.perf_counter() - started
    client.loop_stop()
    client.disconnect()
    return n / elapsed


def machimori(broker: Mosquitto, n: int, sync: str, confirm: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock()
        outbox = Outbox(Path(tmp) / "o.db", "bench-01", sync=sync)
        config = MqttConfig(host=broker.host, port=broker.port, inflight=INFLIGHT, confirm=confirm)
        uplink = MqttUplink(config, "river", "bench-01", outbox, Health(clock), clock)
        uplink.start()
        uplink.connected.wait(10)
        ts = utc_timestamp(clock.now())
        started = time.perf_counter()
        for _ in range(n):
            outbox.add(TOPIC, "level", DATA, ts)
            uplink.wake.set()
        while outbox.depth:
            time.sleep(0.001)
        elapsed = time.perf_counter() - started
        uplink.stop(1.0)
        outbox.close()
    return n / elapsed


def idle_agent(broker: Mosquitto, seconds: float) -> tuple[float, float]:
    """RSS (MiB) and CPU share (%) of a river agent between its 10-minute readings."""
    with tempfile.TemporaryDirectory() as tmp, UltrasonicSim("a02yyuw", lambda: 2000.0) as sensor:
        config = Path(tmp) / "river.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "device": {"id": "river-99", "kind": "river"},
                    "agent": "river",
                    "mqtt": {"host": broker.host, "port": broker.port},
                    "outbox": {"path": f"{tmp}/o.db"},
                    "river": {"sensor": {"port": sensor.path}, "interval_s": 600},
                }
            )
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "machimori", "agent", "run", "--config", str(config)]
        )
        try:
            agent = psutil.Process(proc.pid)
            time.sleep(3)  # start-up and the first reading
            before = agent.cpu_times()
            time.sleep(seconds)
            after = agent.cpu_times()
            rss = agent.memory_info().rss / 2**20
        finally:
            proc.terminate()
            proc.wait(20)
    cpu = (after.user + after.system - before.user - before.system) / seconds * 100
    return rss, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    args = parser.parse_args()
    with Mosquitto() as broker, tempfile.TemporaryDirectory() as tmp, city_store(broker, tmp):
        baseline = plain_paho(broker, args.messages)
        rates = {
            (sync, confirm): machimori(broker, args.messages, sync, confirm)
            for confirm in ("broker", "store")
            for sync in ("full", "normal")
        }
        rss, cpu = idle_agent(broker, args.idle_seconds)
    print(f"messages per run: {args.messages}, in-flight window {INFLIGHT}, QoS 1, loopback")
    names = {"full": "sync=full, power-loss safe", "normal": "sync=normal, crash safe"}
    print(f"{'path':<76} {'msg/s':>9} {'ratio':>6}")
    print(f"{'plain paho QoS 1 (baseline)':<76} {baseline:>9.0f} {1:>6.2f}")
    for (sync, confirm), rate in rates.items():
        until = "store acknowledged" if confirm == "store" else "PUBACK"
        name = f"outbox ({names[sync]}) + uplink, kept until {until}"
        print(f"{name:<76} {rate:>9.0f} {rate / baseline:>6.2f}")
    for sync in ("full", "normal"):
        ratio = rates[(sync, "store")] / rates[(sync, "broker")]
        print(f"sync={sync}: until the store acknowledged / until PUBACK (before) = {ratio:.2f}")
    print(f"idle river agent: RSS {rss:.1f} MiB, CPU {cpu:.2f} % of one core")


@contextlib.contextmanager
def city_store(broker: Mosquitto, tmp: str) -> Iterator[None]:
    """The city store on SQLite, acknowledging what it committed."""
    config = StoreConfig(
        database=f"sqlite:///{tmp}/city.db",
        images_dir=Path(tmp) / "images",
        ingest=IngestConfig(client_id="bench-outbox-store"),
        http=HttpConfig(enabled=False),
    )
    config.mqtt.host, config.mqtt.port = broker.host, broker.port
    service = StoreService(config, http=False, retention=False)
    service.start()
    try:
        assert service.ingest is not None and service.ingest.subscribed.wait(10)
        yield
    finally:
        service.stop()


if __name__ == "__main__":
    main()
