"""City store benchmark: ingest throughput against a plain paho subscriber, and API latency.

Ingest: the same N QoS 1 messages are queued at Mosquitto for every subscriber's persistent
session while they are away; then each one connects alone and drains its queue. The baseline is a
plain paho subscriber that only counts (MQTT 3.1.1, automatic acks: the fastest paho gets); the
store (its own lean MQTT 5 client) validates every envelope, writes batches and acknowledges each
message only after its commit. The store's client alone, counting, is measured too: the ceiling.
All are timed from their first message to their last, so process start-up counts for none. The
ratio store/baseline, measured in the same run on the same broker, is the figure.
Then API latency (p50/p99) of "latest" and of a 7-day series, over HTTP, against a store holding
30 days of 10-minute readings from 20 gauges.

    python bench/store.py [--messages 50000] [--requests 300]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.runtime.clock import Clock  # noqa: E402
from edge.runtime.uplink import MqttConfig  # noqa: E402
from gateway.store.config import HttpConfig, IngestConfig, StoreConfig  # noqa: E402
from gateway.store.db import open_store  # noqa: E402
from gateway.store.ingest import ALL  # noqa: E402
from gateway.store.intake import Batch, classify  # noqa: E402
from gateway.store.service import StoreService  # noqa: E402
from gateway.store.subscriber import Subscriber  # noqa: E402
from sim.broker import Mosquitto  # noqa: E402
from sim.postgres import Postgres  # noqa: E402

DEVICES = 20
BASELINE_ID = "bench-plain"


def envelope(device: str, seq: int, ts: str) -> bytes:
    data = {"level_m": round(1 + seq % 100 / 100, 3), "distance_mm": 3766, "valid": 9, "samples": 9}
    body = {"v": 1, "device": device, "seq": seq, "ts": ts, "type": "level", "data": data}
    return json.dumps(body, separators=(",", ":")).encode()


def publish(broker: Mosquitto, n: int) -> None:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-pub")
    client.max_inflight_messages_set(1000)
    client.connect(broker.host, broker.port)
    client.loop_start()
    ts = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    info = None
    for i in range(n):
        device = f"river-{i % DEVICES + 1:02d}"
        info = client.publish(
            f"machimori/v1/river/{device}/telemetry", envelope(device, i // DEVICES, ts), qos=1
        )
    if info is not None:
        info.wait_for_publish(120)
    client.loop_stop()
    client.disconnect()


def plain_client(broker: Mosquitto) -> mqtt.Client:
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2, client_id=BASELINE_ID, clean_session=False
    )
    client.connect(broker.host, broker.port)
    return client


def plain_session(broker: Mosquitto) -> None:
    client = plain_client(broker)
    client.subscribe("machimori/v1/#", qos=1)
    client.loop(1.0)
    client.loop(1.0)
    client.disconnect()


def plain_drain(broker: Mosquitto, n: int) -> float:
    """Messages/s of a paho subscriber that only counts, from its first message to its last."""
    count = 0
    first = 0.0
    done = threading.Event()

    def on_message(*_: object) -> None:
        nonlocal count, first
        count += 1
        if count == 1:
            first = time.perf_counter()
        if count == n:
            done.set()

    client = plain_client(broker)
    client.on_message = on_message
    client.loop_start()
    if not done.wait(300):
        raise RuntimeError(f"baseline got {count} of {n}")
    elapsed = time.perf_counter() - first
    client.loop_stop()
    client.disconnect()
    return n / elapsed


def lean_subscriber(broker: Mosquitto, on_messages: Any) -> Subscriber:
    config = MqttConfig(host=broker.host, port=broker.port)
    return Subscriber(
        config, "bench-lean", [ALL], on_messages, session_expiry_s=3600, receive_max=8000
    )


def lean_session(broker: Mosquitto) -> None:
    subscriber = lean_subscriber(broker, lambda *_: None)
    subscriber.start()
    assert subscriber.subscribed.wait(10)
    subscriber.stop()


def lean_drain(broker: Mosquitto, n: int) -> float:
    """Messages/s of the store's own MQTT client when it only counts and acks at once: the
    ceiling the store's validation and writes are taken from."""
    count = 0
    first = 0.0
    done = threading.Event()
    subscriber: Subscriber

    def on_messages(publishes: list[Any], generation: int) -> None:
        nonlocal count, first
        if count == 0:
            first = time.perf_counter()
        count += len(publishes)
        subscriber.ack([p.packet_id for p in publishes], generation)
        if count >= n:
            done.set()

    subscriber = lean_subscriber(broker, on_messages)
    subscriber.start()
    if not done.wait(300):
        raise RuntimeError(f"lean subscriber got {count} of {n}")
    elapsed = time.perf_counter() - first
    subscriber.stop()
    return n / elapsed


def store_config(
    broker: Mosquitto, name: str, database: str, tmp: Path, workers: int, acks: bool
) -> StoreConfig:
    config = StoreConfig(
        database=database,
        images_dir=tmp / "images",
        ingest=IngestConfig(
            client_id=f"bench-{name}-{workers}-{acks}",
            shared_group=f"bench-{name}" if workers > 1 else None,
            workers=workers,
            publish_acks=acks,
        ),
        http=HttpConfig(enabled=False),
    )
    config.mqtt.host, config.mqtt.port = broker.host, broker.port
    return config


def write_config(config: StoreConfig, path: Path) -> Path:
    """The same settings as a YAML file, for the extra worker processes."""
    import yaml

    text = {
        "database": config.database,
        "images_dir": str(config.images_dir),
        "mqtt": {"host": config.mqtt.host, "port": config.mqtt.port},
        "ingest": {
            "client_id": config.ingest.client_id,
            "shared_group": config.ingest.shared_group,
            "workers": config.ingest.workers,
            "publish_acks": config.ingest.publish_acks,
        },
        "http": {"enabled": False},
    }
    path.write_text(yaml.safe_dump(text))
    return path


