"""AS923-1 regional parameters (RP002-1.0.4) the gateway needs to answer an uplink.

Frequencies are integer Hz to keep arithmetic exact; the Semtech forwarder's MHz floats are
converted at its boundary. Data rates are the forwarder's strings ("SF10BW125") or DR indices.

The city's channel plan is the two default channels every AS923 device knows plus up to six more
(a concentrator listens on eight), sent to each device in the Join-Accept's CFList (RP002 §2.8.4:
five frequencies and CFListType 0) and, for an ABP device or the eighth channel, by NewChannelReq.
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
MAX_TX_POWER_INDEX = 7  # TXPower 0..7: MaxEIRP - 2 dB * index (RP002 AS923 Table)
MAX_CHANNELS = 8  # what one concentrator (SX1301/SX1302, 8 multi-SF demodulators) receives
CFLIST_CHANNELS = 5  # AS923 CFList: channels 2..6; channel 7 needs a NewChannelReq
BAND_HZ = (915_000_000, 928_000_000)  # the AS923 band's edges (RP002 §2.8)
MIN_UPLINK_DR, MAX_UPLINK_DR = 0, 5  # the 125 kHz LoRa rates a plan channel carries
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


# SNR (dB) below which a LoRa demodulator loses the frame, per spreading factor (SX1276 datasheet
# Table 13): the floor for LinkCheckAns margins and the ADR algorithm's required SNR.
DEMODULATION_FLOOR_DB = {12: -20.0, 11: -17.5, 10: -15.0, 9: -12.5, 8: -10.0, 7: -7.5}


def required_snr(dr: int) -> float:
    """The demodulation floor at an AS923 data rate."""
    return DEMODULATION_FLOOR_DB[AS923_DATA_RATES[dr].sf]


def tx_power_dbm(index: int, max_eirp_dbm: int = MAX_EIRP_DBM) -> int:
    """A device's EIRP at TXPower ``index`` (0 is the maximum)."""
    if not 0 <= index <= MAX_TX_POWER_INDEX:
        raise ValueError(f"TXPower {index} is not 0..{MAX_TX_POWER_INDEX}")
    return max_eirp_dbm - 2 * index


@dataclass(frozen=True)
class ChannelPlan:
    """The uplink channels of the network, by channel index: the two defaults, then the city's.

    Every channel carries DR0..DR5; RX1 answers on the uplink's channel, RX2 is 923.2 MHz, so a
    downlink outside the plan can only come from an uplink outside it, which the server refuses.
    """

    frequencies_hz: tuple[int, ...] = DEFAULT_CHANNELS_HZ

    def __post_init__(self) -> None:
        f = self.frequencies_hz
        if f[:2] != DEFAULT_CHANNELS_HZ:
            raise ValueError("the plan starts with the AS923 default channels 923.2, 923.4 MHz")
        if len(f) > MAX_CHANNELS:
            raise ValueError(f"a plan has at most {MAX_CHANNELS} channels (one concentrator)")
        if len(set(f)) != len(f):
            raise ValueError("a frequency appears twice")
        for hz in f:
            if not BAND_HZ[0] <= hz <= BAND_HZ[1] or hz % 100:
                raise ValueError(f"{hz / 1e6:g} MHz is not in 915..928 MHz in steps of 100 Hz")

    @classmethod
    def with_extra(cls, extra_mhz: list[float]) -> ChannelPlan:
        """The defaults plus the city's channels, given in MHz as in a forwarder's config."""
        return cls(DEFAULT_CHANNELS_HZ + tuple(round(mhz * 1_000_000) for mhz in extra_mhz))

    def __contains__(self, frequency_hz: int) -> bool:
        return frequency_hz in self.frequencies_hz

    @property
    def ch_mask(self) -> int:
        """The ChMask (LinkADRReq, ChMaskCntl 0) enabling every channel of the plan."""
        return (1 << len(self.frequencies_hz)) - 1

    def cf_list(self) -> bytes | None:
        """The Join-Accept CFList: channels 2..6 as 24-bit little-endian units of 100 Hz, zeros
        for unused slots, then CFListType 0 (RP002 §2.8.4). None when the plan adds nothing."""
        extra = self.frequencies_hz[2 : 2 + CFLIST_CHANNELS]
        return cf_list_bytes(list(extra)) if extra else None


def cf_list_bytes(frequencies_hz: list[int]) -> bytes:
    """A type-0 CFList: up to five frequencies (RP002 §2.8.4 for AS923, §2.4.4 for EU868)."""
    if len(frequencies_hz) > CFLIST_CHANNELS:
        raise ValueError(f"a CFList holds {CFLIST_CHANNELS} frequencies")
    slots = list(frequencies_hz) + [0] * (CFLIST_CHANNELS - len(frequencies_hz))
    return b"".join((hz // 100).to_bytes(3, "little") for hz in slots) + b"\x00"


def parse_cf_list(cf_list: bytes) -> list[int]:
    """Device side: the frequencies (Hz) a type-0 CFList defines for channels 2..6 (0: none)."""
    if len(cf_list) != 16 or cf_list[15] != 0:
        raise ValueError("not a 16-octet CFList of type 0 (frequencies)")
    return [int.from_bytes(cf_list[i : i + 3], "little") * 100 for i in range(0, 15, 3)]


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
