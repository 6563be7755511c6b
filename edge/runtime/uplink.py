"""MQTT uplink: drains the outbox to the broker with QoS 1; a message leaves the outbox only when
the city store's acknowledgement covers it (``confirm: store``, edge.protocol.ack).

Two threads. The network thread owns the socket: connect, reconnect with exponential backoff and
jitter, keepalive, and the store's acknowledgements on ``.../ack``, which delete what they cover.
The pump thread moves messages from the outbox into paho, at most ``inflight`` unacknowledged at a
time and in outbox order, and turns PUBACKs into "sent" marks. A broker that crashes, or restarts
without the store's session, drops what it had: so after every reconnect, and when the store has
confirmed nothing for ``confirm_timeout_s`` (doubling up to ``confirm_timeout_max_s`` while it
stays silent), everything sent but unconfirmed is sent again, oldest first. Duplicates are
possible (at-least-once); the store dedups on ``(device, seq)``.

``confirm: broker`` deletes on PUBACK instead, for a city whose MQTT consumer is not the machimori
store and sends no acknowledgements: a broker crash can then lose what the broker held.

The retained ``status`` message says online on connect and is replaced by the will (offline) if the
device vanishes, or by an explicit offline message on a clean shutdown.
"""

from __future__ import annotations

import logging
import os
import random
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import paho.mqtt.client as mqtt

from edge.protocol import Ack, EnvelopeError, Status, Topic, TopicError, utc_timestamp
from edge.runtime.clock import Clock
from edge.runtime.health import Health
from edge.runtime.outbox import Outbox

log = logging.getLogger(__name__)
PASSWORD_ENV = "MACHIMORI_MQTT_PASSWORD"
Confirm = Literal["store", "broker"]
FLOOR_EVERY_S = 60.0  # at most one early status a minute to tell the store of a gap it must pass
# paho holds up to this many times ``inflight`` messages queued behind the ones on the wire, so the
# wire never waits for the pump thread; memory stays bounded by it.
HANDOVER_FACTOR = 10
PUMP_IDLE_S = 10.0  # the pump looks at the outbox at least this often, woken or not
# paho's select() wakes for traffic and for every publish (its socket pair), so a long wait only
# spares idle wake-ups; keepalive is checked after each, hence at most a quarter of it
NETWORK_WAIT_S = 5.0


@dataclass
class TlsConfig:
    """TLS to the broker: ``ca_file`` alone verifies the broker; cert and key add client auth."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    def context(self) -> ssl.SSLContext:
        """Verifies the broker's certificate and host name; the system CAs when no ca_file."""
        context = ssl.create_default_context(cafile=str(self.ca_file) if self.ca_file else None)
        if self.cert_file is not None:
            context.load_cert_chain(
                str(self.cert_file), str(self.key_file) if self.key_file else None
            )
        return context


@dataclass
class MqttConfig:
    host: str = "localhost"
    port: int = 1883
    # Per-device credentials: username is usually the device id. The password is read from
    # password_file (mode 0600, outside git) or the MACHIMORI_MQTT_PASSWORD environment variable.
    username: str | None = None
    password_file: Path | None = None
    tls: TlsConfig | None = None
    keepalive_s: int = 60
    reconnect_min_s: float = 1.0
    reconnect_max_s: float = 60.0
    inflight: int = 20  # unacknowledged QoS 1 messages on the wire at once
    status_interval_s: float = 300.0  # how often the retained status is refreshed
    # store: keep a message until the city store's acknowledgement covers it (nothing lost in a
    # broker crash); broker: delete on PUBACK (only for a city whose consumer sends no acks)
    confirm: Confirm = "store"
    confirm_timeout_s: float = 120.0  # send unconfirmed messages again after this much silence
    confirm_timeout_max_s: float = 3600.0  # the wait doubles up to this while the store is away

    def __post_init__(self) -> None:
        if not 0 < self.reconnect_min_s <= self.reconnect_max_s:
            raise ValueError("0 < reconnect_min_s <= reconnect_max_s")
        if self.inflight < 1:
            raise ValueError("inflight >= 1")
        if self.confirm not in ("store", "broker"):
            raise ValueError("confirm: expected 'store' or 'broker'")
        if not 0 < self.confirm_timeout_s <= self.confirm_timeout_max_s:
            raise ValueError("0 < confirm_timeout_s <= confirm_timeout_max_s")

    def password(self) -> str | None:
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").strip()
        return os.environ.get(PASSWORD_ENV)


