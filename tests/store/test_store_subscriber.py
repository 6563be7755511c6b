"""The store's MQTT 5 subscriber against a real Mosquitto, and against a broker that misbehaves:
it acknowledges only what it is told to, keeps a quiet connection alive, comes back after the
broker restarts, and survives refusals and broken packets with a log line naming the reason."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest
from store_helpers import Publisher, wait_until

from edge.runtime.uplink import MqttConfig, TlsConfig
from gateway.store import mqtt5
from gateway.store.subscriber import Subscriber
from sim.broker import Mosquitto


class Inbox:
    """Collects what the subscriber hands over; acks only when the test says so."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[mqtt5.Publish, int]] = []

    def __call__(self, publishes: list[mqtt5.Publish], generation: int) -> None:
        with self.lock:
            self.received += [(p, generation) for p in publishes]

    def payloads(self) -> list[bytes]:
        with self.lock:
            return [p.payload for p, _ in self.received]

    def ack_all(self, subscriber: Subscriber) -> None:
        with self.lock:
            received, self.received = self.received, []
        for publish, generation in received:
            subscriber.ack([publish.packet_id], generation)


def subscriber(broker: Mosquitto, inbox: Inbox, client_id: str = "sub", **mqtt: object):
    config = MqttConfig(host=broker.host, port=broker.port, reconnect_min_s=0.1, **mqtt)
    return Subscriber(
        config, client_id, ["machimori/v1/#"], inbox, session_expiry_s=3600, receive_max=100
    )


def logged(caplog: pytest.LogCaptureFixture) -> str:
    """Log lines with their structured fields, as the logfmt handler writes them."""
    return "\n".join(f"{r.getMessage()} {getattr(r, 'fields', {})}" for r in caplog.records)


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def sub(own_broker: Mosquitto, inbox: Inbox) -> Iterator[Subscriber]:
    running = subscriber(own_broker, inbox, keepalive_s=1)
    running.start()
    assert running.subscribed.wait(10)
    yield running
    running.stop()


def test_unacknowledged_messages_come_again_and_acknowledged_ones_do_not(own_broker, inbox, sub):
    publisher = Publisher(own_broker)
    for n in range(3):
        publisher.raw("machimori/v1/river/river-01/telemetry", f"m{n}")
    wait_until(lambda: len(inbox.payloads()) == 3, what="three messages")
    first, _ = inbox.received[0]
    sub.ack([first.packet_id], inbox.received[0][1])
    inbox.received.clear()
    sub.stop()  # m1 and m2 were never acknowledged
    again = subscriber(own_broker, inbox)
    again.start()
    try:
        wait_until(lambda: len(inbox.payloads()) == 2, what="the two unacknowledged")
        assert inbox.payloads() == [b"m1", b"m2"]
        assert all(p.dup for p, _ in inbox.received)  # 3.3.1.1: sent again, DUP set
        inbox.ack_all(again)
    finally:
        again.stop()
        publisher.close()


def test_a_quiet_connection_stays_up_on_pings(own_broker, inbox, sub):
    """Keepalive 1 s: Mosquitto drops a client silent for 1.5 s (checked every few seconds), so
    staying on the first connection for 6 s takes PINGREQs."""
    time.sleep(6.0)
    assert sub.connected.is_set() and sub.generation == 1
    publisher = Publisher(own_broker)
    publisher.raw("machimori/v1/river/river-01/telemetry", b"after the quiet")
    wait_until(lambda: inbox.payloads() == [b"after the quiet"])
    publisher.close()


def test_comes_back_after_a_broker_restart(own_broker, inbox, sub):
    own_broker.stop()
    wait_until(lambda: not sub.connected.is_set(), what="the loss noticed")
    own_broker.start()
    wait_until(lambda: sub.generation == 2 and sub.connected.is_set(), what="reconnected")
    publisher = Publisher(own_broker)
    publisher.raw("machimori/v1/river/river-01/telemetry", b"after the restart")
    wait_until(lambda: inbox.payloads() == [b"after the restart"])
    ((publish, generation),) = inbox.received
    assert generation == 2
    assert not sub.ack([publish.packet_id], 1)  # an old connection's packet id is not sent
    assert sub.ack([publish.packet_id], 2)
    publisher.close()


