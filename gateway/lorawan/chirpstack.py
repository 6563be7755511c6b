"""ChirpStack mode: a city that already runs ChirpStack v4 keeps it; we read its MQTT integration.

ChirpStack has done the LoRaWAN work (join, MIC, frame counters, decryption, deduplication) and
publishes each uplink as JSON on ``application/{application_id}/device/{dev_eui}/event/up``. Here
its ``data`` (base64 FRMPayload) is decoded with the device's machimori codec into the same
envelope the UDP mode publishes. The JSON is the protobuf JSON mapping of
``integration.UplinkEvent`` (v4.1+, ``fCnt`` present); fields with default values may be absent.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from dataclasses import dataclass
from typing import Any

from edge.protocol.airtime import AS923_DATA_RATES
from gateway.lorawan import region
from gateway.lorawan.forward import Gateway, radio_metadata

log = logging.getLogger(__name__)
# MHDR, DevAddr, FCtrl, FCnt, FPort and MIC around the FRMPayload, for the time on air.
FRAME_OVERHEAD = 13


class ChirpStackError(ValueError):
    """An event that cannot be used; ``reason`` is counted as ``chirpstack.{reason}``."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


@dataclass(frozen=True)
class ChirpStackUplink:
    dev_eui: int
    fport: int | None
    data: bytes
    radio: dict[str, Any]


def _get(obj: dict[str, Any], key: str, kind: type, default: Any = None) -> Any:
    """``obj[key]`` checked to be a JSON value of ``kind`` (a bool is no number), or default."""
    value = obj.get(key, default)
    if value is None:
        return None
    if not isinstance(value, bool):
        if kind is float and isinstance(value, int | float):
            return float(value)
        if isinstance(value, kind):
            return value
    raise ChirpStackError("bad_event", f"{key!r} is not a {kind.__name__}")


def _object(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key, {})
    if not isinstance(value, dict):
        raise ChirpStackError("bad_event", f"{key!r} is not an object")
    return value


def _gateways(rx_info: object) -> list[Gateway]:
    if not isinstance(rx_info, list) or not all(isinstance(r, dict) for r in rx_info):
        raise ChirpStackError("bad_event", "'rxInfo' is not a list of objects")
    return [
        Gateway(_get(r, "gatewayId", str, ""), _get(r, "rssi", int, 0), _get(r, "snr", float))
        for r in rx_info
    ]


def parse_uplink_event(payload: bytes) -> ChirpStackUplink:
    """One ``event/up`` message; raises ChirpStackError for anything unusable."""
    try:
        event = json.loads(payload)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ChirpStackError("bad_json") from None
    if not isinstance(event, dict):
        raise ChirpStackError("bad_json", "the root is not an object")
    try:
        dev_eui = int(_get(_object(event, "deviceInfo"), "devEui", str, ""), 16)
    except ValueError:
        raise ChirpStackError("bad_event", "deviceInfo.devEui is not hex") from None
    try:
        data = base64.b64decode(_get(event, "data", str, ""), validate=True)
    except binascii.Error:
        raise ChirpStackError("bad_event", "'data' is not base64") from None
    lora = _object(_object(_object(event, "txInfo"), "modulation"), "lora")
    sf, bandwidth = _get(lora, "spreadingFactor", int), _get(lora, "bandwidth", int)
    dr = _get(event, "dr", int, 0)
    if dr not in AS923_DATA_RATES:
        raise ChirpStackError("bad_event", f"DR{dr} is not an AS923 LoRa data rate")
    datr = f"SF{sf}BW{bandwidth // 1000}" if sf and bandwidth else region.datr_from_dr(dr)
    radio = radio_metadata(
        _gateways(event.get("rxInfo", [])),
        frequency_hz=_get(_object(event, "txInfo"), "frequency", int, 0),
        dr=dr,
        datr=datr,
        phy_size=FRAME_OVERHEAD + len(data),
        fcnt=_get(event, "fCnt", int, 0),
    )
    return ChirpStackUplink(dev_eui, _get(event, "fPort", int), data, radio)
