"""Helpers for the city store's tests: publishing as field devices do, starting a store, waiting
for what a user would see."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from edge.protocol import Envelope, Status, Topic, utc_timestamp
from edge.protocol.gtfs import Feed
from gateway.api.auth import set_password
from gateway.store.config import HttpConfig, IngestConfig, StaffConfig, StoreConfig
from gateway.store.intake import Batch, classify
from gateway.store.service import StoreService
from sim.broker import Mosquitto

ROOT = Path(__file__).resolve().parents[2]
SITES = ROOT / "configs" / "sites.yaml"
GTFS_SAMPLE = ROOT / "sim" / "transit" / "feed"  # the city's GTFS-JP feed in the demo
STAFF_USER = "kato"
STAFF_PASSWORD = "river-watch-2026"
# a 48x32 JPEG (a dark blob on green), made by Chromium's canvas encoder
JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQAAAQABAAD/4gHYSUNDX1BST0ZJTEUAAQEAAAHIAAAAAAQwAABtbnRyUkdCIFhZWiAH4AABAAEA"
    "AAAAAABhY3NwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAA9tYAAQAAAADTLQAAAAAAAAAAAAAAAAAAAAAAAAAA"
    "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAlkZXNjAAAA8AAAACRyWFlaAAABFAAAABRnWFlaAAABKAAAABRi"
    "WFlaAAABPAAAABR3dHB0AAABUAAAABRyVFJDAAABZAAAAChnVFJDAAABZAAAAChiVFJDAAABZAAAAChjcHJ0AAABjAAA"
    "ADxtbHVjAAAAAAAAAAEAAAAMZW5VUwAAAAgAAAAcAHMAUgBHAEJYWVogAAAAAAAAb6IAADj1AAADkFhZWiAAAAAAAABi"
    "mQAAt4UAABjaWFlaIAAAAAAAACSgAAAPhAAAts9YWVogAAAAAAAA9tYAAQAAAADTLXBhcmEAAAAAAAQAAAACZmYAAPKn"
    "AAANWQAAE9AAAApbAAAAAAAAAABtbHVjAAAAAAAAAAEAAAAMZW5VUwAAACAAAAAcAEcAbwBvAGcAbABlACAASQBuAGMA"
    "LgAgADIAMAAxADb/2wBDAA0JCgsKCA0LCgsODg0PEyAVExISEyccHhcgLikxMC4pLSwzOko+MzZGNywtQFdBRkxOUlNS"
    "Mj5aYVpQYEpRUk//2wBDAQ4ODhMREyYVFSZPNS01T09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09P"
    "T09PT09PT09PT0//wAARCAAgADADASIAAhEBAxEB/8QAGQAAAgMBAAAAAAAAAAAAAAAAAAQBBQYD/8QAIBAAAgEEAwAD"
    "AAAAAAAAAAAAAQIAAwQFESExUVJhcf/EABgBAQADAQAAAAAAAAAAAAAAAAMBAgQF/8QAHBEAAwEBAAMBAAAAAAAAAAAA"
    "AAECERIDExRR/9oADAMBAAIRAxEAPwDjCESyGQW00igNVI3o9D9nFmXTxBpNvEOwmaqZG7qEk1mX6XiFPI3dMgiszfTc"
    "xvnr9E9TNLCJY/ILd7RgFqgb0Oj+R2DUuXjDaaeMJQ5qg63ZraJRwOfD5L6Qyq6lXUMp7BGxLeO+HpM1y9MhCaOpibRy"
    "SFZN/Ewp4m0QglWfXyM0/RI3tkrsLQdrsVtEIgPPp8l9IVVRQqKFUdADQkzN5L7eg1XT0//Z"
)


BACKENDS = ["sqlite", "postgresql"]


def empty_database(request: Any, directory: Path) -> str:
    """A fresh database of the backend a fixture is parametrized with (``request.param``)."""
    if request.param == "sqlite":
        return f"sqlite:///{directory / 'store.db'}"
    return request.getfixturevalue("pg_server").create_database()


def wait_until(check: Callable[[], Any], timeout_s: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)


def ts(minutes_ago: float = 0.0) -> str:
    return utc_timestamp(datetime.now(UTC) - timedelta(minutes=minutes_ago))


class Publisher:
    """Publishes as field devices would: QoS 1, one seq counter per device."""

    def __init__(
        self, broker: Mosquitto, username: str | None = None, password: str | None = None
    ) -> None:
        client_id = username or f"pub-{id(self)}"  # a device's client id is its username
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(200)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.seqs: dict[str, int] = {}

    def raw(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def envelope(
        self,
        device: str,
        type: str,
        data: dict[str, Any],
        *,
        kind: str = "river",
        channel: str = "telemetry",
        at: str | None = None,
        seq: int | None = None,
    ) -> Envelope:
        if seq is None:
            seq = self.seqs.get(device, -1) + 1
        self.seqs[device] = max(seq, self.seqs.get(device, -1))
        env = Envelope(device, seq, at or ts(), type, data)
        self.raw(str(Topic(kind, device, channel)), env.to_json())
        return env

    def level(
        self, device: str, level_m: float | None, minutes_ago: float = 0.0, **kw: Any
    ) -> Envelope:
        data: dict[str, Any] = {"level_m": level_m, "valid": 9, "samples": 9}
        if level_m is None:
            data = {"missing": "timeout", "valid": 0, "samples": 9}
        return self.envelope(device, "level", data, at=ts(minutes_ago), **kw)

    def status(self, kind: str, device: str, state: str, health: dict | None = None) -> None:
        body = Status(device, ts(), state, health or {}).to_json()
        self.raw(str(Topic(kind, device, "status")), body, retain=True)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def store_config(
    tmp_path: Path, database: str, broker: Mosquitto | None = None, **http: Any
) -> StoreConfig:
    users = tmp_path / "staff-users"
    if not users.exists():
        set_password(users, STAFF_USER, STAFF_PASSWORD)
    config = StoreConfig(
        database=database,
        images_dir=tmp_path / "images",
        sites_file=SITES,
        ingest=IngestConfig(client_id=f"store-{tmp_path.name}"[:60], enabled=broker is not None),
        http=HttpConfig(port=0, **http),
        staff=StaffConfig(users_file=users, secure_cookie=False),
    )
    if broker is not None:
        config.mqtt.host, config.mqtt.port = broker.host, broker.port
    return config


@dataclass
class Running:
    service: StoreService
    stopped: bool = False

    @property
    def url(self) -> str:
        assert self.service.url is not None
        return self.service.url

    @property
    def store(self) -> Any:
        return self.service.store

    def stop(self) -> None:
        if not self.stopped:
            self.service.stop()
            self.stopped = True


def start(config: StoreConfig, **kw: Any) -> Running:
    service = StoreService(config, **kw)
    service.start()
    if service.ingest is not None:
        assert service.ingest.subscribed.wait(10), "store could not subscribe"
    return Running(service)


def stored(run: Running, device: str) -> int:
    row = run.store.device(device)
    return row.received if row else 0


def get(url: str, cookie: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body, without following redirects, like a careful client."""

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *_: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirect)
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    try:
        with opener.open(request, timeout=15) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def get_json(url: str, cookie: str | None = None) -> Any:
    status, _, body = get(url, cookie)
    assert status == 200, (status, body[:500])
    return json.loads(body)


