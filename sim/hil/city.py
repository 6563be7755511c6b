"""The city side of a bench run: the real broker (a password per device, the city's ACL) and the
real store, and a subscriber that keeps every message as the city receives it, with its arrival
time, for the scenario's expectations."""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from edge.protocol import Envelope, EnvelopeError, Topic, TopicError
from gateway.store.launch import RunningStore, start_store
from sim.broker import Mosquitto, free_port

ACL = Path(__file__).resolve().parents[2] / "configs" / "mosquitto" / "acl"
CITY_USER = "city"
GATEWAY = "gw-01"  # the LoRaWAN gateway's user, the last block of the city's ACL


def city_acl(gateway_devices: list[str]) -> str:
    """The city's ACL, with the line per LoRaWAN device that lets the gateway read its
    acknowledgements added to the gateway's block (as a city adds one per gauge it installs)."""
    lines = [f"topic read machimori/v1/river/{device}/ack" for device in gateway_devices]
    return ACL.read_text().rstrip("\n") + "\n" + "".join(f"{line}\n" for line in lines)


@dataclass(frozen=True)
class Arrival:
    """One message as the city received it: ``at`` is real monotonic time."""

    at: float
    topic: Topic
    envelope: Envelope


class CitySide:
    def __init__(
        self,
        workdir: Path,
        users: list[str],
        clock_speed: float,
        gateway_devices: list[str] = (),  # type: ignore[assignment]
        *,
        extra_hosts: tuple[str, ...] = (),
        clock_epoch: str | None = None,
        clock_start: str | None = None,
        transit: dict[str, object] | None = None,
    ) -> None:
        """``gateway_devices``: LoRaWAN devices whose acknowledgements the gateway reads;
        ``extra_hosts``: more broker listeners (a simulated network's ends); ``clock_epoch``: the
        simulated city's shared epoch, for the store, and ``clock_start`` the moment its clock
        starts at; ``transit``: the store's bus feed section (GTFS-Realtime, ridership)."""
        self.workdir = workdir
        self.clock_speed = clock_speed
        self.clock_epoch = clock_epoch
        self.clock_start = clock_start
        self.transit = transit
        self.extra_port = free_port() if extra_hosts else None
        self.passwords = {u: secrets.token_urlsafe(12) for u in [*users, GATEWAY, CITY_USER]}
        self.broker = Mosquitto(
            workdir=workdir / "broker",
            users=self.passwords,
            acl=city_acl(gateway_devices),
            # a listener on each extra address, on one more port, the same settings otherwise
            settings=tuple(f"listener {self.extra_port} {host}" for host in extra_hosts),
        ).start()
        self.store: RunningStore | None = None
        self.arrivals: list[Arrival] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id="hil-city", clean_session=False
        )
        self.client.username_pw_set(CITY_USER, self.passwords[CITY_USER])
        self.client.on_connect = lambda c, *_: c.subscribe("machimori/v1/#", qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 1.0)
        self.client.connect(self.broker.host, self.broker.port)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise RuntimeError("the city could not subscribe to the broker")
        self.start_store()

    def start_store(self) -> None:
        self.store = start_store(
            self.workdir / "store",
            self.broker.host,
            self.broker.port,
            CITY_USER,
            self.passwords[CITY_USER],
            clock_speed=self.clock_speed,
            clock_epoch=self.clock_epoch,
            clock_start=self.clock_start,
            transit=self.transit,
        )

    def _on_message(self, _client: Any, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = Topic.parse(msg.topic)
            if topic.channel not in ("telemetry", "event"):
                return
            envelope = Envelope.from_json(msg.payload)
        except (TopicError, EnvelopeError, ValueError):
            return  # the store counts bad messages; expectations look at good ones
        with self._lock:
            self.arrivals.append(Arrival(time.monotonic(), topic, envelope))

    def since(self, index: int) -> list[Arrival]:
        with self._lock:
            return self.arrivals[index:]

    def mark(self) -> int:
        with self._lock:
            return len(self.arrivals)

    def mqtt_section(self, user: str, **settings: Any) -> dict[str, Any]:
        """The ``mqtt:`` section of a device's (or the gateway's) config, secret in a 0600 file;
        ``settings`` add to or replace its keys (another ``host`` and ``port``...)."""
        secret = self.workdir / "secrets" / f"{user}.mqtt"
        secret.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        secret.write_text(self.passwords[user])
        secret.chmod(0o600)
        return {
            "host": self.broker.host,
            "port": self.broker.port,
            "username": user,
            "password_file": str(secret),
            "reconnect_min_s": 0.2,
            "reconnect_max_s": 2.0,
            "confirm_timeout_s": 5.0,
            **settings,
        }

    def stored_seqs(self, device: str) -> list[int]:
        """Every seq the store holds for ``device``, in order (a repeat would show twice)."""
        assert self.store is not None
        path = self.store.workdir / "store.db"
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as db:
            rows = db.execute("SELECT seq FROM messages WHERE device = ? ORDER BY seq", (device,))
            return [row[0] for row in rows]

    def close(self) -> None:
        self.client.loop_stop()
        with contextlib.suppress(Exception):
            self.client.disconnect()
        if self.store is not None:
            self.store.stop()
        self.broker.close()
