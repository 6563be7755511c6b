"""Binary LoRaWAN payload codecs, one per device type (the ChirpStack "device profile codec").

A codec turns an envelope's content into a few bytes on one fPort and back. The agent encodes
with it, the gateway decodes with it, so both ends share one implementation and one byte layout.
Commands travel the other way: the gateway encodes a ``cmd`` envelope into a downlink and the
device decodes it.
Envelopes need a full ``seq`` and ``ts`` that outlive re-joins, so every uplink carries the low 16
bits of ``seq`` (widened again by :func:`widen_seq`) and the measurement time.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from edge.protocol.errors import ReasonedError

# Seconds since this epoch fit a uint32 until 2156.
EPOCH = datetime(2020, 1, 1, tzinfo=UTC)
SEQ_MODULUS = 1 << 16


class CodecError(ReasonedError):
    """A payload that does not decode, or a message with no binary form."""


@dataclass(frozen=True)
class LoraMessage:
    """One uplink's content: an envelope without ``device`` and with only the low bits of seq."""

    seq_low: int
    ts: datetime
    channel: str
    type: str
    data: dict[str, Any]


class Codec(Protocol):
    name: str

    def encode(
        self, channel: str, type: str, seq: int, ts: datetime, data: dict[str, Any]
    ) -> tuple[int, bytes]:
        """Return (fPort, payload); raise CodecError if this message has no binary form."""
        ...

    def decode(self, fport: int, payload: bytes) -> LoraMessage: ...

    def encode_command(self, type: str, data: dict[str, Any]) -> tuple[int, bytes]:
        """A city command (``cmd`` envelope type and data) as (fPort, downlink payload)."""
        ...

    def decode_command(self, fport: int, payload: bytes) -> tuple[str, dict[str, Any]]:
        """Device side: a downlink back into the command's (type, data)."""
        ...


HEADER = struct.Struct(">HI")  # seq low 16 bits, seconds since EPOCH


def pack_header(seq: int, ts: datetime) -> bytes:
    seconds = int((ts - EPOCH).total_seconds())
    if not 0 <= seconds < 2**32:
        raise CodecError("bad_time", f"{ts.isoformat()} is outside 2020..2156")
    return HEADER.pack(seq % SEQ_MODULUS, seconds)


def unpack_header(payload: bytes) -> tuple[int, datetime]:
    seq_low, seconds = HEADER.unpack_from(payload)
    return seq_low, EPOCH + timedelta(seconds=seconds)


def widen_seq(last: int | None, low: int) -> int:
    """The full seq whose low 16 bits are ``low``, nearest above ``last`` (the newest seen).

    Outboxes send oldest first, so a new seq is a little above ``last``, and a duplicate a little
    below; anything within half the modulus either way is resolved, which a gauge's outbox never
    exceeds (see docs/protocol.md).
    """
    if last is None:
        return low
    expected = last + 1
    base = expected - expected % SEQ_MODULUS
    candidates = (base - SEQ_MODULUS + low, base + low, base + SEQ_MODULUS + low)
    return min((c for c in candidates if c >= 0), key=lambda c: abs(c - expected))


def codec(name: str) -> Codec:
    """Codecs by the name the device registry uses."""
    from edge.protocol.codecs.river import RiverCodec

    known: dict[str, Codec] = {RiverCodec.name: RiverCodec()}
    if name not in known:
        raise KeyError(f"unknown codec {name!r}; known: {', '.join(known)}")
    return known[name]