def test_a_wrong_password_is_logged_and_retried(tmp_path, inbox, caplog):
    password = tmp_path / "password"
    password.write_text("s3cret-wrong-7Q")
    with Mosquitto(users={"city": "s3cret-right-9Z"}) as broker:
        refused = subscriber(broker, inbox, username="city", password_file=password)
        with caplog.at_level(logging.WARNING, logger="gateway.store.subscriber"):
            refused.start()
            wait_until(
                # Mosquitto 2.0 answers a wrong password with 0x87 not authorized
                lambda: logged(caplog).count("refused the store: 0x87 not authorized") >= 2,
                what="two refusals logged",
            )
        assert not refused.connected.is_set()
        password.write_text("s3cret-right-9Z")  # the technician fixes the file; no restart needed
        wait_until(refused.subscribed.is_set, what="connected with the right password")
        refused.stop()
    assert "s3cret" not in logged(caplog)  # secrets stay out of the logs


class BrokenBroker:
    """Accepts, answers CONNACK, then sends a packet MQTT 5 forbids; counts the connections."""

    def __init__(self, bad: bytes) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.host = "127.0.0.1"
        self.bad = bad
        self.connections = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections += 1
            with conn:
                conn.recv(4096)
                conn.sendall(bytes.fromhex("2003000000") + self.bad)
                conn.recv(4096)


@pytest.mark.parametrize(
    ("packet", "logged_reason"),
    [
        ("36050001610001", "PUBLISH with QoS 3"),  # a broken packet
        ("e00c8b0a1f0007" + b"upgrade".hex(), "0x8B server shutting down (upgrade)"),
    ],
)
def test_a_broken_packet_or_a_disconnect_is_logged_and_the_process_goes_on(
    inbox, caplog, packet, logged_reason
):
    broken = BrokenBroker(bytes.fromhex(packet))
    running = subscriber(broken, inbox)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="gateway.store.subscriber"):
        running.start()
        wait_until(lambda: broken.connections >= 2, what="a reconnect")
    running.stop()
    broken.server.close()
    assert logged_reason in logged(caplog)
    assert inbox.received == []


def test_tls_to_the_broker(pki, inbox):
    """A TLS-only listener with the city's own CA; the subscriber checks the broker's name."""
    ca = pki[0]
    with Mosquitto(tls=pki) as broker:
        running = subscriber(broker, inbox, tls=TlsConfig(ca_file=ca))
        running.start()
        try:
            assert running.subscribed.wait(10), "no TLS session with the broker"
            publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
            publisher.tls_set_context(TlsConfig(ca_file=ca).context())
            publisher.connect(broker.host, broker.port)
            publisher.loop_start()
            payload = b"x" * 300_000  # a message over many TLS records
            publisher.publish("machimori/v1/camera/cam-01/image/ev-1", payload, qos=1)
            publisher.publish("machimori/v1/river/river-01/telemetry", b"after", qos=1)
            wait_until(lambda: inbox.payloads() == [payload, b"after"], what="both over TLS")
            publisher.loop_stop()
            publisher.disconnect()
        finally:
            running.stop()


def test_tls_refuses_a_broker_it_cannot_verify(tmp_path, pki, pki_maker, inbox, caplog):
    other_ca, _, _ = pki_maker(tmp_path / "other")
    with Mosquitto(tls=pki) as broker:
        running = subscriber(broker, inbox, tls=TlsConfig(ca_file=other_ca))
        with caplog.at_level(logging.WARNING, logger="gateway.store.subscriber"):
            running.start()
            wait_until(lambda: "CERTIFICATE_VERIFY_FAILED" in logged(caplog))
        assert not running.connected.is_set()
        running.stop()
