"""AS923-1 regional parameters (RP002-1.0.4) the gateway needs to answer an uplink.

Frequencies are integer Hz to keep arithmetic exact; the Semtech forwarder's MHz floats are
converted at its boundary. Data rates are the forwarder's strings ("SF10BW125") or DR indices.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.protocol.airtime import AS923_DATA_RATES, DataRate

DEFAULT_CHANNELS_HZ = (923_200_000, 923_400_000)
RX2_FREQUENCY_HZ = 923_200_000
RX2_DR = 2
RECEIVE_DELAY1_S = 1
RECEIVE_DELAY2_S = 2
JOIN_ACCEPT_DELAY1_S = 5
JOIN_ACCEPT_DELAY2_S = 6
MAX_EIRP_DBM = 16
MAX_RX1_DR = 5
DWELL_MIN_DR = 2  # lowest data rate allowed while the 400 ms dwell limit applies
# RX1DROffset 0..7 -> effective offset; 6 and 7 raise the downlink rate above the uplink's.
EFFECTIVE_RX1_DR_OFFSET = (0, 1, 2, 3, 4, 5, -1, -2)


def _datr(rate: DataRate) -> str:
    return f"SF{rate.sf}BW{rate.bandwidth_hz // 1000}"


_DR_BY_DATR = {_datr(rate): dr for dr, rate in AS923_DATA_RATES.items()}


def datr_from_dr(dr: int) -> str:
    """The forwarder's data-rate string for an AS923 DR index, e.g. 2 -> "SF10BW125"."""
    rate = AS923_DATA_RATES.get(dr)
    if rate is None:
        raise ValueError(f"DR{dr} is not an AS923 LoRa data rate")
    return _datr(rate)


def dr_from_datr(datr: str) -> int:
    """The AS923 DR index of a forwarder data-rate string, e.g. "SF7BW125" -> 5."""
    dr = _DR_BY_DATR.get(datr)
    if dr is None:
        raise ValueError(f"{datr!r} is not an AS923 LoRa data rate")
    return dr


def rx1_dr(uplink_dr: int, rx1_dr_offset: int = 0, *, dwell_time: bool = True) -> int:
    """RX1 data rate: min(5, max(MinDR, uplink DR - effective offset)), MinDR 2 under dwell."""
    if uplink_dr not in AS923_DATA_RATES:
        raise ValueError(f"DR{uplink_dr} is not an AS923 LoRa data rate")
    if not 0 <= rx1_dr_offset < len(EFFECTIVE_RX1_DR_OFFSET):
        raise ValueError(f"RX1DROffset {rx1_dr_offset} is not 0..7")
    min_dr = DWELL_MIN_DR if dwell_time else 0
    return min(MAX_RX1_DR, max(min_dr, uplink_dr - EFFECTIVE_RX1_DR_OFFSET[rx1_dr_offset]))


@dataclass(frozen=True)
class RxWindow:
    """Where a Class A downlink goes: frequency in Hz and DR index."""

    frequency_hz: int
    dr: int

    @property
    def datr(self) -> str:
        return datr_from_dr(self.dr)


RX2 = RxWindow(RX2_FREQUENCY_HZ, RX2_DR)


def rx1_window(
    uplink_frequency_hz: int, uplink_dr: int, rx1_dr_offset: int = 0, *, dwell_time: bool = True
) -> RxWindow:
    """RX1 answers on the uplink's own frequency in AS923, at the offset data rate."""
    return RxWindow(uplink_frequency_hz, rx1_dr(uplink_dr, rx1_dr_offset, dwell_time=dwell_time))
