"""The store's end-to-end acknowledgement, retained on ``machimori/v1/{kind}/{device}/ack``.

A broker's PUBACK only says the broker has a message, and a broker can crash or forget its
sessions. So a device (or the gateway, for the LoRaWAN devices it speaks for) keeps every message
in its outbox until the city store says it holds it. The store says so after its commit, at most
once per batch per device:

- ``seq``: the watermark, the highest seq up to which the store holds every message of the device
  (-1: none yet). It never goes back, and every store or ingest worker computes it from the one
  database inside the transaction that wrote the batch, so several workers agree on it;
- ``held``: ranges ``[first, last]`` of seqs above the watermark that the store holds too (those of
  the batch that carried them), so a gap the device can never fill (a reading its full outbox
  dropped) does not keep later readings in the outbox;
- ``images``: event ids of images the store wrote in that batch (images carry no seq);
- ``resend``: the store lost its broker session (the broker restarted without it), so what the
  device sent meanwhile may be lost at the broker: send everything unconfirmed again now.

Acknowledgements are sent at QoS 0 and retained: one that is lost costs a resend after the
device's ``confirm_timeout_s``, which the store counts as a duplicate and acknowledges again.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.protocol.envelope import (
    MAX_SEQ,
    EnvelopeError,
    _check_common,
    _check_device,
    _decode_object,
)
from edge.protocol.topics import EVENT_ID

ACK_KEYS = frozenset({"v", "device", "seq", "held", "images", "resend"})
MAX_HELD = 64  # ranges in one acknowledgement; the rest is covered by a later one or a resend


def _seq(value: object, name: str, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_SEQ:
        raise EnvelopeError(name, f"expected an integer {low}..2^63-1, got {value!r}")
    return value


@dataclass(frozen=True)
class Ack:
    device: str
    seq: int  # watermark: every seq <= this is held; -1 when none is
    held: tuple[tuple[int, int], ...] = ()
    images: tuple[str, ...] = ()
    resend: bool = False
    v: int = 1

    def __post_init__(self) -> None:
        _check_device(self.device)
        _seq(self.seq, "seq", low=-1)
        for first, last in self.held:
            if _seq(first, "held") > _seq(last, "held"):
                raise EnvelopeError("held", f"range [{first}, {last}] runs backwards")
        if not all(isinstance(i, str) and EVENT_ID.match(i) for i in self.images):
            raise EnvelopeError("images", "expected event ids (1-64 of A-Z a-z 0-9 _ -)")

    def covers(self, seq: int) -> bool:
        """Whether the store holds message ``seq`` of this device."""
        return seq <= self.seq or any(first <= seq <= last for first, last in self.held)

    def to_json(self) -> bytes:
        """Compact JSON, formatted directly: the store sends one per device per batch, and every
        field is an integer or a checked id that needs no escaping."""
        text = f'{{"v":{self.v},"device":"{self.device}","seq":{self.seq}'
        if self.held:
            text += ',"held":[' + ",".join(f"[{a},{b}]" for a, b in self.held) + "]"
        if self.images:
            text += ',"images":[' + ",".join(f'"{i}"' for i in self.images) + "]"
        if self.resend:
            text += ',"resend":true'
        return (text + "}").encode("ascii")

    @classmethod
    def from_json(cls, payload: bytes | str) -> Ack:
        obj = _decode_object(payload)
        _check_common(obj, ACK_KEYS)
        if "seq" not in obj:
            raise EnvelopeError("seq", "missing")
        held = obj.get("held", [])
        if not isinstance(held, list) or not all(isinstance(r, list) and len(r) == 2 for r in held):
            raise EnvelopeError("held", "expected a list of [first, last] pairs")
        images = obj.get("images", [])
        if not isinstance(images, list):
            raise EnvelopeError("images", "expected a list of event ids")
        resend = obj.get("resend", False)
        if not isinstance(resend, bool):
            raise EnvelopeError("resend", "expected true or false")
        return cls(obj["device"], obj["seq"], tuple(tuple(r) for r in held), tuple(images), resend)


def seq_ranges(seqs: list[int], above: int, limit: int = MAX_HELD) -> tuple[tuple[int, int], ...]:
    """Sorted, merged ``[first, last]`` ranges of ``seqs`` greater than ``above``; the newest
    ``limit`` ranges when there are more (the device sends oldest first, so older ones were
    covered by earlier acknowledgements)."""
    ranges: list[list[int]] = []
    for seq in sorted(set(seqs)):
        if seq <= above:
            continue
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1][1] = seq
        else:
            ranges.append([seq, seq])
    return tuple((a, b) for a, b in ranges[-limit:])