def backoff_delay(attempt: int, low: float, high: float, rng: random.Random) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random, so a fleet that lost the
    broker together does not come back in lockstep."""
    ceiling = min(high, low * 2**attempt)
    return ceiling / 2 + rng.uniform(0, ceiling / 2)


class MqttUplink:
    def __init__(
        self,
        config: MqttConfig,
        kind: str,
        device: str,
        outbox: Outbox,
        health: Health,
        clock: Clock,
        on_message: Callable[[str, bytes], None] | None = None,
        subscriptions: Sequence[str] | None = None,
    ) -> None:
        self.config = config
        self.kind = kind
        self.device = device
        self.outbox = outbox
        self.health = health
        self.clock = clock
        # Messages from the city: by default this device's own cmd topic. The handler runs on
        # the network thread before the PUBACK goes out, so what it stores durably is not lost.
        # The store's acknowledgements are handled here and never reach it.
        self.on_message = on_message
        self.connected = threading.Event()
        self.wake = threading.Event()
        self._stop = threading.Event()
        self._closing = False  # set by stop(): the disconnect that follows is ours, not news
        self._acked_lock = threading.Lock()
        self._acked_mids: list[int] = []  # PUBACKs from the network thread, for the pump
        self._mids: dict[int, int] = {}  # paho mid -> outbox id, pump thread only
        self._handed = 0  # highest outbox id handed to paho
        self._rewind = threading.Event()  # send everything unconfirmed again, oldest first
        self._timeout_s = config.confirm_timeout_s
        self._waiting_since: float | None = None  # since when sent messages await the store
        self._floor_told = 0.0
        self._rng = random.Random()
        self._threads: list[threading.Thread] = []
        self._status_topic = str(Topic(kind, device, "status"))
        self.subscriptions = (
            tuple(subscriptions)
            if subscriptions is not None
            else (str(Topic(kind, device, "cmd")),)
        )
        if config.confirm == "store" and subscriptions is None:
            self.subscriptions += (str(Topic(kind, device, "ack")),)
        self.client = self._make_client()

    # -- setup --------------------------------------------------------------------------------
    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.device,
            clean_session=False,  # the broker keeps our cmd subscription while we are away
            protocol=mqtt.MQTTv311,
        )
        client.max_inflight_messages_set(self.config.inflight)
        client.max_queued_messages_set(0)
        if self.config.username is not None:
            client.username_pw_set(self.config.username, self.config.password())
        if self.config.tls is not None:
            client.tls_set_context(self.config.tls.context())
        client.will_set(self._status_topic, self._status("offline"), qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _status(self, state: str) -> bytes:
        now_ms = int(self.clock.now().timestamp() * 1000)
        health = self.health.snapshot({"outbox": self.outbox.counters(now_ms)})
        return Status(self.device, utc_timestamp(self.clock.now()), state, health).to_json()

    # -- paho callbacks (network thread) ------------------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            self.health.error(f"broker refused connection: {reason}")
            log.warning("broker refused connection", extra={"fields": {"reason": str(reason)}})
            return
        self._attempt = 0
        for subscription in self.subscriptions:
            client.subscribe(subscription, qos=1)
        client.publish(self._status_topic, self._status("online"), qos=1, retain=True)
        self.health.count("connects")
        log.info("connected", extra={"fields": {"broker": self._where()}})
        self._rewind.set()  # a restarted broker may have dropped what it had not delivered
        self.connected.set()
        self.wake.set()

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        if self.connected.is_set() and not self._closing:
            self.health.error(f"lost broker connection: {reason}")
            log.warning("disconnected", extra={"fields": {"reason": str(reason)}})
        self.connected.clear()

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, _r: object, _p: object) -> None:
        with self._acked_lock:
            self._acked_mids.append(mid)
        self.wake.set()

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        if message.topic.endswith("/ack"):
            self._on_ack(message.topic, message.payload)
            return
        if self.on_message is None:
            return
        try:
            self.on_message(message.topic, message.payload)
        except Exception as exc:  # a handler's bug must not take the connection down
            self.health.count("message_errors")
            self.health.error(f"handling {message.topic} failed: {exc}")
            log.exception("message handler failed", extra={"fields": {"topic": message.topic}})

    def _on_ack(self, topic_name: str, payload: bytes) -> None:
        """The store holds what ``ack`` covers: delete it here. A bad acknowledgement is counted
        and deletes nothing."""
        try:
            topic = Topic.parse(topic_name)
            ack = Ack.from_json(payload)
            if ack.device != topic.device:
                raise EnvelopeError("device", f"ack of {ack.device!r} on {topic_name}")
        except (TopicError, EnvelopeError) as exc:
            self.health.count("bad_acks")
            log.warning("bad acknowledgement", extra={"fields": {"error": str(exc)}})
            return
        if self.config.confirm != "store":
            return
        if self.outbox.confirm(topic.kind, ack):
            self._timeout_s = self.config.confirm_timeout_s
            self._waiting_since = time.monotonic()
        if ack.resend:
            self.health.count("resend_requests")
            self._rewind.set()
        self.wake.set()
        if ack.device == self.device and ack.seq + 1 < self.outbox.floor():
            self._tell_floor()

    def _tell_floor(self) -> None:
        """The store waits for seqs this device no longer holds (its full outbox dropped them):
        the status, whose ``outbox.floor`` lets the store pass over them, goes out now."""
        now = time.monotonic()
        if now - self._floor_told >= FLOOR_EVERY_S:
            self._floor_told = now
            self.publish_status("online")

    # -- threads ------------------------------------------------------------------------------
    def start(self) -> None:
        for target, name in ((self._network, "mqtt-network"), (self._pump, "mqtt-pump")):
            thread = threading.Thread(target=target, name=f"{name}-{self.device}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def _network(self) -> None:
        self._attempt = 0
        socket_open = False
        first = True
        while not self._stop.is_set():
            if not socket_open:
                try:
                    if first:
                        self.client.connect(
                            self.config.host, self.config.port, self.config.keepalive_s
                        )
                    else:
                        self.client.reconnect()
                    socket_open, first = True, False
                except (OSError, ssl.SSLError) as exc:
                    self.health.error(f"cannot reach broker {self._where()}: {exc}")
                    log.warning(
                        "broker unreachable",
                        extra={"fields": {"broker": self._where(), "error": str(exc)}},
                    )
                    self._sleep_backoff()
                    continue
            wait = min(NETWORK_WAIT_S, self.config.keepalive_s / 4)
            if self.client.loop(timeout=wait) != mqtt.MQTT_ERR_SUCCESS:
                socket_open = False
                self.connected.clear()
                if not self._stop.is_set():
                    self._sleep_backoff()

    def _sleep_backoff(self) -> None:
        cfg = self.config
        delay = backoff_delay(self._attempt, cfg.reconnect_min_s, cfg.reconnect_max_s, self._rng)
        self._attempt += 1
        self.health.count("reconnect_attempts")
        self._stop.wait(delay)

    def _pump(self) -> None:
        next_status = time.monotonic() + self.config.status_interval_s
        while not self._stop.is_set():
            self.wake.wait(timeout=self._idle_s(next_status))
            self.wake.clear()
            self._apply_acks()
            if not self.connected.is_set():
                continue
            self._check_confirmations()
            self._hand_over()
            if time.monotonic() >= next_status:
                next_status = time.monotonic() + self.config.status_interval_s
                self.publish_status("online")

    def _idle_s(self, next_status: float) -> float:
        """How long the pump sleeps unless woken (a message queued, a PUBACK, an ack, a
        connect): until the status or a confirmation deadline is due, at most PUMP_IDLE_S. An
        idle device (a tracker between fixes) then costs next to nothing: a city runs
        thousands."""
        due = next_status
        if self._waiting_since is not None:
            due = min(due, self._waiting_since + self._timeout_s)
        return min(PUMP_IDLE_S, max(0.01, due - time.monotonic()))

    def _apply_acks(self) -> None:
        with self._acked_lock:
            mids, self._acked_mids = self._acked_mids, []
        ids = [self._mids.pop(mid) for mid in mids if mid in self._mids]
        if not ids:
            return
        self.health.count("sent", len(ids))
        if self.config.confirm == "broker":
            self.outbox.ack(ids)
            return
        self.outbox.mark_sent(ids, int(self.clock.now().timestamp() * 1000))
        if self._waiting_since is None:
            self._waiting_since = time.monotonic()

    def _check_confirmations(self) -> None:
        """Send everything unconfirmed again when the store has been silent too long."""
        since = self._waiting_since
        if since is None or time.monotonic() - since < self._timeout_s:
            return
        if not self.outbox.unconfirmed()[0]:
            self._waiting_since = None
            return
        self.health.count("confirm_timeouts")
        log.info(
            "store silent, sending unconfirmed again",
            extra={"fields": {"after_s": self._timeout_s}},
        )
        self._timeout_s = min(2 * self._timeout_s, self.config.confirm_timeout_max_s)
        self._waiting_since = time.monotonic()
        self._rewind.set()

    def _hand_over(self) -> None:
        if self._rewind.is_set():
            self._rewind.clear()
            self._handed = 0
        room = HANDOVER_FACTOR * self.config.inflight - len(self._mids)
        if room <= 0:
            return
        on_the_wire = set(self._mids.values())  # paho re-sends these itself after a reconnect
        handed = []
        for message in self.outbox.pending(after_id=self._handed, limit=room):
            self._handed = message.id
            if message.id in on_the_wire:
                continue
            if message.sent:
                self.health.count("resent")
            info = self.client.publish(message.topic, message.payload, message.qos, message.retain)
            self._mids[info.mid] = message.id
            handed.append(message.id)
        self.outbox.handed(handed)

    def publish_status(self, state: str) -> mqtt.MQTTMessageInfo:
        return self.client.publish(self._status_topic, self._status(state), qos=1, retain=True)

    @property
    def in_flight(self) -> int:
        return len(self._mids)

    def _unflushed(self) -> bool:
        """Whether anything is still to reach the broker (unsent, or on the wire)."""
        return bool(self._mids) or self.outbox.depth > self.outbox.unconfirmed()[0]

    def stop(self, flush_timeout_s: float = 5.0) -> None:
        """Give queued messages ``flush_timeout_s`` to go, say offline, and disconnect. What is not
        acknowledged by then stays in the outbox for the next start."""
        deadline = time.monotonic() + flush_timeout_s
        while time.monotonic() < deadline and self.connected.is_set() and self._unflushed():
            self.wake.set()
            time.sleep(0.05)
        self._closing = True
        if self.connected.is_set():
            info = self.publish_status("offline")
            try:
                info.wait_for_publish(timeout=min(2.0, flush_timeout_s))
            except RuntimeError:
                pass
        self.client.disconnect()  # also wakes the network thread from its wait
        self._stop.set()
        self.wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._apply_acks()
