"""How long a LoRa frame occupies the air, and how much fits in an AS923 data rate.

Time on air follows Semtech AN1200.13 (LoRa Modem Designer's Guide) §4: preamble of 8 symbols,
explicit header as LoRaWAN always uses, CRC on uplinks only. Japan's 400 ms dwell limit is an
airtime limit, which is why the AS923 data rates and maximum payload sizes (RP002-1.0.4) live
here too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

LDRO_SYMBOL_S = 0.016  # symbols longer than 16 ms need low data rate optimisation


@dataclass(frozen=True)
class DataRate:
    """A LoRa data rate: spreading factor and bandwidth in Hz."""

    sf: int
    bandwidth_hz: int


# RP002-1.0.4, AS923 data rate table (DR7, FSK, is not used by machimori).
AS923_DATA_RATES: dict[int, DataRate] = {
    0: DataRate(12, 125_000),
    1: DataRate(11, 125_000),
    2: DataRate(10, 125_000),
    3: DataRate(9, 125_000),
    4: DataRate(8, 125_000),
    5: DataRate(7, 125_000),
    6: DataRate(7, 250_000),
}


@dataclass(frozen=True)
class MaxPayload:
    """RP002 maximum sizes: ``m`` of the MACPayload, ``n`` of FRMPayload when FOpts is empty."""

    m: int
    n: int


# RP002-1.0.4, AS923 maximum payload size (not repeater compatible), as ChirpStack lrwn holds it.
# None: the data rate may not be used at all while the dwell limit applies.
AS923_MAX_PAYLOAD_DWELL: dict[int, MaxPayload | None] = {
    0: None,
    1: None,
    2: MaxPayload(19, 11),
    3: MaxPayload(61, 53),
    4: MaxPayload(133, 125),
    5: MaxPayload(250, 242),
    6: MaxPayload(250, 242),
}
AS923_MAX_PAYLOAD_NO_DWELL: dict[int, MaxPayload | None] = {
    0: MaxPayload(59, 51),
    1: MaxPayload(59, 51),
    2: MaxPayload(123, 115),
    3: MaxPayload(123, 115),
    4: MaxPayload(250, 242),
    5: MaxPayload(250, 242),
    6: MaxPayload(250, 242),
}


def time_on_air(
    payload_size: int,
    sf: int,
    bandwidth_hz: int,
    *,
    coding_rate: str = "4/5",
    preamble: int = 8,
    crc: bool = True,
) -> float:
    """Seconds a LoRa frame of ``payload_size`` PHY octets takes (AN1200.13 §4, explicit header).

    Low data rate optimisation is switched on as LoRaMac-node does, when a symbol lasts more than
    16 ms (SF11 and SF12 at 125 kHz, SF12 at 250 kHz). ``crc`` is False for downlinks, which
    LoRaWAN sends without a PHY CRC.
    """
    if not 6 <= sf <= 12:
        raise ValueError(f"spreading factor {sf} is not 6..12")
    if coding_rate not in ("4/5", "4/6", "4/7", "4/8"):
        raise ValueError(f"coding rate {coding_rate!r} is not 4/5..4/8")
    if not 0 <= payload_size <= 255:
        raise ValueError("a LoRa payload is 0..255 octets")
    symbol = (1 << sf) / bandwidth_hz
    de = 1 if symbol > LDRO_SYMBOL_S else 0
    cr = int(coding_rate[2]) - 4
    bits = 8 * payload_size - 4 * sf + 28 + (16 if crc else 0)
    payload_symbols = 8 + max(math.ceil(bits / (4 * (sf - 2 * de))) * (cr + 4), 0)
    return (preamble + 4.25 + payload_symbols) * symbol


def dr_time_on_air(dr: int, payload_size: int, *, crc: bool = True) -> float:
    """``time_on_air`` at an AS923 data rate with LoRaWAN's coding rate 4/5."""
    rate = AS923_DATA_RATES[dr]
    return time_on_air(payload_size, rate.sf, rate.bandwidth_hz, crc=crc)


def max_payload(dr: int, *, dwell_time: bool = True) -> MaxPayload | None:
    """The AS923 size limits at ``dr``; None where the dwell limit forbids the data rate.

    AS923 devices start with the 400 ms dwell limit on (Japan requires it), hence the default.
    """
    table = AS923_MAX_PAYLOAD_DWELL if dwell_time else AS923_MAX_PAYLOAD_NO_DWELL
    return table[dr]
