"""Helpers of the river tests: a LoRaWAN network to talk to (the real gateway on a thread, its
device registry, a simulated packet forwarder), and what to look for in MQTT messages."""

from __future__ import annotations

import secrets
import threading
import time
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import yaml

from edge.protocol import Envelope, Topic, utc_timestamp
from edge.protocol.codecs import codec
from edge.runtime.clock import Clock
from gateway.lorawan.config import GatewayConfig
from gateway.lorawan.service import GatewayService
from sim.devices.lorawan_modem import Keys, ModemRadio
from sim.devices.packet_forwarder import PacketForwarderSim
from sim.devices.river_gauge import GaugeSite
from sim.serial_pty import PtyDevice

GW_EUI = 0xAA555A0000000001
RIVER = codec("river-v1")
TS = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


def level_payload(seq: int, level_m: float = 1.25) -> tuple[int, bytes]:
    return RIVER.encode("telemetry", "level", seq, TS, {"level_m": level_m, "valid": 9})


class Scripted(PtyDevice):
    """A modem replaying the manual: ``answers`` maps a command line to what follows it; any
    other command is answered OK. ``sent`` is every command received."""

    def __init__(self, answers: dict[str, str]):
        self.answers = answers
        self.sent: list[str] = []
        super().__init__("ttyRAK")

    def on_line(self, line):
        self.sent.append(line.decode())
        return self.answers.get(line.decode(), "\r\nOK\r\n").encode()


class LoraNetwork:
    """A gateway that knows ``devices`` (fresh ids and keys per test), restartable on the same UDP
    port, state and outbox (an outage), with a simulated packet forwarder in front of it."""

    def __init__(
        self,
        tmp_path,
        broker,
        devices: list[str],
        clock: Clock | None = None,
        confirm: str = "broker",
    ):
        """``confirm``: "broker" where no store runs (the test's subscriber is the city), or
        "store" to keep readings until the store's acknowledgement covers them."""
        self.tmp_path = tmp_path
        self.broker = broker
        self.clock = clock
        self.confirm = confirm
        suffix = secrets.token_hex(3)
        self.ids = {name: f"{name}-{suffix}" for name in devices}
        self.keys = {
            name: Keys(0x70B3D57E00000000 + secrets.randbits(24), secrets.token_bytes(16))
            for name in devices
        }
        self.registry = tmp_path / "devices.yaml"
        self.registry.write_text(yaml.safe_dump({"devices": [self._entry(n) for n in devices]}))
        self.config = tmp_path / "gateway.yaml"
        self._write_config(port=0, gateway_id=f"gw-{suffix}")
        self.service: GatewayService | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.start()
        self._write_config(port=self.address[1], gateway_id=f"gw-{suffix}")  # restarts keep it
        self.forwarder = PacketForwarderSim(GW_EUI, self.address, keepalive_s=0.1).start()

    def _entry(self, name: str) -> dict:
        keys = self.keys[name]
        return {
            "id": self.ids[name],
            "kind": "river",
            "codec": "river-v1",
            "dev_eui": f"{keys.dev_eui:016X}",
            "otaa": {"app_key": keys.app_key.hex(), "join_eui": "0000000000000000"},
        }

    def _write_config(self, *, port: int, gateway_id: str) -> None:
        config = {
            "gateway": {"id": gateway_id},
            "registry": str(self.registry),
            "udp": {"bind": "127.0.0.1", "port": port},
            "lorawan": {"dedup_window_s": 0.01},
            "mqtt": {
                "host": self.broker.host,
                "port": self.broker.port,
                "reconnect_min_s": 0.2,
                "reconnect_max_s": 1.0,
                "confirm": self.confirm,
                "confirm_timeout_s": 3.0,
                "confirm_timeout_max_s": 6.0,
            },
            "outbox": {"path": str(self.tmp_path / "gw-outbox.db"), "sync": "normal"},
            "state": {"path": str(self.tmp_path / "gw-state.db"), "sync": "normal"},
            "flush_timeout_s": 2.0,
        }
        self.config.write_text(yaml.safe_dump(config))

    @property
    def address(self) -> tuple[str, int]:
        assert self.service is not None and self.service.udp_port is not None
        return ("127.0.0.1", self.service.udp_port)

    def start(self) -> None:
        self.service = GatewayService(GatewayConfig.load(self.config), self.clock)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self.service.run, args=(self._stop,), daemon=True)
        self._thread.start()
        assert self.service.ready.wait(10), "gateway did not start"

    def stop(self) -> None:
        """The gateway goes away: nothing is heard, nothing acknowledged."""
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=20)
        assert not self._thread.is_alive(), "gateway did not stop"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def site(self, name: str, river, mount_height_m: float, levels, **kwargs) -> GaugeSite:
        """A gauge site for device ``name``, provisioned with the keys the gateway knows."""
        keys = self.keys[name]
        return GaugeSite(
            self.ids[name],
            river,
            mount_height_m,
            tuple(levels),
            dev_eui=keys.dev_eui,
            app_key=keys.app_key,
            **kwargs,
        )

    def radio(self, name: str, **kwargs) -> ModemRadio:
        return ModemRadio(self.keys[name], self.forwarder, **{"rx_window_s": 1.0, **kwargs})

    def command(self, name: str, type: str, data: dict) -> None:
        """The city sends a command to the device; the gateway queues it as a downlink."""
        device = self.ids[name]
        envelope = Envelope(device, 1, utc_timestamp(Clock().now()), type, data)
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"city-{device}")
        client.connect(self.broker.host, self.broker.port)
        client.loop_start()
        client.publish(
            str(Topic("river", device, "cmd")), envelope.to_json(), qos=1
        ).wait_for_publish(5)
        client.loop_stop()
        client.disconnect()
        assert self.service is not None
        deadline = time.monotonic() + 5
        while self.service.stats.snapshot()["accepted"].get("cmd.queued", 0) < 1:
            assert time.monotonic() < deadline, "the gateway did not queue the command"
            time.sleep(0.01)

    def close(self) -> None:
        self.forwarder.close()
        if self.running:
            self.stop()