def login(base_url: str, user: str = STAFF_USER, password: str = STAFF_PASSWORD) -> str | None:
    """The session cookie ("name=value") a member of staff gets, or None if refused."""
    from urllib.parse import urlencode

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *_: Any) -> None:
            return None

    body = urlencode({"user": user, "password": password}).encode()
    request = urllib.request.Request(base_url + "staff/login", data=body, method="POST")
    try:
        urllib.request.build_opener(NoRedirect).open(request, timeout=15)
    except urllib.error.HTTPError as exc:
        if exc.code != 303:
            return None
        cookie = exc.headers.get("Set-Cookie", "")
        return cookie.split(";", 1)[0] or None
    return None


NOW = datetime.now(UTC).replace(microsecond=0)


class Writer:
    """Writes devices' telemetry straight into the store, as ingest would, numbering each
    device's messages from 0."""

    kind = "river"
    type = "level"

    def __init__(self, run: Running) -> None:
        self.run = run
        self.seq: dict[str, int] = {}

    def write(self, device: str, data: dict[str, Any], when: Callable[[int], str]) -> None:
        """One message of ``device``, dated ``when(seq)``."""
        seq = self.seq.get(device, -1) + 1
        self.seq[device] = seq
        env = Envelope(device, seq, when(seq), self.type, data)
        batch = Batch(received_ms=0)
        batch.add(classify(str(Topic(self.kind, device, "telemetry")), env.to_json(), 10**6))
        self.run.store.write(batch)


