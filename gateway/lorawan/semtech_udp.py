"""The Semtech packet-forwarder UDP protocol, version 2 (Lora-net/packet_forwarder PROTOCOL.TXT).

Both ends are here: the gateway server parses PUSH_DATA, PULL_DATA and TX_ACK and builds the
acknowledgements and PULL_RESP; a simulator plays the forwarder with the opposite half. Every
datagram type is a frozen dataclass with ``to_bytes()``; ``parse_datagram`` turns any bytes into
one of them or raises ``UdpError`` with a stable ``reason``, never anything else.

Version 1 forwarders (which lack TX_ACK) are accepted too, as ChirpStack does; a reply should
carry the ``version`` of the datagram it answers.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, fields
from enum import IntEnum
from typing import Any

from edge.protocol.errors import ReasonedError

PROTOCOL_VERSION = 2
ACCEPTED_VERSIONS = (1, 2)
HEADER_LEN = 4  # version | token (2) | identifier
EUI_HEADER_LEN = 12  # ... | gateway EUI (8)
TX_OK = "NONE"


class UdpError(ReasonedError):
    """A datagram that cannot be accepted; ``reason`` is stable and machine-readable."""


class Identifier(IntEnum):
    """Octet 3 of every datagram: its type."""

    PUSH_DATA = 0x00
    PUSH_ACK = 0x01
    PULL_DATA = 0x02
    PULL_RESP = 0x03
    PULL_ACK = 0x04
    TX_ACK = 0x05


_REQUIRED: Any = object()


def _field(obj: dict[str, Any], key: str, kind: type, reason: str, default: Any = _REQUIRED) -> Any:
    """``obj[key]`` checked to be a JSON value of ``kind`` (bool is not an int here)."""
    if key not in obj:
        if default is _REQUIRED:
            raise UdpError(reason, f"missing {key!r}")
        return default
    value = obj[key]
    if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
        try:
            value = float(value)
        except OverflowError:
            raise UdpError(reason, f"{key!r} out of range") from None
        if math.isfinite(value):
            return value
    elif isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    raise UdpError(reason, f"{key!r} is not a {kind.__name__}")


def _payload(obj: dict[str, Any], reason: str) -> bytes:
    """The base64 ``data`` field; padding is optional, ``size`` must match when present."""
    text = _field(obj, "data", str, reason)
    try:
        data = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except ValueError:
        raise UdpError(reason, "'data' is not base64") from None
    if _field(obj, "size", int, reason, len(data)) != len(data):
        raise UdpError(reason, "'size' does not match 'data'")
    return data


def _datr(obj: dict[str, Any], reason: str) -> tuple[str, str | int]:
    """``modu`` and ``datr``: a string like SF7BW125 for LORA, bits per second for FSK."""
    modu = _field(obj, "modu", str, reason)
    if modu not in ("LORA", "FSK"):
        raise UdpError(reason, f"unknown modulation {modu!r}")
    return modu, _field(obj, "datr", str if modu == "LORA" else int, reason)


class _Record:
    """JSON form shared by rxpk, txpk and stat: set fields only, bytes as base64 plus size."""

    def to_json(self) -> dict[str, Any]:
        obj: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bytes):
                obj["size"] = len(value)
                value = base64.b64encode(value).decode("ascii")
            if value is not None:
                obj[f.name] = value
        return obj


class _Packet(_Record):
    """What rxpk and txpk share: a payload and a frequency in MHz."""

    data: bytes
    freq: float

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def frequency_hz(self) -> int:
        return round(self.freq * 1_000_000)


@dataclass(frozen=True)
class Rxpk(_Packet):
    """A received RF packet with its metadata (PROTOCOL.TXT §4); ``freq`` is in MHz."""

    tmst: int
    freq: float
    datr: str | int
    rssi: int
    data: bytes
    modu: str = "LORA"
    codr: str | None = "4/5"
    lsnr: float | None = None
    stat: int = 1
    chan: int = 0
    rfch: int = 0
    time: str | None = None

    @classmethod
    def from_json(cls, obj: object) -> Rxpk:
        """One ``rxpk`` entry; a bad one raises ``UdpError`` naming its field (``bad_tmst``,
        ``bad_data``...), so each is counted by reason and its neighbours are kept."""
        if not isinstance(obj, dict):
            raise UdpError("not_object", "rxpk entry is not an object")
        tmst = _field(obj, "tmst", int, "bad_tmst")
        if not 0 <= tmst <= 0xFFFFFFFF:
            raise UdpError("bad_tmst", "'tmst' is not a 32-bit counter")
        stat = _field(obj, "stat", int, "bad_stat")
        if stat not in (-1, 0, 1):
            raise UdpError("bad_stat", "'stat' is not -1, 0 or 1")
        modu, datr = _datr(obj, "bad_modulation")
        return cls(
            tmst=tmst,
            freq=_field(obj, "freq", float, "bad_freq"),
            datr=datr,
            rssi=_field(obj, "rssi", int, "bad_rssi"),
            data=_payload(obj, "bad_data"),
            modu=modu,
            codr=_field(obj, "codr", str, "bad_codr", None),
            lsnr=_field(obj, "lsnr", float, "bad_lsnr", None),
            stat=stat,
            chan=_field(obj, "chan", int, "bad_chan", 0),
            rfch=_field(obj, "rfch", int, "bad_rfch", 0),
            time=_field(obj, "time", str, "bad_time", None),
        )


@dataclass(frozen=True)
class Txpk(_Packet):
    """An RF packet for the gateway to send (PROTOCOL.TXT §6); ``freq`` is in MHz, ``powe`` dBm.

    ``ipol`` defaults to True because LoRaWAN downlinks use inverted IQ polarity; a txpk that
    omits it means False, the forwarder's default. Build one from Hz with ``hz / 1e6``.
    """

    freq: float
    powe: int
    datr: str | int
    data: bytes
    imme: bool = False
    tmst: int | None = None
    rfch: int = 0
    modu: str = "LORA"
    codr: str | None = "4/5"
    ipol: bool = True
    ncrc: bool = False

    @classmethod
    def from_json(cls, obj: object) -> Txpk:
        reason = "bad_txpk"
        if not isinstance(obj, dict):
            raise UdpError(reason, "txpk is not an object")
        modu, datr = _datr(obj, reason)
        return cls(
            freq=_field(obj, "freq", float, reason),
            powe=_field(obj, "powe", int, reason),
            datr=datr,
            data=_payload(obj, reason),
            imme=_field(obj, "imme", bool, reason, False),
            tmst=_field(obj, "tmst", int, reason, None),
            rfch=_field(obj, "rfch", int, reason, 0),
            modu=modu,
            codr=_field(obj, "codr", str, reason, None),
            ipol=_field(obj, "ipol", bool, reason, False),
            ncrc=_field(obj, "ncrc", bool, reason, False),
        )


@dataclass(frozen=True)
class Stat(_Record):
    """Gateway status (PROTOCOL.TXT §4); every field is optional, as forwarders differ."""

    time: str | None = None
    lati: float | None = None
    long: float | None = None
    alti: int | None = None
    rxnb: int | None = None
    rxok: int | None = None
    rxfw: int | None = None
    ackr: float | None = None
    dwnb: int | None = None
    txnb: int | None = None

    @classmethod
    def from_json(cls, obj: object) -> Stat:
        if not isinstance(obj, dict):
            raise UdpError("bad_stat", "stat is not an object")
        kinds = {"time": str, "lati": float, "long": float, "ackr": float}
        values = {
            f.name: _field(obj, f.name, kinds.get(f.name, int), "bad_stat", None)
            for f in fields(cls)
        }
        return cls(**values)


def _header(
    version: int, token: int, identifier: Identifier, gateway_eui: int | None = None
) -> bytes:
    eui = b"" if gateway_eui is None else gateway_eui.to_bytes(8, "big")
    return bytes([version]) + token.to_bytes(2, "big") + bytes([identifier]) + eui


def _json_bytes(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


@dataclass(frozen=True)
class PushData:
    """Forwarder -> server: received packets and/or status. ``rejected`` holds the reason of
    each ``rxpk`` entry that could not be read (its neighbours are in ``rxpk``)."""

    token: int
    gateway_eui: int
    rxpk: tuple[Rxpk, ...] = ()
    stat: Stat | None = None
    version: int = PROTOCOL_VERSION
    rejected: tuple[str, ...] = ()

    def to_bytes(self) -> bytes:
        body: dict[str, Any] = {}
        if self.rxpk:
            body["rxpk"] = [p.to_json() for p in self.rxpk]
        if self.stat is not None:
            body["stat"] = self.stat.to_json()
        header = _header(self.version, self.token, Identifier.PUSH_DATA, self.gateway_eui)
        return header + _json_bytes(body)


@dataclass(frozen=True)
class PushAck:
    """Server -> forwarder: PUSH_DATA ``token`` received."""

    token: int
    version: int = PROTOCOL_VERSION

    def to_bytes(self) -> bytes:
        return _header(self.version, self.token, Identifier.PUSH_ACK)


@dataclass(frozen=True)
class PullData:
    """Forwarder -> server: keep-alive that opens the downlink route through NAT."""

    token: int
    gateway_eui: int
    version: int = PROTOCOL_VERSION

    def to_bytes(self) -> bytes:
        return _header(self.version, self.token, Identifier.PULL_DATA, self.gateway_eui)


@dataclass(frozen=True)
class PullAck:
    """Server -> forwarder: PULL_DATA ``token`` received, downlinks may now follow."""

    token: int
    version: int = PROTOCOL_VERSION

    def to_bytes(self) -> bytes:
        return _header(self.version, self.token, Identifier.PULL_ACK)


@dataclass(frozen=True)
class PullResp:
    """Server -> forwarder: a packet to transmit; TX_ACK answers with the same ``token``."""

    token: int
    txpk: Txpk
    version: int = PROTOCOL_VERSION

    def to_bytes(self) -> bytes:
        return _header(self.version, self.token, Identifier.PULL_RESP) + _json_bytes(
            {"txpk": self.txpk.to_json()}
        )


@dataclass(frozen=True)
class TxAck:
    """Forwarder -> server: whether PULL_RESP ``token`` was scheduled.

    ``error`` is None on success, otherwise the forwarder's code (TOO_LATE, COLLISION_PACKET...).
    """

    token: int
    gateway_eui: int
    error: str | None = None
    version: int = PROTOCOL_VERSION

    def to_bytes(self) -> bytes:
        header = _header(self.version, self.token, Identifier.TX_ACK, self.gateway_eui)
        return header + _json_bytes({"txpk_ack": {"error": self.error or TX_OK}})


Datagram = PushData | PushAck | PullData | PullAck | PullResp | TxAck


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        root = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise UdpError("bad_json", str(exc)) from None
    if not isinstance(root, dict):
        raise UdpError("bad_json", "the root is not an object")
    return root


def _push_body(body: bytes) -> tuple[tuple[Rxpk, ...], Stat | None, tuple[str, ...]]:
    root = _json_object(body)
    entries = root.get("rxpk", [])
    if not isinstance(entries, list):
        raise UdpError("bad_rxpk", "rxpk is not an array")
    stat = root.get("stat")
    packets, rejected = [], []
    for entry in entries:
        try:
            packets.append(Rxpk.from_json(entry))
        except UdpError as exc:
            rejected.append(exc.reason)
    return tuple(packets), None if stat is None else Stat.from_json(stat), tuple(rejected)


def push_ack_for(data: bytes) -> PushAck | None:
    """The PUSH_ACK a datagram earns by its header alone (PROTOCOL.TXT §3: sent at once for
    every PUSH_DATA), before its JSON is read; None if it is not a PUSH_DATA."""
    if len(data) < EUI_HEADER_LEN or data[0] not in ACCEPTED_VERSIONS:
        return None
    if data[3] != Identifier.PUSH_DATA:
        return None
    return PushAck(int.from_bytes(data[1:3], "big"), data[0])


def datagram_eui(data: bytes) -> int:
    """The gateway EUI in the header of an upstream datagram at least 12 octets long."""
    return int.from_bytes(data[HEADER_LEN:EUI_HEADER_LEN], "big")


def _tx_error(body: bytes) -> str | None:
    # The JSON is optional, and some forwarders terminate it with NUL octets.
    raw = body.rstrip(b"\x00")
    if not raw.strip():
        return None
    ack = _json_object(raw).get("txpk_ack", {})
    if not isinstance(ack, dict):
        raise UdpError("bad_tx_ack", "txpk_ack is not an object")
    error = _field(ack, "error", str, "bad_tx_ack", TX_OK)
    return None if error == TX_OK else error


def parse_datagram(data: bytes) -> Datagram:
    """Decode one UDP datagram of either direction; raises ``UdpError`` for anything else."""
    if len(data) < HEADER_LEN:
        raise UdpError("too_short", f"{len(data)} octets")
    version, token, identifier = data[0], int.from_bytes(data[1:3], "big"), data[3]
    if version not in ACCEPTED_VERSIONS:
        raise UdpError("bad_version", f"protocol version {version}")
    if identifier in (Identifier.PUSH_ACK, Identifier.PULL_ACK):
        if len(data) != HEADER_LEN:
            raise UdpError("bad_length", f"{len(data)} octets in an acknowledgement")
        return (PushAck if identifier == Identifier.PUSH_ACK else PullAck)(token, version)
    if identifier == Identifier.PULL_RESP:
        txpk = _json_object(data[HEADER_LEN:]).get("txpk")
        return PullResp(token, Txpk.from_json(txpk), version)
    if identifier not in (Identifier.PUSH_DATA, Identifier.PULL_DATA, Identifier.TX_ACK):
        raise UdpError("bad_identifier", f"identifier 0x{identifier:02x}")
    if len(data) < EUI_HEADER_LEN:
        raise UdpError("too_short", f"{len(data)} octets, expected at least 12")
    eui, body = datagram_eui(data), data[EUI_HEADER_LEN:]
    if identifier == Identifier.PULL_DATA:
        if body:
            raise UdpError("bad_length", f"{len(data)} octets in a PULL_DATA")
        return PullData(token, eui, version)
    if identifier == Identifier.PUSH_DATA:
        rxpk, stat, rejected = _push_body(body)
        return PushData(token, eui, rxpk, stat, version, rejected)
    return TxAck(token, eui, _tx_error(body), version)
