"""Uplinks per second through the LoRaWAN gateway, end to end, against a baseline in the same run.

Both sides take the same Semtech PUSH_DATA datagrams over UDP and end when each message is on the
broker (QoS 1, acknowledged, seen by a subscriber). The gateway side is the real `machimori
gateway` service: deduplication, MIC check, FCnt, decryption, codec, envelope, session and outbox
writes. The baseline is the same UDP server, outbox and MQTT uplink with none of the LoRaWAN work:
the packets received within one deduplication window (200 ms) are queued in one outbox
transaction and the MQTT pump woken once, as the gateway does per batch. Each side runs in its
own process pinned to one core;
the sender (one forwarder keeping 64 PUSH_DATA unacknowledged, like a busy concentrator) and the
subscriber share another. Rows for both outbox sync modes: ``normal`` (crash safe, the CPU cost)
and ``full`` (fsync per message, power-loss safe; the gateway config's default).

    python bench/gateway.py [--uplinks 5000] [--devices 50] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import multiprocessing
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.protocol import Envelope, Topic, utc_timestamp  # noqa: E402
from edge.runtime.clock import Clock  # noqa: E402
from edge.runtime.health import Health  # noqa: E402
from edge.runtime.outbox import Outbox  # noqa: E402
from edge.runtime.uplink import MqttConfig, MqttUplink  # noqa: E402
from gateway.lorawan.config import GatewayConfig  # noqa: E402
from gateway.lorawan.dedup import Reception  # noqa: E402
from gateway.lorawan.semtech_udp import PushData, Rxpk  # noqa: E402
from gateway.lorawan.server import PacketForwarderServer, serve  # noqa: E402
from gateway.lorawan.service import GatewayService  # noqa: E402
from gateway.lorawan.stats import Stats  # noqa: E402
from sim.broker import Mosquitto  # noqa: E402
from sim.devices.lorawan_device import LoRaWANDevice  # noqa: E402

WINDOW = 64  # PUSH_DATA in flight
GW_EUI = 0xAA555A0000000001
START = datetime(2026, 11, 22, tzinfo=UTC)


def provision(directory: Path, broker: Mosquitto, devices: int, sync: str) -> tuple[Path, list]:
    """ABP devices (fake keys) in a registry, and a gateway config pointing at it."""
    registry, sims = [], []
    for i in range(devices):
        key = (i + 1).to_bytes(16, "big")
        registry.append(
            {
                "id": f"river-{i:03d}",
                "kind": "river",
                "codec": "river-v1",
                "dev_eui": f"{0xAC1F09FFFE000000 + i:016X}",
                "abp": {"dev_addr": f"{i + 1:08X}", "nwk_s_key": key.hex(), "app_s_key": key.hex()},
            }
        )
        sims.append(LoRaWANDevice(0, dev_addr=i + 1, nwk_s_key=key, app_s_key=key))
    (directory / "devices.yaml").write_text(yaml.safe_dump({"devices": registry}))
    config = {
        "gateway": {"id": "gw-bench"},
        "registry": "devices.yaml",
        "udp": {"bind": "127.0.0.1", "port": 0},
        # The bench forwarder opens no downlink route (no PULL_DATA): the periodic DevStatusReq,
        # one downlink per 96 uplinks, is off so the uplink path is measured as before.
        "lorawan": {"dev_status_every": 0},
        "mqtt": {"host": broker.host, "port": broker.port},
        "outbox": {"path": str(directory / "outbox.db"), "sync": sync},
        "state": {"path": str(directory / "state.db"), "sync": sync},
    }
    (directory / "gateway.yaml").write_text(yaml.safe_dump(config))
    return directory / "gateway.yaml", sims


def datagrams(sims: list[LoRaWANDevice], n: int) -> list[bytes]:
    """``n`` PUSH_DATA, one uplink each, round robin over the devices."""
    out = []
    for i in range(n):
        device = sims[i % len(sims)]
        seq = i // len(sims)
        phy = device.message(
            "telemetry", "level", seq, START + timedelta(minutes=seq), {"level_m": 1.5, "valid": 9}
        )
        rxpk = Rxpk(tmst=i * 1000, freq=923.2, datr="SF7BW125", rssi=-90, lsnr=7.0, data=phy)
        out.append(PushData(i % 65536, GW_EUI, (rxpk,)).to_bytes())
    return out


def run_gateway(config: Path, port: multiprocessing.Value, stop: multiprocessing.Event) -> None:
    os.sched_setaffinity(0, {0})
    service = GatewayService(GatewayConfig.load(config))
    halt = threading.Event()
    thread = threading.Thread(target=service.run, args=(halt,))
    thread.start()
    service.ready.wait(10)
    port.value = service.udp_port
    stop.wait()
    halt.set()
    thread.join()


def run_baseline(config: Path, port: multiprocessing.Value, stop: multiprocessing.Event) -> None:
    """The same UDP server, outbox and uplink; each packet is queued as received."""
    os.sched_setaffinity(0, {0})
    cfg = GatewayConfig.load(config)
    clock = Clock()
    outbox = Outbox(cfg.outbox.path, "gw-bench", sync=cfg.outbox.sync)
    mqtt_config = MqttConfig(host=cfg.mqtt.host, port=cfg.mqtt.port)
    uplink = MqttUplink(mqtt_config, "gateway", "gw-bench", outbox, Health(clock), clock)
    topic = Topic("gateway", "gw-bench", "telemetry")
    seq = itertools.count()
    pending: list[Reception] = []

    def flush() -> None:
        with outbox.batch():  # one transaction per window, as the gateway has per batch
            for reception in pending:
                raw = {"phy": reception.rxpk.data.hex(), "rssi": reception.rxpk.rssi}
                envelope = Envelope("gw-bench", next(seq), utc_timestamp(clock.now()), "raw", raw)
                outbox.add_raw(topic, envelope.to_json())
        pending.clear()
        uplink.wake.set()

    def queue(reception: Reception) -> None:
        if not pending:  # the gateway's deduplication window, without deduplicating
            asyncio.get_running_loop().call_later(cfg.lorawan.dedup_window_s, flush)
        pending.append(reception)

    async def main() -> None:
        transport = await serve(PacketForwarderServer(Stats(clock), queue), "127.0.0.1", 0)
        port.value = transport.get_extra_info("sockname")[1]
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        transport.close()

    uplink.start()
    asyncio.run(main())
    uplink.stop(1.0)


def measure(target, config: Path, broker: Mosquitto, payloads: list[bytes], topic: str) -> float:
    """Uplinks per second from the first datagram sent to the last message on the broker."""
    port, stop = multiprocessing.Value("i", 0), multiprocessing.Event()
    proc = multiprocessing.Process(target=target, args=(config, port, stop))
    proc.start()
    received = threading.Semaphore(0)
    subscribed = threading.Event()
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=0)
    client.on_subscribe = lambda *_: subscribed.set()
    client.on_message = lambda *_: received.release()
    client.connect(broker.host, broker.port)
    client.loop_start()
    subscribed.wait(10)
    while port.value == 0:
        time.sleep(0.05)
    time.sleep(1.0)  # let the uplink connect to the broker
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect(("127.0.0.1", port.value))
    sock.settimeout(10)
    started = time.perf_counter()
    sent = acked = 0
    while acked < len(payloads):
        while sent < len(payloads) and sent - acked < WINDOW:
            sock.send(payloads[sent])
            sent += 1
        sock.recv(16)
        acked += 1
    for _ in payloads:
        if not received.acquire(timeout=60):
            raise TimeoutError("messages did not all reach the broker")
    elapsed = time.perf_counter() - started
    client.loop_stop()
    client.disconnect()
    stop.set()
    proc.join(30)
    return len(payloads) / elapsed


def trial(target, broker: Mosquitto, args: argparse.Namespace, sync: str, topic: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        config, sims = provision(Path(tmp), broker, args.devices, sync)
        return measure(target, config, broker, datagrams(sims, args.uplinks), topic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uplinks", type=int, default=5000)
    parser.add_argument("--devices", type=int, default=50)
    parser.add_argument("--runs", type=int, default=3, help="trials per cell; the median is shown")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) > 1:
        os.sched_setaffinity(0, set(os.sched_getaffinity(0)) - {0})  # sender off the gateway's core
    rows = []
    with Mosquitto() as broker:
        for sync in ("normal", "full"):
            base, full = [], []
            for _ in range(args.runs):  # interleaved, so a busy moment hits both sides alike
                base.append(trial(run_baseline, broker, args, sync, "machimori/v1/gateway/#"))
                full.append(trial(run_gateway, broker, args, sync, "machimori/v1/river/#"))
            rows.append((sync, statistics.median(base), statistics.median(full)))
    print(
        f"{args.uplinks} uplinks from {args.devices} ABP devices at SF7, one forwarder, "
        f"{WINDOW} PUSH_DATA in flight; gateway on one core; Mosquitto QoS 1 on loopback; "
        f"median of {args.runs}"
    )
    print(f"{'outbox/state sync':<18} {'baseline up/s':>14} {'LoRaWAN up/s':>13} {'ratio':>6}")
    for sync, base, full in rows:
        print(f"{sync:<18} {base:>14.0f} {full:>13.0f} {full / base:>6.2f}")
    print(
        "goal: >= 2000 uplinks/s and a ratio > 0.5 (an 8-channel SF7 concentrator: ~200 frames/s)"
    )


if __name__ == "__main__":
    main()
