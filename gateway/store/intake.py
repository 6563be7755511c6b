"""What one MQTT message becomes in the store: a reading or event, a status, an image, or a
rejection with its reason. Pure functions, no I/O, so the rules are tested on their own.

Every envelope is checked against the contract in edge.protocol; a message that breaks it is not
dropped silently but kept, with the reason, for someone to inspect.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from edge.protocol import Envelope, EnvelopeError, Status, Topic, TopicError
from edge.protocol.envelope import EPOCH, MS

JPEG_MAGIC = b"\xff\xd8\xff"
REASONS = (
    "bad_topic",  # not machimori/v1/{kind}/{device}/{channel}
    "bad_json",  # payload is not a UTF-8 JSON object
    "bad_envelope",  # JSON, but a field breaks the contract (detail names it)
    "bad_status",  # a status message that breaks the contract
    "device_mismatch",  # the payload's device is not the topic's
    "bad_image",  # image channel without JPEG bytes
    "image_too_large",
    "envelope_too_large",  # a reading or event over ingest.max_envelope_bytes
)
MAX_ENVELOPE_BYTES = 65536


# made once: json.dumps with these options builds a new encoder on every call
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def json_text(value: object, name: str) -> str:
    """Compact JSON that every backend can store: PostgreSQL refuses NUL characters, NaN and
    lone UTF-16 surrogates, so SQLite refuses them too and both behave the same."""
    try:
        text = _ENCODER.encode(value)
        if not text.isascii():  # only non-ASCII text can hold a lone surrogate
            text.encode("utf-8")
    except (ValueError, UnicodeEncodeError) as exc:
        raise EnvelopeError(name, f"not storable JSON ({exc})") from exc
    if "\\u0000" in text:
        raise EnvelopeError(name, "NUL characters (\\u0000) are not stored")
    return text


def to_ms(moment: datetime) -> int:
    """Milliseconds since 1970 UTC, exactly (no float rounding)."""
    return (moment - EPOCH) // MS


def from_ms(ms: int) -> datetime:
    return EPOCH + ms * MS


def iso_ms(ms: int) -> str:
    """The contract's timestamp form, RFC 3339 UTC with milliseconds."""
    return from_ms(ms).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Message:
    """A reading (telemetry) or an event; ``(device, seq)`` identifies it everywhere."""

    device: str
    seq: int
    kind: str
    channel: str
    type: str
    ts_ms: int
    data: str  # the envelope's data object as JSON text


@dataclass(frozen=True, slots=True)
class StatusUpdate:
    device: str
    kind: str
    ts_ms: int
    state: str
    health: str  # JSON text
    # health.outbox.floor: the lowest seq the device still holds; below it, what the store
    # lacks is lost for good and the acknowledgement watermark may pass over it
    floor: int | None = None


@dataclass(frozen=True, slots=True)
class Image:
    device: str
    kind: str
    event_id: str
    sha256: str
    jpeg: bytes


@dataclass(frozen=True, slots=True)
class Rejection:
    topic: str
    reason: str
    detail: str
    payload: bytes


Record = Message | StatusUpdate | Image | Rejection


@dataclass
class Batch:
    """Records received together, written in one transaction."""

    received_ms: int
    messages: list[Message] = field(default_factory=list)
    statuses: list[StatusUpdate] = field(default_factory=list)
    images: list[Image] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)

    def add(self, record: Record) -> None:
        if isinstance(record, Message):
            self.messages.append(record)
        elif isinstance(record, StatusUpdate):
            self.statuses.append(record)
        elif isinstance(record, Image):
            self.images.append(record)
        else:
            self.rejections.append(record)

    def __len__(self) -> int:
        return len(self.messages) + len(self.statuses) + len(self.images) + len(self.rejections)


@lru_cache(maxsize=16384)
def _topic(name: str) -> Topic:
    """Topics repeat (one per device and channel), so each is checked once, not per message."""
    return Topic.parse(name)


def classify(
    topic_name: str,
    payload: bytes,
    max_image_bytes: int,
    keep_bytes: int = 65536,
    max_envelope_bytes: int = MAX_ENVELOPE_BYTES,
) -> Record | None:
    """Turn one MQTT message into a record; None for what the store ignores (commands, and the
    store's own acknowledgements)."""
    try:
        topic = _topic(topic_name)
    except TopicError as exc:
        return _reject(topic_name, payload, keep_bytes, "bad_topic", str(exc))
    if topic.channel in ("cmd", "ack"):
        return None
    if topic.channel == "image":
        if len(payload) > max_image_bytes:
            detail = f"{len(payload)} bytes, limit {max_image_bytes}"
            return _reject(topic_name, payload, keep_bytes, "image_too_large", detail)
        if not payload.startswith(JPEG_MAGIC):
            detail = "payload does not start like a JPEG (FF D8 FF)"
            return _reject(topic_name, payload, keep_bytes, "bad_image", detail)
        digest = hashlib.sha256(payload).hexdigest()
        return Image(topic.device, topic.kind, topic.event_id or "", digest, payload)
    if topic.channel == "status":
        try:
            status = Status.from_json(payload)
            health = json_text(status.health, "health")
        except EnvelopeError as exc:
            return _reject(topic_name, payload, keep_bytes, "bad_status", str(exc))
        if status.device != topic.device:
            detail = f"status of {status.device!r} on {topic_name}"
            return _reject(topic_name, payload, keep_bytes, "device_mismatch", detail)
        return StatusUpdate(
            status.device, topic.kind, status.ts_ms, status.state, health, _floor(status.health)
        )
    if len(payload) > max_envelope_bytes:
        detail = f"{len(payload)} bytes, limit {max_envelope_bytes}"
        return _reject(topic_name, payload, keep_bytes, "envelope_too_large", detail)
    try:
        env = Envelope.from_json(payload)
        data = json_text(env.data, "data")
    except EnvelopeError as exc:
        reason = "bad_json" if exc.field == "payload" else "bad_envelope"
        return _reject(topic_name, payload, keep_bytes, reason, str(exc))
    if env.device != topic.device:
        detail = f"envelope of {env.device!r} on {topic_name}"
        return _reject(topic_name, payload, keep_bytes, "device_mismatch", detail)
    return Message(env.device, env.seq, topic.kind, topic.channel, env.type, env.ts_ms, data)


def _floor(health: dict[str, object]) -> int | None:
    outbox = health.get("outbox")
    floor = outbox.get("floor") if isinstance(outbox, dict) else None
    return floor if type(floor) is int and floor >= 0 else None


def _reject(
    topic_name: str, payload: bytes, keep_bytes: int, reason: str, detail: str
) -> Rejection:
    return Rejection(topic_name[:512], reason, detail[:1000], payload[:keep_bytes])
