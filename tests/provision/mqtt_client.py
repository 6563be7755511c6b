"""A small MQTT client for the provisioning tests: log in as one identity, subscribe, publish,
and see what the broker lets through (a denied publish is dropped silently by Mosquitto, so the
tests publish a marker after it: messages of one client arrive in order)."""

from __future__ import annotations

import queue
import ssl
import threading
import time

import paho.mqtt.client as mqtt


class Refused(Exception):
    """The broker refused the connection (CONNACK failure, or TLS)."""


class Client:
    def __init__(
        self,
        broker: object,
        user: str,
        password: str | None,
        *,
        tls: ssl.SSLContext | None = None,
        client_id: str | None = None,
    ) -> None:
        self.messages: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.disconnected = threading.Event()
        self._connack: queue.Queue[object] = queue.Queue()
        self._subacks: queue.Queue[object] = queue.Queue()
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id or f"{user}-{id(self)}",
            protocol=mqtt.MQTTv311,
        )
        self.client.username_pw_set(user, password)
        if tls is not None:
            self.client.tls_set_context(tls)
        self.client.on_connect = lambda _c, _u, _f, rc, _p: self._connack.put(rc)
        self.client.on_disconnect = lambda *_: (self.disconnected.set(), self._connack.put(None))
        self.client.on_subscribe = lambda _c, _u, _m, rcs, _p: self._subacks.put(rcs)
        self.client.on_message = lambda _c, _u, m: self.messages.put((m.topic, m.payload))
        try:
            self.client.connect(broker.host, broker.port, keepalive=30)  # type: ignore[attr-defined]
        except (OSError, ssl.SSLError) as exc:
            raise Refused(f"{user}: {exc}") from exc
        self.client.loop_start()
        try:
            rc = self._connack.get(timeout=10)
        except queue.Empty:
            rc = None
        if rc is None:  # the broker hung up before its CONNACK: it refused the TLS handshake
            self.close()
            raise Refused(f"{user}: no CONNACK")
        if getattr(rc, "is_failure", False):
            self.close()
            raise Refused(f"{user}: {rc}")

    def subscribe(self, *topics: str) -> None:
        for topic in topics:
            self.client.subscribe(topic, qos=1)
            self._subacks.get(timeout=10)

    def publish(self, topic: str, payload: bytes = b"x") -> None:
        self.client.publish(topic, payload, qos=1).wait_for_publish(10)

    def received_until(self, marker: str, timeout_s: float = 10.0) -> list[str]:
        """Topics received up to and including ``marker``."""
        topics: list[str] = []
        deadline = time.monotonic() + timeout_s
        while marker not in topics:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{marker} never arrived; got {topics}"
            try:
                topics.append(self.messages.get(timeout=remaining)[0])
            except queue.Empty:
                pass
        return topics

    def connected(self) -> bool:
        return self.client.is_connected()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def refused(broker: object, user: str, password: str | None, **kwargs: object) -> bool:
    try:
        Client(broker, user, password, **kwargs).close()  # type: ignore[arg-type]
    except Refused:
        return True
    return False
