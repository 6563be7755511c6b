"""Helpers of the gateway tests: test identities, a gateway run on a thread, message filters."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from edge.protocol import Envelope, Status, Topic
from edge.runtime.clock import Clock
from gateway.lorawan.config import GatewayConfig
from gateway.lorawan.dedup import Reception
from gateway.lorawan.forward import Uplink
from gateway.lorawan.network import NetworkServer, NetworkSettings
from gateway.lorawan.registry import Registry
from gateway.lorawan.semtech_udp import Rxpk
from gateway.lorawan.service import GatewayService
from gateway.lorawan.sessions import SessionStore
from gateway.lorawan.stats import Stats
from sim.devices.lorawan_device import LoRaWANDevice

GATEWAY_ID = "gw-test"
GW_EUI = 0xAA555A0000000001
GW2_EUI = 0xAA555A0000000002
OTAA_EUI = 0x70B3D57ED0000001
ABP_EUI = 0x70B3D57ED0000002
ABP_ADDR = 0x00ABC001
TS = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@dataclass
class Keys:
    app_key: bytes
    nwk_s_key: bytes
    app_s_key: bytes

    def all_hex(self):
        return [k.hex() for k in (self.app_key, self.nwk_s_key, self.app_s_key)]


def registry_data(keys):
    return {
        "devices": [
            {
                "id": "river-lora-01",
                "kind": "river",
                "codec": "river-v1",
                "dev_eui": f"{OTAA_EUI:016X}",
                "otaa": {"join_eui": "0000000000000000", "app_key": keys.app_key.hex()},
            },
            {
                "id": "river-lora-02",
                "kind": "river",
                "codec": "river-v1",
                "dev_eui": f"{ABP_EUI:016X}",
                "abp": {
                    "dev_addr": f"{ABP_ADDR:08X}",
                    "nwk_s_key": keys.nwk_s_key.hex(),
                    "app_s_key": keys.app_s_key.hex(),
                },
            },
        ]
    }


def write_config(directory, broker, keys, **sections):
    """Registry and gateway config files in ``directory``; ``sections`` override config keys.
    An existing registry file is kept, so a test may edit it."""
    registry = directory / "devices.yaml"
    if not registry.exists():
        registry.write_text(yaml.safe_dump(registry_data(keys)))
    data = {
        "gateway": {"id": GATEWAY_ID},
        "registry": "devices.yaml",
        "udp": {"bind": "127.0.0.1", "port": 0},
        "lorawan": {"dedup_window_s": 0.05},
        "mqtt": {
            "host": broker.host,
            "port": broker.port,
            "reconnect_min_s": 0.2,
            "reconnect_max_s": 1.0,
            "status_interval_s": 0.5,
            # no store runs here: the watcher is the city, so the broker's PUBACK is the end
            "confirm": "broker",
        },
        "outbox": {"path": str(directory / "outbox.db"), "sync": "normal"},
        "state": {"path": str(directory / "state.db"), "sync": "normal"},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    path = directory / "gateway.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


class Running:
    """A GatewayService on its own thread, stopped cleanly (or not) at the end."""

    def __init__(self, config_path: Path):
        self.service = GatewayService(GatewayConfig.load(config_path))
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.service.run, args=(self.stop,), daemon=True)
        self.thread.start()
        assert self.service.ready.wait(10), "gateway did not start"

    @property
    def address(self):
        return ("127.0.0.1", self.service.udp_port)

    @property
    def stats(self):
        return self.service.stats

    def wait_for(self, condition, timeout_s=10.0):
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, f"timed out; stats: {self.stats.snapshot()}"
            time.sleep(0.01)

    def close(self):
        self.stop.set()
        self.thread.join(timeout=20)
        assert not self.thread.is_alive(), "gateway did not stop"


def otaa_device(keys):
    return LoRaWANDevice(OTAA_EUI, app_key=keys.app_key)


def abp_device(keys):
    return LoRaWANDevice(
        ABP_EUI, dev_addr=ABP_ADDR, nwk_s_key=keys.nwk_s_key, app_s_key=keys.app_s_key
    )


def join(device, pf, timeout_s=5.0):
    """OTAA through the forwarder; returns (uplink rxpk, the downlink that carried the accept)."""
    rxpk = pf.uplink(device.join_request())
    downlink = pf.wait_downlink(timeout_s)
    device.accept_join(downlink.txpk.data)
    return rxpk, downlink


def level(device, seq, level_m=1.0, **kwargs):
    """The uplink of a river level reading taken ``seq`` minutes after TS."""
    data = {"level_m": level_m, "valid": 9}
    return device.message("telemetry", "level", seq, TS + timedelta(minutes=seq), data, **kwargs)


def envelopes(messages, channel="telemetry"):
    return [
        Envelope.from_json(m.payload)
        for m in messages
        if Topic.parse(m.topic).channel == channel and Topic.parse(m.topic).kind != "gateway"
    ]


def gateway_events(messages):
    return [
        Envelope.from_json(m.payload)
        for m in messages
        if m.topic == f"machimori/v1/gateway/{GATEWAY_ID}/event"
    ]


def statuses(messages):
    return [
        Status.from_json(m.payload)
        for m in messages
        if m.topic == f"machimori/v1/gateway/{GATEWAY_ID}/status"
    ]


# -- the network server without sockets --------------------------------------------------------
TMST = 4_294_000_000  # the concentrator counter wraps during the join delay


class Radio:
    """Stands in for the UDP server: every gateway has a route; downlinks are recorded."""

    def __init__(self):
        self.sent = []

    def routable(self, gateway_eui):
        return True

    def transmit(self, downlink):
        self.sent.append(downlink)
        return True


class Net:
    """A network server over a state file, recording what it would forward and transmit."""

    def __init__(self, tmp_path, keys, **settings):
        registry_path = tmp_path / "devices.yaml"
        if not registry_path.exists():
            registry_path.write_text(yaml.safe_dump(registry_data(keys)))
        self.stats = Stats(Clock())
        self.store = SessionStore(tmp_path / "state.db", sync="normal")
        self.forwarded: list[Uplink] = []
        self.reports = []  # (device, command, command_seq, delivered, attempts)
        self.server = NetworkServer(
            Registry.load(registry_path),
            self.store,
            NetworkSettings(**settings),
            self.stats,
            self._forward,
            self._report,
            Clock(),
        )
        self.radio = Radio()
        self.server.transmitter = self.radio

    def _forward(self, uplink):
        self.forwarded.append(uplink)
        return len(self.forwarded) - 1

    def _report(self, device, command, delivered):
        self.reports.append(
            (device.id, command.command, command.command_seq, delivered, command.attempts)
        )

    def command(self, device, interval_s, seq):
        """The city's ``set_interval`` for ``device``, queued as the service queues it."""
        registered = self.server.registry.by_eui[device.dev_eui]
        fport, payload = registered.payload_codec.encode_command(
            "set_interval", {"interval_s": interval_s}
        )
        self.server.enqueue(registered, fport, payload, command="set_interval", command_seq=seq)

    def last_downlink(self):
        return self.radio.sent[-1].first.data

    def hear(self, phy, *gateways, tmst=TMST, datr="SF10BW125", freq=923.4):
        gateways = gateways or ((GW_EUI, -80, 7.5),)
        receptions = [
            Reception(eui, Rxpk(tmst=tmst, freq=freq, datr=datr, rssi=rssi, lsnr=snr, data=phy))
            for eui, rssi, snr in gateways
        ]
        self.server.handle(phy, receptions)

    @property
    def rejected(self):
        return self.stats.snapshot()["rejected"]

    def close(self):
        self.store.close()
