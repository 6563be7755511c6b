"""A LoRaWAN gauge provisioned by the CLI joins the real gateway through the RAK3172 modem
simulator, its readings reach the city through the broker under the gateway's least-privilege
login, and its revocation makes the running gateway refuse it within seconds (no restart)."""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
import time

import yaml
from mqtt_client import Client

from edge.protocol import Envelope
from edge.runtime.clock import Clock
from gateway.lorawan.config import GatewayConfig
from gateway.lorawan.service import GatewayService
from sim.devices.packet_forwarder import PacketForwarderSim
from sim.devices.river_gauge import GaugeSite, SimulatedLoraGauge
from sim.scenarios import BaseFlow

SPEED = 600.0  # a 10-minute cycle every second
TELEMETRY = "machimori/v1/river/river-03/telemetry"


def gateway_config(city, broker, tmp_path):
    path = tmp_path / "gateway.yaml"
    config = {
        "gateway": {"id": "gw-01"},
        "registry": str(city.out / "devices.yaml"),  # as `provision sync` wrote it
        "registry_check_s": 0.2,
        "udp": {"bind": "127.0.0.1", "port": 0},
        "lorawan": {"dedup_window_s": 0.01},
        "mqtt": {
            "host": broker.host,
            "port": broker.port,
            "username": "gw-01",
            "password_file": str(city.home / "secrets/gw-01/1/mqtt.password"),
            "reconnect_min_s": 0.2,
        },
        "outbox": {"path": str(tmp_path / "gw-outbox.db"), "sync": "normal"},
        "state": {"path": str(tmp_path / "gw-state.db"), "sync": "normal"},
        "flush_timeout_s": 2.0,
    }
    path.write_text(yaml.safe_dump(config))
    return GatewayConfig.load(path)


def agent_config(city, gauge, tmp_path):
    """The config `provision render` wrote, pointed at the simulators' ptys (on a Pi they are
    /dev/ttyAMA0 and the modem's USB adapter), on a sped-up clock."""
    card = tmp_path / "card"
    city.ok("render", "river-03", "--out", str(card))
    config = yaml.safe_load((card / "etc/machimori/river-03.yaml").read_text())
    config["river"] |= {"burst": 3, "min_valid": 2}
    return gauge.write_config(gauge.fit(config, clock_speed=SPEED, log_level="info"))


def test_provisioned_lorawan_gauge_joins_then_is_revoked(city, provisioned_broker, tmp_path):
    broker = provisioned_broker
    store = Client(broker, "city", city.secret("city", "mqtt.password"))
    store.subscribe(TELEMETRY)
    service = GatewayService(gateway_config(city, broker, tmp_path))
    stop = threading.Event()
    thread = threading.Thread(target=service.run, args=(stop,), daemon=True)
    thread.start()
    assert service.ready.wait(10)
    forwarder = PacketForwarderSim(0xAA555A0000000001, ("127.0.0.1", service.udp_port)).start()
    eui = yaml.safe_load((city.home / "catalogue.yaml").read_text())["devices"]
    dev_eui = next(d for d in eui if d["id"] == "river-03")["lorawan"]["dev_eui"]
    # The modem holds what the card gives it: the catalogue's DevEUI and the vault's AppKey.
    site = GaugeSite(
        "river-03",
        BaseFlow(base_m=2.2),  # above the standby level: every reading is sent
        5.2,
        (1.5, 2.0, 2.6, 3.0),
        observe_from_m=1.5,
        dev_eui=int(dev_eui, 16),
        app_key=bytes.fromhex(city.secret("river-03", "app_key")),
    )
    clock = Clock(SPEED)
    gauge = SimulatedLoraGauge(
        site, clock, forwarder, tmp_path, dev_nonce=secrets.randbits(15), frame_period_s=0.02
    )
    log = tmp_path / "agent.log"
    with open(log, "wb") as out:
        agent = subprocess.Popen(
            [sys.executable, "-m", "machimori", "agent", "run", "--config",
             str(agent_config(city, gauge, tmp_path))],
            stdout=out,
            stderr=out,
        )  # fmt: skip
    try:
        try:
            store.received_until(TELEMETRY, timeout_s=60)  # the join, then a reading
            store.received_until(TELEMETRY, timeout_s=20)
        except AssertionError:
            stats = service.stats.snapshot()
            raise AssertionError(f"gateway {stats}\nagent:\n{log.read_text()[-3000:]}") from None
        assert service.stats.snapshot()["accepted"].get("joins", 0) >= 1

        city.ok("revoke", "river-03")
        deadline = time.monotonic() + 5
        while service.stats.snapshot()["accepted"].get("registry.reloads", 0) < 1:
            assert time.monotonic() < deadline, "the gateway did not re-read its registry"
            time.sleep(0.05)
        assert "river-03" not in service.registry.by_id
        assert dev_eui.lower() not in {s.dev_eui for s in service.store.sessions()}
        before = service.stats.snapshot()
        last_forwarded = service.store.last_seq("river-03")
        time.sleep(5 * 600 / SPEED)  # five more measurement cycles of the agent
        after = service.stats.snapshot()
        assert after["accepted"].get("uplinks") == before["accepted"].get("uplinks")
        refused = ("frame.unknown_dev_addr", "frame.unknown_device")
        assert sum(after["rejected"].get(r, 0) - before["rejected"].get(r, 0) for r in refused)
        # what reached the city since was on its way before the revoke, nothing newer
        while not store.messages.empty():
            envelope = Envelope.from_json(store.messages.get()[1])
            assert envelope.seq <= last_forwarded
    finally:
        agent.terminate()
        agent.wait(timeout=20)
        gauge.close()
        forwarder.close()
        stop.set()
        thread.join(timeout=20)
        store.close()
    assert "Traceback" not in log.read_text()
