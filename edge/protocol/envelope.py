"""The JSON envelope every reading and event travels in, and the retained status message.

``(device, seq)`` names a message everywhere: the store dedups on it and a gap in it is a measured
loss. ``ts`` is the time of measurement in UTC, RFC 3339 with a ``Z``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from edge.protocol.topics import TopicError, check_device_id

VERSION = 1
TYPE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
TS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
MAX_SEQ = 2**63 - 1
STATES = ("online", "offline")
ENVELOPE_KEYS = frozenset({"v", "device", "seq", "ts", "type", "data"})
STATUS_KEYS = frozenset({"v", "device", "ts", "state", "health"})
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)


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


def timestamp_ms(value: object, name: str = "ts") -> int:
    """``value`` checked as :func:`parse_timestamp` checks it, as exact integer milliseconds since
    1970 UTC. A message's ts is checked when it is read and converted again when it is stored, so
    the conversion is remembered per string and done once."""
    if isinstance(value, str):
        return _timestamp_ms(value, name)
    return (parse_timestamp(value, name) - EPOCH) // MS  # raises: not a string


@lru_cache(maxsize=4096)
def _timestamp_ms(value: str, name: str) -> int:
    moment = parse_timestamp(value, name)
    return (moment - EPOCH) // MS


def _decode_object(payload: bytes | str) -> dict[str, Any]:
    try:
        # the contract says UTF-8 (so no UTF-16/32, no BOM); decoding first also spares
        # json.loads its encoding detection, a third of its time on a reading
        obj = json.loads(payload.decode("utf-8") if isinstance(payload, bytes) else payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EnvelopeError("payload", f"not UTF-8 JSON ({exc})") from exc
    if not isinstance(obj, dict):
        raise EnvelopeError("payload", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _check_device(device: object) -> None:
    try:
        check_device_id(device)
    except TopicError as exc:
        raise EnvelopeError("device", str(exc)) from exc


def _check_common(obj: dict[str, Any], allowed: frozenset[str]) -> None:
    if obj.get("v") != VERSION:
        raise EnvelopeError("v", f"expected {VERSION}, got {obj.get('v')!r}")
    if not obj.keys() <= allowed:
        raise EnvelopeError(sorted(obj.keys() - allowed)[0], "unknown key")
    _check_device(obj.get("device"))


def _check_reading(seq: object, ts: object, name: object, data: object) -> None:
    """The fields of a reading after ``device`` and ``v``, in the order errors are reported."""
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise EnvelopeError("seq", f"expected an integer, got {type(seq).__name__}")
    if not 0 <= seq <= MAX_SEQ:
        raise EnvelopeError("seq", f"expected 0..2^63-1, got {seq}")
    timestamp_ms(ts)
    if not isinstance(name, str) or not TYPE.match(name):
        raise EnvelopeError("type", f"expected a lower_snake_case name, got {name!r}")
    if not isinstance(data, dict):
        raise EnvelopeError("data", f"expected a JSON object, got {type(data).__name__}")


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
        _check_device(self.device)
        if self.v != VERSION:
            raise EnvelopeError("v", f"expected {VERSION}, got {self.v!r}")
        _check_reading(self.seq, self.ts, self.type, self.data)

    @property
    def timestamp(self) -> datetime:
        return parse_timestamp(self.ts)

    @property
    def ts_ms(self) -> int:
        """``ts`` as the store keys time: integer milliseconds, so no float rounding."""
        return timestamp_ms(self.ts)

    def to_json(self) -> bytes:
        body = {"v": self.v, "device": self.device, "seq": self.seq, "ts": self.ts}
        body |= {"type": self.type, "data": self.data}
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, payload: bytes | str) -> Envelope:
        obj = _decode_object(payload)
        _check_common(obj, ENVELOPE_KEYS)
        if len(obj) != len(ENVELOPE_KEYS):
            for key in ("seq", "ts", "type", "data"):
                if key not in obj:
                    raise EnvelopeError(key, "missing")
        seq, ts, name, data = obj["seq"], obj["ts"], obj["type"], obj["data"]
        _check_reading(seq, ts, name, data)
        # Every field is checked above, device first as the contract reports it, so the instance
        # is filled in directly rather than through __init__, which would check it all again.
        env = object.__new__(cls)
        env.__dict__.update(device=obj["device"], seq=seq, ts=ts, type=name, data=data, v=VERSION)
        return env


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
        _check_device(self.device)
        timestamp_ms(self.ts)
        if self.state not in STATES:
            raise EnvelopeError("state", f"expected one of {', '.join(STATES)}, got {self.state!r}")
        if not isinstance(self.health, dict):
            raise EnvelopeError("health", "expected a JSON object")

    @property
    def ts_ms(self) -> int:
        """``ts`` as the store keys time: integer milliseconds, so no float rounding."""
        return timestamp_ms(self.ts)

    def to_json(self) -> bytes:
        body = {"v": self.v, "device": self.device, "ts": self.ts, "state": self.state}
        body["health"] = self.health
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, payload: bytes | str) -> Status:
        obj = _decode_object(payload)
        _check_common(obj, STATUS_KEYS)
        for key in ("ts", "state"):
            if key not in obj:
                raise EnvelopeError(key, "missing")
        return cls(obj["device"], obj["ts"], obj["state"], obj.get("health", {}))
