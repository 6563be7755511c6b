"""The JSON envelope every reading and event travels in, and the retained status message.

``(device, seq)`` names a message everywhere: the store dedups on it and a gap in it is a measured
loss. ``ts`` is the time of measurement in UTC, RFC 3339 with a ``Z``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from edge.protocol.topics import TopicError, check_device_id

VERSION = 1
TYPE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
MAX_SEQ = 2**63 - 1
STATES = ("online", "offline")


class EnvelopeError(ValueError):
    """A message that breaks the contract. ``field`` names the offending key."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem


def utc_timestamp(moment: datetime) -> str:
    """RFC 3339 UTC with millisecond precision, the only form ``ts`` takes."""
    if moment.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_timestamp(value: object, name: str = "ts") -> datetime:
    if not isinstance(value, str) or not TS.match(value):
        raise EnvelopeError(name, f"expected RFC 3339 UTC like 2026-11-22T10:00:00Z, got {value!r}")
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise EnvelopeError(name, f"not a real date/time: {value!r}") from exc


def _decode_object(payload: bytes | str) -> dict[str, Any]:
    try:
        obj = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError("payload", f"not UTF-8 JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise EnvelopeError("payload", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _check_common(obj: dict[str, Any], allowed: set[str]) -> None:
    if obj.get("v") != VERSION:
        raise EnvelopeError("v", f"expected {VERSION}, got {obj.get('v')!r}")
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise EnvelopeError(unknown[0], "unknown key")
    try:
        check_device_id(obj.get("device"))
    except TopicError as exc:
        raise EnvelopeError("device", str(exc)) from exc


@dataclass(frozen=True)
class Envelope:
    device: str
    seq: int
    ts: str
    type: str
    data: dict[str, Any] = field(default_factory=dict)
    v: int = VERSION

    def __post_init__(self) -> None:
        self.validate_fields()

    def validate_fields(self) -> None:
        try:
            check_device_id(self.device)
        except TopicError as exc:
            raise EnvelopeError("device", str(exc)) from exc
        if self.v != VERSION:
            raise EnvelopeError("v", f"expected {VERSION}, got {self.v!r}")
        if isinstance(self.seq, bool) or not isinstance(self.seq, int):
            raise EnvelopeError("seq", f"expected an integer, got {type(self.seq).__name__}")
        if not 0 <= self.seq <= MAX_SEQ:
            raise EnvelopeError("seq", f"expected 0..2^63-1, got {self.seq}")
        parse_timestamp(self.ts)
        if not isinstance(self.type, str) or not TYPE.match(self.type):
            raise EnvelopeError("type", f"expected a lower_snake_case name, got {self.type!r}")
        if not isinstance(self.data, dict):
            raise EnvelopeError("data", f"expected a JSON object, got {type(self.data).__name__}")

    @property
    def timestamp(self) -> datetime:
        return parse_timestamp(self.ts)

    def to_json(self) -> bytes:
        body = {"v": self.v, "device": self.device, "seq": self.seq, "ts": self.ts}
        body |= {"type": self.type, "data": self.data}
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, payload: bytes | str) -> Envelope:
        obj = _decode_object(payload)
        _check_common(obj, {"v", "device", "seq", "ts", "type", "data"})
        for key in ("seq", "ts", "type", "data"):
            if key not in obj:
                raise EnvelopeError(key, "missing")
        return cls(obj["device"], obj["seq"], obj["ts"], obj["type"], obj["data"])


@dataclass(frozen=True)
class Status:
    """Retained on ``.../status``. Not a reading, so it takes no ``seq``; ``health.last_seq`` tells
    the city the newest seq the device has issued, so a silent tail loss is visible too."""

    device: str
    ts: str
    state: str
    health: dict[str, Any] = field(default_factory=dict)
    v: int = VERSION

    def __post_init__(self) -> None:
        try:
            check_device_id(self.device)
        except TopicError as exc:
            raise EnvelopeError("device", str(exc)) from exc
        parse_timestamp(self.ts)
        if self.state not in STATES:
            raise EnvelopeError("state", f"expected one of {', '.join(STATES)}, got {self.state!r}")
        if not isinstance(self.health, dict):
            raise EnvelopeError("health", "expected a JSON object")

    def to_json(self) -> bytes:
        body = {"v": self.v, "device": self.device, "ts": self.ts, "state": self.state}
        body["health"] = self.health
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, payload: bytes | str) -> Status:
        obj = _decode_object(payload)
        _check_common(obj, {"v", "device", "ts", "state", "health"})
        for key in ("ts", "state"):
            if key not in obj:
                raise EnvelopeError(key, "missing")
        return cls(obj["device"], obj["ts"], obj["state"], obj.get("health", {}))