def stored(database: str) -> int:
    store = open_store(database)
    try:
        return sum(d.received for d in store.devices())
    finally:
        store.close()


def store_session(config: StoreConfig, config_path: Path) -> None:
    """Connect every worker once so the broker keeps a session (and queue) for each."""
    service = StoreService(config, http=False, retention=False, config_path=config_path)
    try:
        service.start()
        assert service.ingest is not None and service.ingest.subscribed.wait(10)
        time.sleep(3.0 if config.ingest.workers > 1 else 0.2)  # extra workers subscribe too
    finally:
        service.stop()


def store_drain(config: StoreConfig, config_path: Path, n: int) -> float:
    """Messages/s stored (committed, then acknowledged), from the first stored to the last."""
    service = StoreService(config, http=False, retention=False, config_path=config_path)
    try:
        service.start()
        deadline = time.perf_counter() + 300
        while (count := stored(config.database)) == 0:
            time.sleep(0.005)
        first, at_first = time.perf_counter(), count
        while (count := stored(config.database)) < n:
            if time.perf_counter() > deadline:
                raise RuntimeError(f"store stored {count} of {n}")
            time.sleep(0.02)
        return (n - at_first) / (time.perf_counter() - first)
    finally:
        service.stop()


def ingest_runs(
    broker: Mosquitto, runs: list[tuple[str, str, int, bool]], tmp: Path, n: int
) -> None:
    """``runs``: (backend name, an empty database, ingest workers, acknowledgements on). A run
    without acknowledgements is the store as it was before end-to-end acknowledgement."""
    configs = {}
    for name, url, workers, acks in runs:
        config = store_config(broker, name, url, tmp, workers, acks)
        path = write_config(config, tmp / f"{name}-{workers}-{acks}.yaml")
        configs[(name, workers, acks)] = (config, path)
        store_session(config, path)
    plain_session(broker)
    lean_session(broker)
    print(f"queueing {n} messages from {DEVICES} gauges for every subscriber ...", flush=True)
    publish(broker, n)
    baseline = plain_drain(broker, n)
    print(f"  plain paho subscriber (counts only)    {baseline:9,.0f} msg/s")
    lean = lean_drain(broker, n)
    print(
        f"  the store's own MQTT client, counting {lean:9,.0f} msg/s"
        f"   ratio {lean / baseline:.2f} (the receive ceiling)"
    )
    rates = {}
    for name, _url, workers, acks in runs:
        config, path = configs[(name, workers, acks)]
        rate = rates[(name, workers, acks)] = store_drain(config, path, n)
        label = "acks on " if acks else "acks off"
        print(
            f"  store, {name:<10} {workers} ingest worker(s), {label}  {rate:9,.0f} msg/s"
            f"   ratio {rate / baseline:.2f}"
        )
    for (name, workers, acks), rate in rates.items():
        before = rates.get((name, workers, False))
        if acks and before:
            print(
                f"  {name} {workers} worker(s): with acknowledgements / without"
                f" (before end-to-end acks) = {rate / before:.2f}"
            )


def fill(database: str, days: int) -> None:
    """``days`` of 10-minute readings from every gauge, written through the store's own path."""
    store = open_store(database)
    end = datetime.now(UTC)
    steps = days * 24 * 6
    for device_no in range(1, DEVICES + 1):
        device = f"river-{device_no:02d}"
        batch = Batch(received_ms=0)
        for i in range(steps):
            ts = (end - timedelta(minutes=10 * (steps - i))).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            topic = f"machimori/v1/river/{device}/telemetry"
            batch.add(classify(topic, envelope(device, i, ts), 0))  # type: ignore[arg-type]
        store.write(batch)
    store.close()


def latency(url: str, requests: int) -> tuple[float, float]:
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        with urllib.request.urlopen(url) as response:
            response.read()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


def api_runs(databases: dict[str, str], tmp: Path, requests: int) -> None:
    print(f"API latency over HTTP, {requests} requests each, 30 days x {DEVICES} gauges stored:")
    for name, url in databases.items():
        fill(url, 30)
        config = StoreConfig(database=url, images_dir=tmp / "images", http=HttpConfig(port=0))
        service = StoreService(config, ingest=False, retention=False, clock=Clock())
        service.start()
        assert service.url is not None
        end = datetime.now(UTC)
        start = (end - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for label, path in (
            ("latest", "api/v1/latest?kind=river"),
            ("7-day series, raw", f"api/v1/devices/river-07/series?from={start}"),
            ("7-day series, 1 h", f"api/v1/devices/river-07/series?from={start}&step=3600"),
        ):
            latency(service.url + path, 20)  # warm up
            p50, p99 = latency(service.url + path, requests)
            print(f"  {name:<10} {label:<20} p50 {p50:6.1f} ms   p99 {p99:6.1f} ms")
        service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Mosquitto() as broker, Postgres(fsync=True) as pg:
        work = Path(tmp)
        runs = [
            (name, url, workers, acks)
            for workers, acks in ((1, False), (1, True), (2, True))
            for name, url in (
                ("sqlite", f"sqlite:///{work / f'ingest-{workers}-{acks}.db'}"),
                ("postgresql", pg.create_database(f"ingest_{workers}_{str(acks).lower()}")),
            )
        ]
        ingest_runs(broker, runs, work, args.messages)
        api_dbs = {
            "sqlite": f"sqlite:///{work / 'api.db'}",
            "postgresql": pg.create_database("api"),
        }
        api_runs(api_dbs, work, args.requests)


if __name__ == "__main__":
    main()
