"""One MQTT 5.0 connection that receives QoS 1 messages and acknowledges each only when told to,
and publishes the store's own acknowledgements to devices (QoS 0, retained).

The store must not acknowledge a message before the transaction holding it committed, so acks are
the caller's: ``on_messages`` gets what one socket read carried, and ``ack`` sends the PUBACKs
later, from any thread. A packet id means something only on the connection it arrived on, so each
connection has a generation number and an ack for an older one is not sent (the broker sends those
messages again, and the store's ``(device, seq)`` key counts the second copy as a duplicate).

The thread reconnects with backoff and jitter, keeps the connection alive with PINGREQ while the
store is busy, and leaves with a DISCONNECT that keeps the session (and what it queues) for the
next start.
"""

from __future__ import annotations

import logging
import random
import select
import socket
import threading
import time
from collections.abc import Callable, Sequence

from edge.runtime.uplink import MqttConfig, backoff_delay
from gateway.store import mqtt5

log = logging.getLogger(__name__)
READ_BYTES = 256 * 1024
CONNECT_TIMEOUT_S = 10.0
POLL_S = 1.0  # how often an idle read wakes to check keepalive and stop


class Refused(ConnectionError):
    """The broker answered CONNECT or SUBSCRIBE with a failure Reason Code."""


class Subscriber:
    def __init__(
        self,
        config: MqttConfig,
        client_id: str,
        filters: Sequence[str],
        on_messages: Callable[[list[mqtt5.Publish], int], None],
        *,
        session_expiry_s: int,
        receive_max: int,
        on_connected: Callable[[bool], None] | None = None,
    ) -> None:
        self.config = config
        self.client_id = client_id
        self.filters = tuple(filters)
        self.on_messages = on_messages
        # called on the connection thread after each CONNACK and SUBSCRIBE, with the CONNACK's
        # Session Present flag: False after a broker lost our session (and what it queued)
        self.on_connected = on_connected
        self.session_expiry_s = session_expiry_s
        self.receive_max = receive_max
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.generation = 0  # connections made so far; identifies the current one
        # Every socket operation happens on the connection thread (a TLS socket must not be read
        # and written from two threads at once); other threads hand it acks and wake it.
        self._lock = threading.Lock()
        self._acks: list[int] = []
        self._publishes: list[bytes] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._last_sent = 0.0
        self._stop = threading.Event()
        self._rng = random.Random()
        self._thread = threading.Thread(target=self._run, name="ingest-mqtt", daemon=True)

    @property
    def where(self) -> str:
        return f"{self.config.host}:{self.config.port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Send the acks handed over, then DISCONNECT normally (0x00): the broker keeps the
        session and queues for us."""
        self._stop.set()
        self._wake()
        self._thread.join(timeout_s)
        self._wake_r.close()
        self._wake_w.close()

    def ack(self, packet_ids: Sequence[int], generation: int) -> bool:
        """Queue PUBACKs for ``packet_ids`` if their connection is still the current one."""
        with self._lock:
            if generation != self.generation or not self.connected.is_set():
                return False
            wake = not self._acks
            self._acks.extend(packet_ids)
        if wake:
            self._wake()
        return True

    def publish(self, topic: str, payload: bytes, *, retain: bool) -> bool:
        """Queue a QoS 0 PUBLISH for the connection thread; False (nothing queued) while no
        connection is up."""
        packet = mqtt5.publish_qos0(topic, payload, retain=retain)
        with self._lock:
            if not self.connected.is_set():
                return False
            wake = not self._acks and not self._publishes
            self._publishes.append(packet)
        if wake:
            self._wake()
        return True

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # already full of wake-ups, or closed at stop
            pass

    # -- the connection thread --------------------------------------------------------------------
    def _run(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            try:
                sock, reader, keepalive_s = self._connect()
            except (OSError, mqtt5.ProtocolError) as exc:
                if self._stop.is_set():
                    return
                log.warning(
                    "cannot connect to the broker",
                    extra={"fields": {"broker": self.where, "error": str(exc)}},
                )
                cfg = self.config
                delay = backoff_delay(attempt, cfg.reconnect_min_s, cfg.reconnect_max_s, self._rng)
                attempt += 1
                self._stop.wait(delay)
                continue
            attempt = 0
            try:
                self._serve(sock, reader, keepalive_s)
                self._flush(sock)
                sock.sendall(mqtt5.DISCONNECT_NORMAL)
            except (OSError, mqtt5.ProtocolError) as exc:
                if not self._stop.is_set():
                    log.warning("lost the broker", extra={"fields": {"error": str(exc)}})
            finally:
                with self._lock:
                    self.connected.clear()
                    self._acks.clear()
                    self._publishes.clear()
                sock.close()
            if not self._stop.is_set():
                self._stop.wait(self.config.reconnect_min_s * self._rng.uniform(0.5, 1.0))

    def _connect(self) -> tuple[socket.socket, mqtt5.PacketReader, float]:
        """TCP (and TLS), CONNECT, CONNACK, SUBSCRIBE; returns the socket, its reader and the
        keepalive the broker asked for."""
        cfg = self.config
        sock = socket.create_connection((cfg.host, cfg.port), timeout=CONNECT_TIMEOUT_S)
        reader = mqtt5.PacketReader()
        try:
            if cfg.tls is not None:
                sock = cfg.tls.context().wrap_socket(sock, server_hostname=cfg.host)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._send(
                sock,
                mqtt5.connect(
                    self.client_id,
                    cfg.keepalive_s,
                    clean_start=self.session_expiry_s == 0,
                    session_expiry_s=self.session_expiry_s,
                    receive_max=self.receive_max,
                    username=cfg.username,
                    password=cfg.password() if cfg.username is not None else None,
                ),
            )
            connack, early = self._await_connack(sock, reader)
            if connack.reason >= 0x80:
                raise Refused(
                    f"broker refused the store: {_reason(connack.reason, connack.properties)}"
                )
            keepalive = connack.properties.get(mqtt5.SERVER_KEEP_ALIVE, cfg.keepalive_s)
            assert isinstance(keepalive, int)
            # No Local (3.8.3.1) keeps the store's own acknowledgements from coming back to it;
            # a shared subscription may not set it, and gets them, to be ignored
            options = [
                (n, 1 if n.startswith("$share/") else 1 | mqtt5.NO_LOCAL) for n in self.filters
            ]
            self._send(sock, mqtt5.subscribe(1, options))
        except BaseException:
            sock.close()
            raise
        with self._lock:
            self.generation += 1
            self._acks.clear()
            self.connected.set()
        log.info(
            "connected",
            extra={
                "fields": {
                    "broker": self.where,
                    "topics": ",".join(self.filters),
                    "session_present": connack.session_present,
                }
            },
        )
        if self.on_connected is not None:
            self.on_connected(connack.session_present)
        self._deliver(early)
        return sock, reader, float(keepalive)

    def _await_connack(
        self, sock: socket.socket, reader: mqtt5.PacketReader
    ) -> tuple[mqtt5.Connack, list[mqtt5.Packet]]:
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        while time.monotonic() < deadline:
            data = sock.recv(READ_BYTES)
            if not data:
                raise ConnectionError("the broker closed the connection before CONNACK")
            packets = reader.feed(data)
            if packets:
                first, rest = packets[0], packets[1:]
                if not isinstance(first, mqtt5.Connack):
                    raise mqtt5.ProtocolError(f"expected CONNACK first, got {type(first).__name__}")
                return first, rest
        raise TimeoutError(f"no CONNACK within {CONNECT_TIMEOUT_S:.0f} s")

    def _serve(self, sock: socket.socket, reader: mqtt5.PacketReader, keepalive_s: float) -> None:
        """Read, hand over, send acks and pings, until stopped or the connection fails."""
        poll_s = POLL_S if keepalive_s == 0 else min(POLL_S, keepalive_s / 2)
        last_heard = time.monotonic()
        ping_sent = 0.0
        while not self._stop.is_set():
            # With TLS, one recv takes a whole record (16 KB at most, less than READ_BYTES), so no
            # decrypted bytes wait inside OpenSSL where select() cannot see them.
            ready, _, _ = select.select([sock, self._wake_r], [], [], poll_s)
            readable = sock in ready
            if self._wake_r in ready:
                self._drain_wakeups()
            self._flush(sock)
            now = time.monotonic()
            if readable:
                data = sock.recv(READ_BYTES)  # waits (up to the socket timeout) for a whole record
                if not data:
                    raise ConnectionError("the broker closed the connection")
                last_heard, ping_sent = now, 0.0
                self._deliver(reader.feed(data))
            if keepalive_s == 0:
                continue
            # 3.1.2.10: something must go out within every keepalive. PUBACKs count, so only an
            # idle or stalled store pings, and a PINGRESP that never comes ends the connection.
            if ping_sent and now - ping_sent > keepalive_s:
                raise TimeoutError(f"no PINGRESP within {keepalive_s:.0f} s")
            if not ping_sent and now - max(self._last_sent, last_heard) >= keepalive_s / 2:
                self._send(sock, mqtt5.PINGREQ_PACKET)
                ping_sent = now

    def _drain_wakeups(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass

    def _flush(self, sock: socket.socket) -> None:
        """Send the PUBACKs and PUBLISHes handed over, acks first: they free the broker's
        window for us."""
        with self._lock:
            acks, self._acks = self._acks, []
            publishes, self._publishes = self._publishes, []
        if acks:
            self._send(sock, mqtt5.puback(acks))
        if publishes:
            self._send(sock, b"".join(publishes))

    def _deliver(self, packets: list[mqtt5.Packet]) -> None:
        publishes = [p for p in packets if type(p) is mqtt5.Publish]
        if len(publishes) != len(packets):
            for packet in packets:
                self._control(packet)
        if publishes:
            self.on_messages(publishes, self.generation)

    def _control(self, packet: mqtt5.Packet) -> None:
        if isinstance(packet, mqtt5.Suback):
            failed = [
                (name, code)
                for name, code in zip(self.filters, packet.reasons, strict=False)
                if code >= 0x80
            ]
            for name, code in failed:
                log.error(
                    "broker refused a subscription",
                    extra={"fields": {"topic": name, "reason": mqtt5.reason_name(code)}},
                )
            if not failed:
                self.subscribed.set()
        elif isinstance(packet, mqtt5.Disconnect):
            raise ConnectionError(
                f"the broker disconnected us: {_reason(packet.reason, packet.properties)}"
            )
        elif isinstance(packet, mqtt5.Connack):
            raise mqtt5.ProtocolError("a second CONNACK on one connection (3.2)")

    def _send(self, sock: socket.socket, data: bytes) -> None:
        sock.sendall(data)
        self._last_sent = time.monotonic()


def _reason(code: int, properties: dict[int, object]) -> str:
    text = properties.get(mqtt5.REASON_STRING)
    return mqtt5.reason_name(code) + (f" ({text})" if text else "")