def envelopes(messages, device: str, channel: str) -> list[Envelope]:
    out = []
    for message in messages:
        topic = Topic.parse(message.topic)
        if topic.device == device and topic.channel == channel:
            out.append(Envelope.from_json(message.payload))
    return out


def app_key_file(tmp_path, keys: Keys):
    path = tmp_path / f"{keys.dev_eui:016x}.appkey"
    path.write_text(keys.app_key.hex().upper())
    path.chmod(0o600)
    return path


class Arrivals:
    """Subscribes like the city and stamps every message of ``devices`` with the clock time it
    arrived, so latency is measured in the simulation's own minutes."""

    def __init__(self, broker, clock: Clock, devices: list[str]):
        self.clock = clock
        self.devices = set(devices)
        self.lock = threading.Lock()
        self.messages: list[tuple[float, str, Envelope]] = []  # (clock s, channel, envelope)
        subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"arrivals-{id(self)}"
        )
        self.client.on_connect = lambda c, *_: c.subscribe("machimori/v1/river/#", qos=1)
        self.client.on_subscribe = lambda *_: subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert subscribed.wait(10), "could not subscribe"

    def _on_message(self, _c, _u, message) -> None:
        topic = Topic.parse(message.topic)
        if topic.device in self.devices and topic.channel in ("telemetry", "event"):
            with self.lock:
                self.messages.append(
                    (self.clock.monotonic(), topic.channel, Envelope.from_json(message.payload))
                )

    def of(self, device: str, channel: str) -> list[tuple[float, Envelope]]:
        with self.lock:
            return [(t, e) for t, c, e in self.messages if e.device == device and c == channel]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
