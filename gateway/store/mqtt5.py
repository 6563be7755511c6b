"""The MQTT 5.0 wire format, for the store's subscriber: the packets a QoS 1 subscriber with a
persistent session sends and receives. Section numbers are those of the OASIS standard
"MQTT Version 5.0" (7 March 2019).

Why not paho here: paho spends about 48 µs of Python on every message it receives, more than the
store spends validating and writing it. Parsing a whole socket read at once costs a few µs a
message, which lets one ingest process keep up with Mosquitto (bench/store.py).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

# 2.1.2 MQTT Control Packet type
CONNECT, CONNACK, PUBLISH, PUBACK = 1, 2, 3, 4
SUBSCRIBE, SUBACK = 8, 9
PINGREQ, PINGRESP, DISCONNECT, AUTH = 12, 13, 14, 15
MAX_REMAINING = 268_435_455  # 1.5.5: four bytes of Variable Byte Integer

# 2.2.2.2 Property identifiers, by the data type of their value
_BYTE, _TWO, _FOUR, _VARINT, _STRING, _BINARY, _PAIR = range(7)
PROPERTY_TYPES = {
    0x01: _BYTE,  # Payload Format Indicator
    0x02: _FOUR,  # Message Expiry Interval
    0x03: _STRING,  # Content Type
    0x08: _STRING,  # Response Topic
    0x09: _BINARY,  # Correlation Data
    0x0B: _VARINT,  # Subscription Identifier
    0x11: _FOUR,  # Session Expiry Interval
    0x12: _STRING,  # Assigned Client Identifier
    0x13: _TWO,  # Server Keep Alive
    0x15: _STRING,  # Authentication Method
    0x16: _BINARY,  # Authentication Data
    0x17: _BYTE,  # Request Problem Information
    0x18: _FOUR,  # Will Delay Interval
    0x19: _BYTE,  # Request Response Information
    0x1A: _STRING,  # Response Information
    0x1C: _STRING,  # Server Reference
    0x1F: _STRING,  # Reason String
    0x21: _TWO,  # Receive Maximum
    0x22: _TWO,  # Topic Alias Maximum
    0x23: _TWO,  # Topic Alias
    0x24: _BYTE,  # Maximum QoS
    0x25: _BYTE,  # Retain Available
    0x26: _PAIR,  # User Property
    0x27: _FOUR,  # Maximum Packet Size
    0x28: _BYTE,  # Wildcard Subscription Available
    0x29: _BYTE,  # Subscription Identifier Available
    0x2A: _BYTE,  # Shared Subscription Available
}
SESSION_EXPIRY, ASSIGNED_CLIENT_ID, SERVER_KEEP_ALIVE = 0x11, 0x12, 0x13
REASON_STRING, RECEIVE_MAXIMUM = 0x1F, 0x21

# 2.4 Reason Codes a server sends in CONNACK, SUBACK and DISCONNECT, named for the logs
REASONS = {
    0x00: "success",
    0x01: "granted QoS 1",
    0x02: "granted QoS 2",
    0x04: "disconnect with will message",
    0x80: "unspecified error",
    0x81: "malformed packet",
    0x82: "protocol error",
    0x83: "implementation specific error",
    0x84: "unsupported protocol version",
    0x85: "client identifier not valid",
    0x86: "bad user name or password",
    0x87: "not authorized",
    0x88: "server unavailable",
    0x89: "server busy",
    0x8A: "banned",
    0x8B: "server shutting down",
    0x8C: "bad authentication method",
    0x8D: "keep alive timeout",
    0x8E: "session taken over",
    0x8F: "topic filter invalid",
    0x93: "receive maximum exceeded",
    0x94: "topic alias invalid",
    0x95: "packet too large",
    0x97: "quota exceeded",
    0x98: "administrative action",
    0x9C: "use another server",
    0x9D: "server moved",
    0x9E: "shared subscriptions not supported",
    0x9F: "connection rate exceeded",
    0xA0: "maximum connect time",
    0xA2: "wildcard subscriptions not supported",
}


class ProtocolError(ValueError):
    """The server sent something MQTT 5.0 does not allow; the connection is dropped."""


def reason_name(code: int) -> str:
    return f"0x{code:02X} {REASONS.get(code, 'unknown reason')}"


# -- encoding (client to server) ----------------------------------------------------------------
def varint(value: int) -> bytes:
    """1.5.5 Variable Byte Integer: seven bits a byte, least significant first."""
    if not 0 <= value <= MAX_REMAINING:
        raise ValueError(f"{value} does not fit a Variable Byte Integer")
    out = bytearray()
    while True:
        value, digit = divmod(value, 128)
        out.append(digit | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _string(text: str) -> bytes:
    """1.5.4 UTF-8 Encoded String."""
    return _binary(text.encode("utf-8"))


def _binary(data: bytes) -> bytes:
    """1.5.6 Binary Data: a two-byte length, then the bytes."""
    if len(data) > 0xFFFF:
        raise ValueError("longer than 65535 bytes")
    return struct.pack("!H", len(data)) + data


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    """2.1.1 Fixed Header."""
    return bytes([kind << 4 | flags]) + varint(len(body)) + body


def _properties(body: bytes) -> bytes:
    """2.2.2 Properties: their length, then the properties."""
    return varint(len(body)) + body


def connect(
    client_id: str,
    keepalive_s: int,
    *,
    clean_start: bool,
    session_expiry_s: int,
    receive_max: int,
    username: str | None = None,
    password: str | None = None,
) -> bytes:
    """3.1 CONNECT, protocol level 5, no will."""
    flags = 0x02 if clean_start else 0
    payload = _string(client_id)
    if username is not None:
        flags |= 0x80
        payload += _string(username)
    if password is not None:
        flags |= 0x40
        payload += _binary(password.encode("utf-8"))
    props = struct.pack("!BIBH", SESSION_EXPIRY, session_expiry_s, RECEIVE_MAXIMUM, receive_max)
    header = _string("MQTT") + struct.pack("!BBH", 5, flags, keepalive_s) + _properties(props)
    return _packet(CONNECT, 0, header + payload)


NO_LOCAL = 0x04  # 3.8.3.1 Subscription Options bit 2: not our own publications


def subscribe(packet_id: int, filters: Sequence[tuple[str, int]]) -> bytes:
    """3.8 SUBSCRIBE; each filter with its Subscription Options (3.8.3.1): the maximum QoS in
    bits 0-1, ``NO_LOCAL`` optionally; the other bits zero, so retained messages are sent on
    subscribe."""
    payload = b"".join(_string(name) + bytes([options]) for name, options in filters)
    return _packet(SUBSCRIBE, 0x02, struct.pack("!H", packet_id) + _properties(b"") + payload)


def publish_qos0(topic: str, payload: bytes, *, retain: bool) -> bytes:
    """3.3 PUBLISH at QoS 0: no packet identifier (3.3.2.2), no properties."""
    return _packet(PUBLISH, 0x01 if retain else 0, _string(topic) + _properties(b"") + payload)


def puback(packet_ids: Sequence[int]) -> bytes:
    """3.4 PUBACK, one per id. 3.4.2.1: Reason Code 0x00 and no properties may be left out, which
    makes each four bytes."""
    return b"".join(b"\x40\x02" + pid.to_bytes(2, "big") for pid in packet_ids)


PINGREQ_PACKET = _packet(PINGREQ, 0, b"")  # 3.12
DISCONNECT_NORMAL = _packet(DISCONNECT, 0, b"")  # 3.14.2.1: Reason Code 0x00 may be left out


# -- decoding (server to client) ----------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Publish:
    """3.3 PUBLISH. ``packet_id`` is 0 for QoS 0 (3.3.2.2: only QoS 1 and 2 carry one)."""

    topic: str
    payload: bytes
    qos: int
    packet_id: int
    retain: bool = False
    dup: bool = False


@dataclass(frozen=True)
class Connack:
    """3.2 CONNACK."""

    session_present: bool
    reason: int
    properties: dict[int, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Suback:
    """3.9 SUBACK: a Reason Code per filter, in the order subscribed."""

    packet_id: int
    reasons: bytes


@dataclass(frozen=True)
class Disconnect:
    """3.14 DISCONNECT from the server: why it is closing the connection."""

    reason: int
    properties: dict[int, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Pingresp:
    """3.13 PINGRESP."""


Packet = Publish | Connack | Suback | Disconnect | Pingresp


def parse_properties(data: bytes | memoryview) -> dict[int, object]:
    """2.2.2 a property list, without its length prefix. User properties are kept as a list."""
    props: dict[int, object] = {}
    pos = 0
    end = len(data)
    while pos < end:
        ident, pos = _read_varint(data, pos)
        kind = PROPERTY_TYPES.get(ident)
        if kind is None:
            raise ProtocolError(f"unknown property identifier 0x{ident:02X}")
        value: object
        if kind == _BYTE:
            value, pos = data[pos], pos + 1
        elif kind == _TWO:
            value, pos = int.from_bytes(data[pos : pos + 2], "big"), pos + 2
        elif kind == _FOUR:
            value, pos = int.from_bytes(data[pos : pos + 4], "big"), pos + 4
        elif kind == _VARINT:
            value, pos = _read_varint(data, pos)
        elif kind == _PAIR:
            key, pos = _read_string(data, pos)
            val, pos = _read_string(data, pos)
            pairs = props.setdefault(ident, [])
            assert isinstance(pairs, list)
            pairs.append((key, val))
            continue
        else:
            raw, pos = _read_binary(data, pos)
            value = raw.decode("utf-8", errors="replace") if kind == _STRING else raw
        if pos > end:
            raise ProtocolError(f"property 0x{ident:02X} runs past the end of its packet")
        props[ident] = value
    return props


def _remaining_length(buf: bytearray, pos: int, end: int) -> tuple[int, int]:
    """2.1.4 Remaining Length at ``pos``: (value, where the body starts), or (-1, -1) while it is
    not all here."""
    value = 0
    for shift in (0, 7, 14, 21):
        if pos >= end:
            return -1, -1
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise ProtocolError("Remaining Length longer than four bytes")


def _read_varint(data: bytes | memoryview, pos: int) -> tuple[int, int]:
    value = 0
    for shift in (0, 7, 14, 21):
        if pos >= len(data):
            raise ProtocolError("Variable Byte Integer cut short")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise ProtocolError("Variable Byte Integer longer than four bytes")


def _read_binary(data: bytes | memoryview, pos: int) -> tuple[bytes, int]:
    if pos + 2 > len(data):
        raise ProtocolError("length of a string or binary field cut short")
    size = int.from_bytes(data[pos : pos + 2], "big")
    if pos + 2 + size > len(data):
        raise ProtocolError("string or binary field runs past the end of its packet")
    return bytes(data[pos + 2 : pos + 2 + size]), pos + 2 + size


def _read_string(data: bytes | memoryview, pos: int) -> tuple[str, int]:
    raw, pos = _read_binary(data, pos)
    try:
        return raw.decode("utf-8"), pos
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"UTF-8 string is not valid UTF-8 ({exc})") from exc


class PacketReader:
    """Splits the bytes the server sends into packets. Feed it whatever ``recv`` returned; it keeps
    an incomplete packet until the rest arrives. Most of what arrives is PUBLISH, so that path is
    written for speed: one pass over the buffer, topic names decoded once each."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._topics: dict[bytes, str] = {}

    @property
    def pending_bytes(self) -> int:
        return len(self._buffer)

    def feed(self, data: bytes) -> list[Packet]:
        buf = self._buffer
        buf += data
        packets: list[Packet] = []
        pos = 0
        end = len(buf)
        while end - pos >= 2:
            first = buf[pos]
            length = buf[pos + 1]  # 2.1.4 Remaining Length: usually one byte
            body = pos + 2
            if length & 0x80:
                length, body = _remaining_length(buf, pos + 1, end)
                if body < 0:
                    break  # the length itself is not complete yet
            stop = body + length
            if stop > end:
                break
            if first >> 4 == PUBLISH:
                try:
                    packets.append(self._publish(first, buf, body, stop))
                except IndexError:
                    raise ProtocolError("PUBLISH shorter than its header") from None
            else:
                packets.append(_control(first, bytes(buf[body:stop])))
            pos = stop
        if pos:
            del buf[:pos]
        return packets

    def _publish(self, first: int, buf: bytearray, pos: int, stop: int) -> Publish:
        """3.3.2 Topic Name, Packet Identifier (QoS > 0), Properties; the rest is the payload."""
        qos = (first >> 1) & 0x03
        if qos == 3:
            raise ProtocolError("PUBLISH with QoS 3 (3.3.1.2)")
        if qos == 2:  # 3.8.4: never above the QoS granted, and this client subscribes at 1
            raise ProtocolError("PUBLISH with QoS 2 on a QoS 1 subscription (3.8.4)")
        size = buf[pos] << 8 | buf[pos + 1]
        raw = bytes(buf[pos + 2 : pos + 2 + size])
        topic = self._topics.get(raw)
        if topic is None:
            topic = self._topic(raw)
        pos += 2 + size
        packet_id = 0
        if qos:
            packet_id = buf[pos] << 8 | buf[pos + 1]
            if packet_id == 0:
                raise ProtocolError("PUBLISH with QoS > 0 and Packet Identifier 0 (2.2.1)")
            pos += 2
        props = buf[pos]
        if props & 0x80:
            props, pos = _read_varint(buf, pos)
        else:
            pos += 1
        pos += props
        if pos > stop:
            raise ProtocolError("PUBLISH header runs past the end of its packet")
        return Publish(
            topic, bytes(buf[pos:stop]), qos, packet_id, bool(first & 1), bool(first & 8)
        )

    def _topic(self, raw: bytes) -> str:
        try:
            topic = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"Topic Name is not valid UTF-8 ({exc})") from exc
        if not topic:
            # 3.3.2.3.4: an empty name needs a Topic Alias; we allow none (Topic Alias Maximum 0)
            raise ProtocolError("PUBLISH without a Topic Name")
        if len(self._topics) >= 16384:  # topics are one per device and channel; bound it anyway
            self._topics.clear()
        self._topics[raw] = topic
        return topic


