"""MQTT ingest: subscribe to ``machimori/v1/#``, check every message, write them in batches.

Nothing is lost between the broker and the database: the session is persistent (MQTT v5, clean
start off, a session expiry), and a QoS 1 message is acknowledged only after the transaction
holding it committed. If the store dies first, the broker sends the message again and the store's
``(device, seq)`` key makes the second copy a counted duplicate. The broker may have ``receive_max``
unacknowledged messages out to us, which bounds the memory used while the database is slow or away.

The store acknowledges end to end: after each commit it publishes, for every device the batch
carried, a retained watermark on ``machimori/v1/{kind}/{device}/ack`` (edge.protocol.ack), and a
device deletes a message from its outbox only when that covers it. The watermark is computed in the
database, so several workers agree on it. When the broker has lost the store's session (restarted
without its persistence file, say), what it queued for the store is gone: the store says so loudly
(log and status) and acknowledges every device again with ``resend``, and the devices send
everything unconfirmed again at once.

Batching is natural: the writer takes whatever has arrived (up to ``batch_max``) and commits it in
one transaction, so a quiet network gets each reading stored at once and a burst gets big batches.
Several workers can split the stream with a shared subscription (``$share/{group}/...``).

The MQTT side is the store's own lean MQTT 5 subscriber (subscriber.py, mqtt5.py), not paho:
receiving was most of the cost of a stored message, and a city's busiest host is this one.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from typing import Any

from edge.protocol import Ack
from edge.protocol.ack import seq_ranges
from edge.protocol.topics import PREFIX, Topic
from edge.runtime.clock import Clock
from edge.runtime.uplink import MqttConfig
from gateway.store.config import IngestConfig
from gateway.store.db import Store, WriteResult
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
from gateway.store.mqtt5 import Publish
from gateway.store.subscriber import Subscriber

log = logging.getLogger(__name__)
ALL = f"{PREFIX}/#"
STATUS = f"{PREFIX}/+/+/status"
WARN_EVERY_S = 60.0  # one warning line per rejection reason per minute, with the count
Chunk = tuple[int, list[Publish]]  # what one socket read carried, with its connection generation


class IngestStats:
    """Counters of one ingest worker, for /healthz and the logs."""

    def __init__(self, subscriber: Subscriber) -> None:
        self._lock = threading.Lock()
        self._subscriber = subscriber
        self.counts: Counter[str] = Counter()
        self.last_commit_ms: int | None = None
        self.session_lost_ms: int | None = None  # when the broker last lost our session

    def add(self, **counts: int) -> None:
        with self._lock:
            self.counts.update(counts)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "connected": self._subscriber.connected.is_set(),
                "last_commit_ms": self.last_commit_ms,
                "broker_session_lost_ms": self.session_lost_ms,
                **dict(sorted(self.counts.items())),
            }


class Ingest:
    """One ingest worker: the MQTT connection thread and a writer thread."""

    def __init__(
        self,
        mqtt_config: MqttConfig,
        config: IngestConfig,
        store: Store,
        images: ImageFiles,
        clock: Clock,
        client_id: str | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.images = images
        self.clock = clock
        filters = [self.topic]
        if config.shared_group:
            filters.append(STATUS)  # a shared subscription gets no retained messages
        self.subscriber = Subscriber(
            mqtt_config,
            client_id or config.client_id,
            filters,
            self._on_messages,
            session_expiry_s=config.session_expiry_s,
            receive_max=config.receive_max,
            on_connected=self._on_connected,
        )
        self.subscribed = self.subscriber.subscribed
        self.stats = IngestStats(self.subscriber)
        self._queue: queue.SimpleQueue[Chunk] = queue.SimpleQueue()
        self._accepting = True
        self._stop = threading.Event()
        self._warned: dict[str, tuple[float, int]] = {}
        self._ack_topics: dict[str, str] = {}  # device -> its ack topic, built once
        self._writer = threading.Thread(target=self._write_loop, name="ingest-writer", daemon=True)

    @property
    def topic(self) -> str:
        group = self.config.shared_group
        return f"$share/{group}/{ALL}" if group else ALL

    def _on_connected(self, session_present: bool) -> None:
        """On the connection thread, after SUBSCRIBE. Without a session, what the broker held
        for us is gone; the devices still hold it unconfirmed, so they are asked for it now."""
        if session_present or not self.config.publish_acks:
            return
        marks = self.store.watermarks()
        if not marks:
            return  # a new store: there was no session to lose
        self.stats.add(broker_sessions_lost=1)
        self.stats.session_lost_ms = to_ms(self.clock.now())
        log.error(
            "THE BROKER LOST THE STORE'S SESSION: what it queued for us is gone; asking every "
            "device to send what is unconfirmed again",
            extra={"fields": {"broker": self.subscriber.where, "devices": len(marks)}},
        )
        for device, kind, mark in marks:
            self._publish_ack(kind, Ack(device, mark, resend=True))

    def _acknowledge(self, batch: Batch, result: WriteResult) -> None:
        """One retained acknowledgement per device of the batch: its watermark, the batch's own
        seqs above it, and its images."""
        if not self.config.publish_acks or not result.watermarks:
            return
        seqs: dict[str, list[int]] = {}
        for m in batch.messages:
            seqs.setdefault(m.device, []).append(m.seq)
        images: dict[str, list[str]] = {}
        for image in batch.images:
            images.setdefault(image.device, []).append(image.event_id)
        for device, (kind, mark) in result.watermarks.items():
            held = seq_ranges(seqs.get(device, []), above=mark)
            self._publish_ack(kind, Ack(device, mark, held, tuple(images.get(device, ()))))

    def _publish_ack(self, kind: str, ack: Ack) -> None:
        topic = self._ack_topics.get(ack.device)
        if topic is None:
            topic = self._ack_topics[ack.device] = str(Topic(kind, ack.device, "ack"))
        if self.subscriber.publish(topic, ack.to_json(), retain=True):
            self.stats.add(acks_published=1)

    def _on_messages(self, publishes: list[Publish], generation: int) -> None:
        if self._accepting:  # after stop() began, unacknowledged: the broker sends them again
            self._queue.put((generation, publishes))

    # -- running ----------------------------------------------------------------------------------
    def start(self) -> None:
        self._writer.start()
        self.subscriber.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Store and acknowledge what has arrived, then leave; later messages wait at the
        broker for the next start."""
        self._accepting = False
        self._stop.set()
        if self._writer.is_alive():
            self._writer.join(timeout_s)
        self.subscriber.stop()

    def _write_loop(self) -> None:
        carry: list[Chunk] = []
        while True:
            if carry:
                chunks, carry = carry, []
            else:
                try:
                    chunks = [self._queue.get(timeout=0.2)]
                except queue.Empty:
                    if self._stop.is_set():
                        return
                    continue
            count = sum(len(publishes) for _, publishes in chunks)
            while count < self.config.batch_max:
                try:
                    chunk = self._queue.get_nowait()
                except queue.Empty:
                    break
                chunks.append(chunk)
                count += len(chunk[1])
            if count > self.config.batch_max:  # the rest of the last read goes in the next batch
                generation, publishes = chunks[-1]
                keep = len(publishes) - (count - self.config.batch_max)
                chunks[-1] = (generation, publishes[:keep])
                carry = [(generation, publishes[keep:])]
            if self._handle([p for _, publishes in chunks for p in publishes]):
                for generation, publishes in chunks:
                    self.subscriber.ack([p.packet_id for p in publishes if p.qos], generation)

    def _handle(self, items: list[Publish]) -> bool:
        """Check and store one batch; False if it could not be stored (then it is not acked)."""
        batch = Batch(received_ms=to_ms(self.clock.now()))
        ignored = 0
        for item in items:
            record = classify(
                item.topic,
                item.payload,
                self.config.max_image_bytes,
                self.config.keep_rejected_bytes,
                self.config.max_envelope_bytes,
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
            self._acknowledge(batch, result)
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
