"""Throughput of the durable outbox + MQTT uplink against plain paho QoS 1, in the same run.

Both sides publish the same envelopes to the same Mosquitto with the same in-flight window and
count a message done at its PUBACK. The machimori side also writes each message to SQLite before
sending and deletes it on PUBACK. Then the idle cost of a real river agent process: RSS and CPU.

    python bench/outbox.py [--messages 5000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import threading
import time
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


def machimori(broker: Mosquitto, n: int, sync: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        clock = Clock()
        outbox = Outbox(Path(tmp) / "o.db", "bench-01", sync=sync)
        config = MqttConfig(host=broker.host, port=broker.port, inflight=INFLIGHT)
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
    with Mosquitto() as broker:
        baseline = plain_paho(broker, args.messages)
        full = machimori(broker, args.messages, "full")
        normal = machimori(broker, args.messages, "normal")
        rss, cpu = idle_agent(broker, args.idle_seconds)
    print(f"messages per run: {args.messages}, in-flight window {INFLIGHT}, QoS 1, loopback")
    rows = [
        ("plain paho QoS 1 (baseline)", baseline),
        ("outbox (sync=full, power-loss safe) + uplink", full),
        ("outbox (sync=normal, crash safe) + uplink", normal),
    ]
    print(f"{'path':<46} {'msg/s':>9} {'ratio':>6}")
    for name, rate in rows:
        print(f"{name:<46} {rate:>9.0f} {rate / baseline:>6.2f}")
    print(f"idle river agent: RSS {rss:.1f} MiB, CPU {cpu:.2f} % of one core")


if __name__ == "__main__":
    main()
