"""Every parser a stranger can reach, as one-argument functions of raw bytes, with the errors
each is allowed to raise for bad input (a clear rejection). Anything else is a crash. Used by the
property-based tests and by ``bench/fuzz.py`` (atheris when it is installed)."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qsl

from edge.drivers.cellular import CellularModem, QuectelGnss, Sim7600Gnss
from edge.drivers.gnss import NmeaParser
from edge.protocol import Ack, Envelope, Status, Topic
from edge.protocol.codecs import CodecError, codec
from edge.protocol.tracker import Position
from gateway.lorawan.frames import FrameError, parse_frame
from gateway.lorawan.semtech_udp import UdpError, parse_datagram
from gateway.services.phones import basic_auth, from_osmand, from_owntracks

RIVER = codec("river-v1")


def _river_uplink(data: bytes) -> object:
    return RIVER.decode(1 + data[0] % 3, data[1:]) if data else None


def _nmea(data: bytes) -> object:
    """A GNSS receiver's byte stream: the parser counts bad sentences and never raises."""
    parser = NmeaParser()
    return parser.feed(data), parser.flush()


def _owntracks(data: bytes) -> object:
    return from_owntracks("tracker-01", data)


def _osmand(data: bytes) -> object:
    """An OsmAnd request's query string, as the tracker service's HTTP intake receives it."""
    return from_osmand(dict(parse_qsl(data.decode("utf-8", "replace"))))


def _basic_auth(data: bytes) -> object:
    """A phone's Authorization header: parsed or None, never an exception."""
    return basic_auth(data.decode("utf-8", "replace"))


class AnsweringPort:
    """The modem's end of an AT port, in memory (the pty version is in the tests: this one is
    fast enough for a coverage-guided fuzzer): every command is answered with ``answer`` and a
    final ``OK``, so a garbled answer is read to its end instead of timing out."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer + b"\r\nOK\r\n"
        self.unread = b""

    def write(self, data: bytes) -> None:
        self.unread += self.answer

    def read(self, timeout_s: float, max_bytes: int = 4096) -> bytes:
        out, self.unread = self.unread[:max_bytes], self.unread[max_bytes:]
        return out

    def close(self) -> None:
        self.unread = b""


def sendable(fix: object) -> None:
    """What the tracker does with a fix its modem gave: the position it would send must be one
    the city accepts (``EnvelopeError`` otherwise: a crash here, the driver let it through)."""
    if fix is not None:
        data = Position(
            fix.lat, fix.lon, fix.accuracy_m, fix.speed_mps, "modem", "moving", fix.hdop,
            fix.satellites,
        ).data()  # fmt: skip
        Position.from_data(data)


def _at_response(data: bytes) -> object:
    """An LTE modem's answer (any bytes: firmware quirks, a noisy line), read by the tracker's
    driver as link health and as both modems' GNSS answers; it must never raise, and a fix it
    returns must be sendable."""
    modem = CellularModem(AnsweringPort(data), command_timeout_s=0.01)  # type: ignore[arg-type]
    health = modem.health()
    for gnss in (Sim7600Gnss(modem), QuectelGnss(modem)):
        sendable(gnss.read(0.01))
    return health


def _topic(data: bytes) -> object:
    return Topic.parse(data.decode("utf-8", "replace"))


# name -> (parser, the exception types that mean "rejected, with a reason")
TARGETS: dict[str, tuple[Callable[[bytes], object], tuple[type[BaseException], ...]]] = {
    "envelope": (Envelope.from_json, (ValueError,)),
    "status": (Status.from_json, (ValueError,)),
    "ack": (Ack.from_json, (ValueError,)),
    "topic": (_topic, (ValueError,)),
    "semtech_udp": (parse_datagram, (UdpError,)),
    "phypayload": (parse_frame, (FrameError,)),
    "river_lora_payload": (_river_uplink, (CodecError,)),
    "nmea": (_nmea, ()),
    "owntracks": (_owntracks, (ValueError,)),
    "osmand": (_osmand, (ValueError,)),
    "basic_auth": (_basic_auth, ()),
    "at_response": (_at_response, ()),
}


def run_one(name: str, data: bytes) -> bool:
    """True if the parser accepted ``data``, False if it rejected it; a crash propagates."""
    parse, rejections = TARGETS[name]
    try:
        parse(data)
    except rejections:
        return False
    return True