def at(minutes_ago: float) -> str:
    """A timestamp ``minutes_ago`` before the seed's NOW."""
    return utc_timestamp(NOW - timedelta(minutes=minutes_ago))


def seed(store: Any, images: Any) -> None:
    """A week of 10-minute river readings (one 欠測, one gap), a bear with its photo, and a
    child's positions."""
    batch = Batch(received_ms=int(NOW.timestamp() * 1000))

    def add(kind: str, channel: str, env: Envelope) -> None:
        batch.add(classify(str(Topic(kind, env.device, channel)), env.to_json(), 10**6))

    for i in range(7 * 144):
        seq = 7 * 144 - 1 - i
        if seq == 100:
            continue  # lost on the way
        data = {"level_m": round(1.0 + i / 1000, 3), "valid": 9, "samples": 9}
        if i == 5:
            data = {"missing": "timeout", "valid": 0, "samples": 9}
        add("river", "telemetry", Envelope("river-01", seq, at(i * 10), "level", data))
    add(
        "camera",
        "event",
        Envelope(
            "cam-01",
            0,
            at(30),
            "detection",
            {"event_id": "ev-1", "label": "bear", "harmful": True, "confidence": 0.93},
        ),
    )
    image = classify("machimori/v1/camera/cam-01/image/ev-1", JPEG, 10**6)
    images.save(image.sha256, JPEG)  # as ingest does: the file first, then the row
    batch.add(image)
    for seq in range(3):
        data = {"lat": round(38.10 + seq / 1000, 3), "lon": 140.04, "fix": "3d"}
        add("tracker", "telemetry", Envelope("kid-07", seq, at(20 - seq), "position", data))
    status = Status("river-01", at(1), "online", {"outbox": {"last_seq": 7 * 144 + 2}})
    batch.add(classify("machimori/v1/river/river-01/status", status.to_json(), 100))
    batch.add(classify("machimori/v1/river/river-01/telemetry", b"{broken", 100))
    store.write(batch)


# river-01 Normal (1.00 m), river-02 Caution (1.90 m), river-03 欠測, river-04 Danger (2.50 m)
LEVELS = {"river-01": 1.0, "river-02": 1.9, "river-03": None, "river-04": 2.5}


def seed_four_states(store: Any) -> None:
    """Three readings per gauge, the last now: river-01 Normal, river-02 Caution, river-03
    欠測 (the gauge reports it), river-04 Danger (from LoRaWAN: the level without a distance)."""
    batch = Batch(received_ms=0)
    for device, level in LEVELS.items():
        for seq, minutes in enumerate((20, 10, 0)):
            data = {"level_m": level, "valid": 9, "samples": 9, "distance_mm": 4200}
            if level is None:
                data = {"missing": "timeout", "valid": 0, "samples": 9}
            elif device == "river-04":
                del data["distance_mm"]  # as from LoRaWAN: the level only
            env = Envelope(device, seq, at(minutes), "level", data)
            batch.add(classify(str(Topic("river", device, "telemetry")), env.to_json(), 10**6))
    store.write(batch)


def bus_position(
    trip: str | None = "WD-03",
    stop: str | None = "S04",
    seq: int | None = 4,
    status: str | None = "STOPPED_AT",
    **extra: Any,
) -> dict[str, Any]:
    """A bus's ``position`` message as the bus agent sends it (with the rider counts the city
    must not publish), at ``stop`` of the sample GTFS-JP feed."""
    stop_row = Feed.load(GTFS_SAMPLE).stops.get(stop)
    data = {
        "lat": stop_row.lat if stop_row else 38.1,
        "lon": stop_row.lon if stop_row else 140.0,
        "speed_mps": 0.0,
        "bearing_deg": 270.0,
        "route_id": "M1",
        "trip_id": trip,
        "start_date": "20261201",
        "stop_id": stop,
        "stop_sequence": seq,
        "status": status,
        "delay_s": 90,
        "on_board": 12,
        "seats": 20,
        "capacity": 40,
    }
    return data | extra
