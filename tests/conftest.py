"""Shared fixtures: a real Mosquitto per test session, and helpers to watch MQTT as a city would.

A missing mosquitto fails the run (MissingDependency is raised, not skipped)."""

from __future__ import annotations

import ipaddress
import queue
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from sim.broker import Mosquitto
from sim.chromium import Chromium, Tab


@pytest.fixture(scope="session")
def broker() -> Iterator[Mosquitto]:
    with Mosquitto() as running:
        yield running


@pytest.fixture
def pins() -> Iterator[MockFactory]:
    """gpiozero MockFactory pins for one test: drivers get mock pins, tests drive them."""
    previous = Device.pin_factory
    Device.pin_factory = MockFactory()
    yield Device.pin_factory
    Device.pin_factory.reset()
    Device.pin_factory = previous


@pytest.fixture(scope="session")
def browser() -> Iterator[Chromium]:
    """Headless Chromium for the page tests (one per session; each tab its own cookies)."""
    with Chromium() as running:
        yield running


@pytest.fixture
def tab(browser: Chromium) -> Iterator[Tab]:
    """A phone-sized tab of its own (own cookies), closed after the test."""
    page = browser.new_tab()
    yield page
    page.close()


@pytest.fixture
def own_broker() -> Iterator[Mosquitto]:
    """A broker this test may stop and restart without disturbing others."""
    with Mosquitto() as running:
        yield running


class Watcher:
    """Subscribes like a city server and keeps every message it receives, in order."""

    def __init__(self, broker: Mosquitto, topic: str = "machimori/v1/#") -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.seen: list[mqtt.MQTTMessage] = []
        self._subscribed = threading.Event()
        # A persistent session: the broker keeps what arrives while this watcher reconnects.
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"watcher-{id(self)}", clean_session=False
        )
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        assert self._subscribed.wait(10), "watcher could not subscribe"

    def collect(
        self, until: Callable[[list[mqtt.MQTTMessage]], bool], timeout_s: float = 20.0
    ) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + timeout_s
        while not until(self.seen):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                self.seen.append(self.messages.get(timeout=min(remaining, 0.2)))
            except queue.Empty:
                pass
        return self.seen

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def watch() -> Iterator[Callable[..., Watcher]]:
    watchers: list[Watcher] = []

    def make(broker: Mosquitto, topic: str = "machimori/v1/#") -> Watcher:
        watchers.append(Watcher(broker, topic))
        return watchers[-1]

    yield make
    for w in watchers:
        w.close()


@pytest.fixture
def pki(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(CA file, broker certificate, broker key) for a TLS-only Mosquitto on 127.0.0.1."""
    return make_pki(tmp_path / "pki")


@pytest.fixture
def pki_maker() -> Callable[[Path], tuple[Path, Path, Path]]:
    """Another, unrelated PKI in a given folder: a CA the broker's certificate is not from."""
    return make_pki


def make_pki(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a broker certificate for 127.0.0.1, as a city's own small PKI would issue."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)

    def cert(subject: str, issuer: str, key, signer, ca: bool) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
            builder = builder.add_extension(san, critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    broker_key = ec.generate_private_key(ec.SECP256R1())
    ca = cert("machimori test CA", "machimori test CA", ca_key, ca_key, True)
    broker = cert("mosquitto", "machimori test CA", broker_key, ca_key, False)
    paths = directory / "ca.pem", directory / "broker.pem", directory / "broker.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(broker.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        broker_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return paths
