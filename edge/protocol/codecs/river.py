"""River gauge payloads, 9 bytes each: they fit AS923 DR2 (11 bytes) under the 400 ms dwell limit.

All integers big-endian. Bytes 0-5 are the common header (edge/protocol/codecs/__init__.py):

| bytes | field |
|---|---|
| 0-1 | seq, low 16 bits |
| 2-5 | time of measurement, seconds since 2020-01-01T00:00:00Z |

fPort 1, telemetry ``level``:

| 6-7 | level in mm above the gauge datum, int16; -32768 (0x8000) when missing |
| 8   | high nibble: valid samples (0-15, saturating); low: 0, or 1 + index in MISSING_REASONS |

fPort 2, event ``level_crossing``:

| 6-7 | level in mm above the gauge datum, int16 |
| 8   | bit 7: 1 rising, 0 falling; bits 0-2: 1 + index in WARNING_LEVELS |

Downlinks (city to gauge) carry no header. fPort 10, command ``set_interval``:

| 0-3 | measurement interval in whole seconds, uint32, 10..86400 |
"""

from __future__ import annotations

import struct
from datetime import datetime
from typing import Any

from edge.protocol.codecs import CodecError, LoraMessage, pack_header, unpack_header
from edge.protocol.river import MISSING_REASONS, WARNING_KEYS

BODY = struct.Struct(">hB")
LENGTH = 6 + BODY.size
MISSING_MM = -32768
PORT_LEVEL = 1
PORT_CROSSING = 2
PORT_SET_INTERVAL = 10
INTERVAL = struct.Struct(">I")
INTERVAL_RANGE_S = (10, 86400)  # as the river agent accepts over MQTT


def _interval_s(value: object) -> int:
    low, high = INTERVAL_RANGE_S
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        raise CodecError("bad_data", f"interval_s must be whole seconds, got {value!r}")
    if not low <= value <= high:
        raise CodecError("bad_data", f"interval_s {value} is outside {low}..{high}")
    return int(value)


def _mm(level_m: object) -> int:
    if isinstance(level_m, bool) or not isinstance(level_m, int | float):
        raise CodecError("bad_data", f"level_m must be a number, got {level_m!r}")
    mm = round(level_m * 1000)
    if not MISSING_MM < mm <= 32767:
        raise CodecError("bad_data", f"level_m {level_m} is outside ±32.767 m")
    return mm


class RiverCodec:
    name = "river-v1"

    def encode(
        self, channel: str, type: str, seq: int, ts: datetime, data: dict[str, Any]
    ) -> tuple[int, bytes]:
        header = pack_header(seq, ts)
        if (channel, type) == ("telemetry", "level"):
            valid = min(int(data.get("valid", 0)), 15)
            if "missing" in data:
                reason = data["missing"]
                if reason not in MISSING_REASONS:
                    raise CodecError("bad_data", f"unknown missing reason {reason!r}")
                body = BODY.pack(MISSING_MM, valid << 4 | 1 + MISSING_REASONS.index(reason))
            else:
                body = BODY.pack(_mm(data.get("level_m")), valid << 4)
            return PORT_LEVEL, header + body
        if (channel, type) == ("event", "level_crossing"):
            threshold, direction = data.get("threshold"), data.get("direction")
            if threshold not in WARNING_KEYS or direction not in ("rising", "falling"):
                raise CodecError("bad_data", f"crossing needs threshold and direction: {data}")
            flags = (0x80 if direction == "rising" else 0) | 1 + WARNING_KEYS.index(threshold)
            return PORT_CROSSING, header + BODY.pack(_mm(data.get("level_m")), flags)
        raise CodecError("no_binary_form", f"{channel}/{type} is not sent over LoRaWAN")

    def decode(self, fport: int, payload: bytes) -> LoraMessage:
        if fport not in (PORT_LEVEL, PORT_CROSSING):
            raise CodecError("bad_fport", f"river-v1 uses fPorts 1 and 2, got {fport}")
        if len(payload) != LENGTH:
            raise CodecError("bad_length", f"expected {LENGTH} bytes, got {len(payload)}")
        seq_low, ts = unpack_header(payload)
        mm, flags = BODY.unpack_from(payload, 6)
        if fport == PORT_LEVEL:
            valid, reason = flags >> 4, flags & 0x0F
            if (mm == MISSING_MM) != (reason != 0) or reason > len(MISSING_REASONS):
                raise CodecError("bad_data", f"level {mm} mm with missing code {reason}")
            data: dict[str, Any] = (
                {"missing": MISSING_REASONS[reason - 1], "valid": valid}
                if reason
                else {"level_m": mm / 1000, "valid": valid}
            )
            return LoraMessage(seq_low, ts, "telemetry", "level", data)
        index = flags & 0x07
        if not 1 <= index <= len(WARNING_KEYS) or flags & 0x78 or mm == MISSING_MM:
            raise CodecError("bad_data", f"crossing flags {flags:#04x}, level {mm} mm")
        data = {
            "level_m": mm / 1000,
            "threshold": WARNING_KEYS[index - 1],
            "direction": "rising" if flags & 0x80 else "falling",
        }
        return LoraMessage(seq_low, ts, "event", "level_crossing", data)

    def encode_command(self, type: str, data: dict[str, Any]) -> tuple[int, bytes]:
        if type != "set_interval":
            raise CodecError("no_binary_form", f"command {type!r} is not sent over LoRaWAN")
        return PORT_SET_INTERVAL, INTERVAL.pack(_interval_s(data.get("interval_s")))

    def decode_command(self, fport: int, payload: bytes) -> tuple[str, dict[str, Any]]:
        if fport != PORT_SET_INTERVAL:
            raise CodecError("bad_fport", f"river-v1 commands use fPort 10, got {fport}")
        if len(payload) != INTERVAL.size:
            raise CodecError("bad_length", f"expected {INTERVAL.size} bytes, got {len(payload)}")
        (interval_s,) = INTERVAL.unpack(payload)
        return "set_interval", {"interval_s": _interval_s(interval_s)}
