"""MQTT ingest: subscribe to ``machimori/v1/#``, check every message, write them in batches.

Nothing is lost between the broker and the database: the session is persistent (MQTT v5, clean
start off, a session expiry), and a QoS 1 message is acknowledged only after the transaction
holding it committed. If the store dies first, the broker sends the message again and the store's
``(device, seq)`` key makes the second copy a counted duplicate. The broker may have ``receive_max``
unacknowledged messages out to us, which bounds the memory used while the database is slow or away.

Batching is natural: the writer takes whatever has arrived (up to ``batch_max``) and commits it in
one transaction, so a quiet network gets each reading stored at once and a burst gets big batches.
Several workers can split the stream with a shared subscription (``$share/{group}/...``).
"""

from __future__ import annotations

import logging
import queue
import ssl
import threading
import time
from collections import Counter
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge.protocol.topics import PREFIX, Topic
from edge.runtime.clock import Clock
from edge.runtime.uplink import MqttConfig
from gateway.store.config import IngestConfig
from gateway.store.db import Store
from gateway.store.images import ImageFiles
from gateway.store.intake import (
    Batch,
    Image,
    Message,
    Record,
    Rejection,
    StatusUpdate,
    classify,
    to_ms,
)

log = logging.getLogger(__name__)
ALL = f"{PREFIX}/#"
STATUS = f"{PREFIX}/+/+/status"
WARN_EVERY_S = 60.0  # one warning line per rejection reason per minute, with the count