def _control(first: int, body: bytes) -> Packet:
    kind = first >> 4
    if kind == CONNACK:
        if len(body) < 2:
            raise ProtocolError("CONNACK shorter than its variable header")
        props = _properties_at(body, 2)
        return Connack(bool(body[0] & 1), body[1], props)
    if kind == SUBACK:
        if len(body) < 3:
            raise ProtocolError("SUBACK shorter than its variable header")
        length, pos = _read_varint(body, 2)
        reasons = body[pos + length :]
        if not reasons:
            raise ProtocolError("SUBACK without a Reason Code")
        return Suback(int.from_bytes(body[:2], "big"), reasons)
    if kind == PINGRESP:
        return Pingresp()
    if kind == DISCONNECT:
        # 3.14.2.1: no Reason Code means 0x00 normal disconnection
        return Disconnect(body[0] if body else 0, _properties_at(body, 1) if len(body) > 1 else {})
    raise ProtocolError(f"unexpected packet type {kind} from the server")


def _properties_at(body: bytes, pos: int) -> dict[int, object]:
    if pos >= len(body):
        return {}  # 3.2.2.3 etc.: a packet may end before its properties
    length, start = _read_varint(body, pos)
    if start + length > len(body):
        raise ProtocolError("properties run past the end of their packet")
    return parse_properties(body[start : start + length])
