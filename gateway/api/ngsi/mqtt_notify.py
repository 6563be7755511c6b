"""MQTT notifications (Orion's ``notification.mqtt``: ``url``, ``topic``, ``qos``, ``retain``,
``user``, ``passwd``): the notification's JSON body published to a topic instead of POSTed.

Least privilege. The notifier's own broker account (``ngsi.notifier_mqtt``: the city's broker,
provisioned with ``machimori provision add ... --kind notifier``, whose ACL lets it write only
under ``ngsi.mqtt_topic_prefix`` and read nothing) is used only for a subscription that names
exactly that broker (scheme, host, port) and brings no account of its own, and such a
subscription must publish under the prefix; its credentials are never sent to a broker a
subscriber chose. Any other broker gets the subscription's own ``user``/``passwd``, or none.

One paho client per (broker, account), connected on first use and kept; MQTT v5, so a broker that
refuses a publish (Mosquitto's ACL answers a QoS 1/2 PUBLISH with "Not authorized") is a failed
notification, retried and counted like an HTTP error.
"""

from __future__ import annotations

import re
import secrets
import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

from edge.runtime.uplink import MqttConfig
from gateway.api.ngsi.errors import bad

URL = re.compile(r"^mqtts?://[A-Za-z0-9.\-\[\]:]+(:\d{1,5})?/?$")
HIDDEN = "*****"  # how a GET shows ``passwd`` (Orion obfuscates it the same way)


@dataclass(frozen=True)
class Broker:
    tls: bool
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Broker:
        parts = urlsplit(url)
        tls = parts.scheme == "mqtts"
        return cls(tls, (parts.hostname or "").lower(), parts.port or (8883 if tls else 1883))


def own_broker(config: MqttConfig | None) -> Broker | None:
    if config is None:
        return None
    return Broker(config.tls is not None, config.host.lower(), config.port)


def parse_target(given: Any, own: Broker | None, prefix: str) -> dict[str, Any]:
    """``notification.mqtt`` as stored, or a BadRequest naming what is wrong."""
    if not isinstance(given, dict):
        raise bad("notification.mqtt: an object with url and topic")
    unknown = set(given) - {"url", "topic", "qos", "retain", "user", "passwd"}
    if unknown:
        raise bad(f"notification.mqtt: unknown field {sorted(unknown)[0]!r}")
    url, topic = given.get("url"), given.get("topic")
    if not isinstance(url, str) or not URL.match(url):
        raise bad("notification.mqtt.url: mqtt://host:port or mqtts://host:port")
    if (
        not isinstance(topic, str)
        or not 0 < len(topic.encode()) <= 1024
        or any(c in topic for c in "+#\0")
    ):
        raise bad("notification.mqtt.topic: a topic name (1-1024 bytes, no + # or NUL)")
    qos = given.get("qos", 0)
    if qos not in (0, 1, 2) or isinstance(qos, bool):
        raise bad("notification.mqtt.qos: 0, 1 or 2")
    retain = given.get("retain", False)
    if not isinstance(retain, bool):
        raise bad("notification.mqtt.retain: true or false")
    user, passwd = given.get("user"), given.get("passwd")
    if (user is None) != (passwd is None) or not all(
        isinstance(v, str) and v for v in (user, passwd) if v is not None
    ):
        raise bad("notification.mqtt: user and passwd go together, as text")
    if user is None and Broker.of(url) == own and not topic.startswith(prefix):
        raise bad(
            f"notification.mqtt.topic: on the city's broker the notifier publishes only under "
            f"{prefix!r} (or give the subscription's own user and passwd)"
        )
    target: dict[str, Any] = {"url": url, "topic": topic, "qos": qos, "retain": retain}
    if user is not None:
        target |= {"user": user, "passwd": passwd}
    return target


def shown(target: dict[str, Any]) -> dict[str, Any]:
    """The target as a GET shows it: the password hidden."""
    return target | ({"passwd": HIDDEN} if "passwd" in target else {})


class NotifyFailed(Exception):
    """A notification that did not reach the broker; the message is the reason counted."""


class _Connection:
    def __init__(self, broker: Broker, account: tuple[str, str] | None, own: MqttConfig | None):
        self.ready = threading.Event()
        self.refused: str | None = None
        self.acks: dict[int, ReasonCode | None] = {}
        self.acked = threading.Condition()
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=f"ngsi-notifier-{secrets.token_hex(4)}",
            protocol=mqtt.MQTTv5,
        )
        if account is not None:
            client.username_pw_set(*account)
        if own is not None and own.tls is not None:
            client.tls_set_context(own.tls.context())
        elif broker.tls:
            client.tls_set()
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self.client = client
        self.broker = broker

    def open(self, timeout_s: float) -> None:
        try:
            self.client.connect(self.broker.host, self.broker.port, keepalive=60)
        except (OSError, ValueError) as exc:
            raise NotifyFailed(f"{type(exc).__name__}: {exc}") from None
        self.client.loop_start()
        if not self.ready.wait(timeout_s) or self.refused:
            self.close()
            raise NotifyFailed(f"broker refused the connection: {self.refused or 'timeout'}")

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            self.refused = str(reason)
        self.ready.set()

    def _on_disconnect(self, *_: Any) -> None:
        self.ready.clear()

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        with self.acked:
            self.acks[mid] = reason
            self.acked.notify_all()

    def publish(self, target: dict[str, Any], body: bytes, timeout_s: float) -> None:
        info = self.client.publish(target["topic"], body, target["qos"], target["retain"])
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise NotifyFailed(f"publish failed: {mqtt.error_string(info.rc)}")
        with self.acked:
            if not self.acked.wait_for(lambda: info.mid in self.acks, timeout_s):
                raise NotifyFailed("no acknowledgement from the broker")
            reason = self.acks.pop(info.mid)
        if reason is not None and reason.is_failure:
            raise NotifyFailed(f"broker refused the publish: {reason}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class MqttSender:
    """Publishes notifications; called from the notifier's one sending thread."""

    def __init__(self, own: MqttConfig | None, timeout_s: float) -> None:
        self.own = own
        self.own_broker = own_broker(own)
        self.timeout_s = timeout_s
        self._connections: dict[tuple[Broker, tuple[str, str] | None], _Connection] = {}

    def _account(self, target: dict[str, Any], broker: Broker) -> tuple[str, str] | None:
        if "user" in target:
            return target["user"], target["passwd"]
        if broker == self.own_broker and self.own is not None and self.own.username:
            return self.own.username, self.own.password() or ""
        return None

    def send(self, target: dict[str, Any], body: bytes) -> None:
        """Publish ``body`` as ``target`` says, or raise NotifyFailed with the reason."""
        broker = Broker.of(target["url"])
        account = self._account(target, broker)
        key = (broker, account)
        connection = self._connections.get(key)
        if connection is not None and not connection.ready.is_set():
            connection.close()  # lost: a fresh one
            connection = None
        if connection is None:
            own = self.own if broker == self.own_broker else None
            connection = _Connection(broker, account, own)
            connection.open(self.timeout_s)
            self._connections[key] = connection
        try:
            connection.publish(target, body, self.timeout_s)
        except NotifyFailed:
            connection.close()
            del self._connections[key]
            raise

    def close(self) -> None:
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()