class IngestStats:
    """Counters of one ingest worker, for /healthz and the logs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.last_commit_ms: int | None = None
        self.connected = False

    def add(self, **counts: int) -> None:
        with self._lock:
            self.counts.update(counts)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "connected": self.connected,
                "last_commit_ms": self.last_commit_ms,
                **dict(sorted(self.counts.items())),
            }


class Ingest:
    """One ingest worker: a paho network thread and a writer thread."""

    def __init__(
        self,
        mqtt_config: MqttConfig,
        config: IngestConfig,
        store: Store,
        images: ImageFiles,
        clock: Clock,
        client_id: str | None = None,
    ) -> None:
        self.mqtt_config = mqtt_config
        self.config = config
        self.store = store
        self.images = images
        self.clock = clock
        self.stats = IngestStats()
        self.client_id = client_id or config.client_id
        self._queue: queue.SimpleQueue[tuple[str, bytes, int, int, int]] = queue.SimpleQueue()
        self._accepting = True
        self._stop = threading.Event()
        self._ack_lock = threading.Lock()
        self._generation = 0  # connection count: a packet id is only acked on its own connection
        self._warned: dict[str, tuple[float, int]] = {}
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)
        self.subscribed = threading.Event()
        self.client = self._make_client()

    @property
    def topic(self) -> str:
        group = self.config.shared_group
        return f"$share/{group}/{ALL}" if group else ALL

    def _make_client(self) -> mqtt.Client:
        cfg = self.mqtt_config
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        if cfg.username is not None:
            client.username_pw_set(cfg.username, cfg.password())
        if cfg.tls is not None:
            client.tls_set(
                ca_certs=str(cfg.tls.ca_file) if cfg.tls.ca_file else None,
                certfile=str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
                keyfile=str(cfg.tls.key_file) if cfg.tls.key_file else None,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
        client.reconnect_delay_set(int(max(1, cfg.reconnect_min_s)), int(cfg.reconnect_max_s))
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_subscribe = lambda *_: self.subscribed.set()
        client.on_message = self._on_message
        return client

    # -- paho callbacks (network thread) ----------------------------------------------------------
    def _on_connect(
        self, client: mqtt.Client, _u: object, _f: object, reason: Any, _p: object
    ) -> None:
        if reason.is_failure:
            log.warning("broker refused the store", extra={"fields": {"reason": str(reason)}})
            return
        with self._ack_lock:
            self._generation += 1
            self.stats.connected = True
        topics = [(self.topic, SubscribeOptions(qos=1))]
        if self.config.shared_group:
            # a shared subscription gets no retained messages, and statuses are retained
            topics.append((STATUS, SubscribeOptions(qos=1)))
        client.subscribe(topics)
        log.info("connected", extra={"fields": {"broker": self._where(), "topic": self.topic}})

    def _on_disconnect(
        self, _c: mqtt.Client, _u: object, _f: object, reason: object, _p: object
    ) -> None:
        if self.stats.connected and not self._stop.is_set():
            log.warning("lost the broker", extra={"fields": {"reason": str(reason)}})
        self.stats.connected = False

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        if self._accepting:  # after stop() began, unacknowledged: the broker sends it again
            self._queue.put(
                (message.topic, message.payload, message.mid, message.qos, self._generation)
            )

    def _where(self) -> str:
        return f"{self.mqtt_config.host}:{self.mqtt_config.port}"

    # -- running ----------------------------------------------------------------------------------
    def start(self) -> None:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = self.config.session_expiry_s
        props.ReceiveMaximum = self.config.receive_max
        self._writer.start()
        self.client.connect_async(
            self.mqtt_config.host,
            self.mqtt_config.port,
            self.mqtt_config.keepalive_s,
            clean_start=self.config.session_expiry_s == 0,
            properties=props,
        )
        self.client.loop_start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Store and acknowledge what has arrived, then leave; later messages wait at the
        broker for the next start."""
        self._accepting = False
        self._stop.set()
        if self._writer.is_alive():
            self._writer.join(timeout_s)
        self.client.disconnect()
        self.client.loop_stop()

    def _write_loop(self) -> None:
        while True:
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            items = [first]
            while len(items) < self.config.batch_max:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            if self._handle(items):
                self._ack(items)

    def _handle(self, items: list[tuple[str, bytes, int, int, int]]) -> bool:
        """Check and store one batch; False if it could not be stored (then it is not acked)."""
        batch = Batch(received_ms=to_ms(self.clock.now()))
        ignored = 0
        for topic, payload, *_ in items:
            record = classify(
                topic, payload, self.config.max_image_bytes, self.config.keep_rejected_bytes
            )
            if record is None:
                ignored += 1
            else:
                batch.add(record)
        if not self._persist(batch):
            return False
        for rejection in batch.rejections:
            self._warn(rejection)
        self.stats.add(received=len(items), ignored=ignored, batches=1)
        self.stats.last_commit_ms = batch.received_ms
        return True

    def _persist(self, batch: Batch) -> bool:
        """Write images, then the batch; retry while the database is away. A batch the database
        refuses for its content is split, so one bad message cannot block the others."""
        attempt = 0
        while True:
            try:
                for image in batch.images:
                    self.images.save(image.sha256, image.jpeg)
                result = self.store.write(batch)
            except (OSError, *self.store.dialect.transient) as exc:
                attempt += 1
                self.stats.add(write_errors=1)
                log.warning(
                    "cannot store, will retry",
                    extra={"fields": {"error": str(exc).splitlines()[0], "attempt": attempt}},
                )
                if self._stop.wait(min(30.0, 0.5 * 2**attempt)) and attempt >= 3:
                    return False  # stopping: the broker keeps these for the next start
                continue
            except Exception as exc:  # the database refused this batch's content
                if len(batch) == 1:
                    return self._store_refused(batch, exc)
                self.stats.add(split_batches=1)
                return all(self._persist(single) for single in _split(batch))
            self.stats.add(
                stored=result.stored,
                duplicates=result.duplicates,
                statuses=result.statuses,
                images=result.images,
                rejected=result.rejected,
            )
            return True

    def _store_refused(self, batch: Batch, exc: Exception) -> bool:
        (record,) = _records(batch)
        log.error(
            "database refused a message; kept as a rejection",
            extra={"fields": {"error": str(exc).splitlines()[0], "record": type(record).__name__}},
        )
        if isinstance(record, Rejection):
            return True  # nothing left to keep it as; acknowledged so it cannot block ingest
        detail = str(exc).splitlines()[0][:1000]
        rejection = Rejection(_topic_of(record), "store_error", detail, repr(record).encode())
        return self._persist(Batch(batch.received_ms, rejections=[rejection]))

    def _ack(self, items: list[tuple[str, bytes, int, int, int]]) -> None:
        with self._ack_lock:
            for _topic, _payload, mid, qos, generation in items:
                if qos > 0 and generation == self._generation:
                    self.client.ack(mid, qos)

    def _warn(self, rejection: Rejection) -> None:
        """Log rejections without flooding the log: the first of a reason at once, then one line
        a minute with how many came meanwhile."""
        now = time.monotonic()
        last, suppressed = self._warned.get(rejection.reason, (0.0, 0))
        if now - last < WARN_EVERY_S and last:
            self._warned[rejection.reason] = (last, suppressed + 1)
            return
        self._warned[rejection.reason] = (now, 0)
        log.warning(
            "message rejected",
            extra={
                "fields": {
                    "reason": rejection.reason,
                    "topic": rejection.topic,
                    "detail": rejection.detail,
                    "also_since_last": suppressed,
                }
            },
        )


def _records(batch: Batch) -> list[Record]:
    return [*batch.messages, *batch.statuses, *batch.images, *batch.rejections]


def _split(batch: Batch) -> list[Batch]:
    singles = []
    for record in _records(batch):
        single = Batch(batch.received_ms)
        single.add(record)
        singles.append(single)
    return singles


def _topic_of(record: Message | StatusUpdate | Image) -> str:
    if isinstance(record, Image):
        return str(Topic(record.kind, record.device, "image", record.event_id))
    channel = record.channel if isinstance(record, Message) else "status"
    return str(Topic(record.kind, record.device, channel))
