"""LoRaWAN 1.0.4 MAC commands (§5), both directions, as octets and as typed values.

A frame carries MAC commands in FOpts (at most 15 octets, sent in clear) or as the FRMPayload of
FPort 0 (encrypted with the NwkSKey); the framing is the same: a CID octet, then a payload whose
length the CID and the direction fix (Table 4). So ``parse`` needs the direction, and an unknown
CID ends the parse, since what follows it cannot be framed: the spec has the receiver ignore it
and everything after it in the frame (§5). What was parsed before is kept; the reason why the
rest was not (``unknown_cid``, ``truncated``) is returned for the caller to count.

Names follow the spec: a ``...Req`` goes from the network to the device, an ``...Ans`` back, but
LinkCheck and DeviceTime are asked by the device (Req up, Ans down). Frequencies are integer Hz,
sent as 24-bit little-endian units of 100 Hz.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import ClassVar

GPS_EPOCH = datetime(1980, 1, 6, tzinfo=UTC)
# GPS time runs ahead of UTC by the leap seconds inserted since 1980: 18 since 2017-01-01, and
# none announced since (IERS Bulletin C). A new one means updating this constant.
GPS_LEAP_SECONDS = 18
# TxParamSetupReq MaxEIRP codes 0..15 -> dBm (§5.9, Table 21).
MAX_EIRP_CODES_DBM = (8, 10, 12, 13, 14, 16, 18, 20, 21, 24, 26, 27, 29, 30, 33, 36)
KEEP = 0xF  # LinkADRReq DataRate or TXPower 15: the device keeps its current value (1.0.4 §5.3)


class Cid(IntEnum):
    """Command identifiers of LoRaWAN 1.0.4 Class A (Table 4)."""

    LINK_CHECK = 0x02
    LINK_ADR = 0x03
    DUTY_CYCLE = 0x04
    RX_PARAM_SETUP = 0x05
    DEV_STATUS = 0x06
    NEW_CHANNEL = 0x07
    RX_TIMING_SETUP = 0x08
    TX_PARAM_SETUP = 0x09
    DL_CHANNEL = 0x0A
    DEVICE_TIME = 0x0D


class MacError(ValueError):
    """A MAC command that cannot be built or parsed; ``reason`` is counted."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def _freq(hz: int) -> bytes:
    if hz % 100 or not 0 <= hz // 100 < 1 << 24:
        raise MacError("bad_frequency", f"{hz} Hz is not a 24-bit multiple of 100 Hz")
    return (hz // 100).to_bytes(3, "little")


def _unfreq(data: bytes) -> int:
    return int.from_bytes(data, "little") * 100


def _flag(value: int, bit: int) -> bool:
    return bool(value >> bit & 1)


def _bits(*flags: bool) -> int:
    """Flags given from the highest bit down to bit 0."""
    value = 0
    for flag in flags:
        value = value << 1 | flag
    return value


class MacCommand:
    """One command: ``CID``, whether it travels ``UPLINK``, its payload octets and ``SIZE``."""

    CID: ClassVar[Cid]
    UPLINK: ClassVar[bool]
    SIZE: ClassVar[int] = 0

    def payload(self) -> bytes:
        return b""

    def to_bytes(self) -> bytes:
        return bytes([self.CID]) + self.payload()

    @classmethod
    def from_payload(cls, data: bytes) -> MacCommand:
        return cls()


class _StatusAns(MacCommand):
    """An answer of one status octet whose fields are its flags, the first in the highest bit
    used; ``accepted`` when every one is set."""

    SIZE = 1

    @property
    def accepted(self) -> bool:
        return all(getattr(self, f.name) for f in fields(self))  # type: ignore[arg-type]

    def payload(self) -> bytes:
        return bytes([_bits(*(getattr(self, f.name) for f in fields(self)))])  # type: ignore[arg-type]

    @classmethod
    def from_payload(cls, data: bytes) -> MacCommand:
        count = len(fields(cls))  # type: ignore[arg-type]
        return cls(*(_flag(data[0], count - 1 - i) for i in range(count)))


# -- device -> network ------------------------------------------------------------------------
@dataclass(frozen=True)
class LinkCheckReq(MacCommand):
    """The device asks how well it is heard (§5.2)."""

    CID = Cid.LINK_CHECK
    UPLINK = True


@dataclass(frozen=True)
class LinkADRAns(_StatusAns):
    """Whether the device accepted the TXPower, DataRate and ChMask of a LinkADRReq (§5.3)."""

    CID = Cid.LINK_ADR
    UPLINK = True
    power_ack: bool = True
    dr_ack: bool = True
    ch_mask_ack: bool = True


@dataclass(frozen=True)
class DutyCycleAns(MacCommand):
    CID = Cid.DUTY_CYCLE
    UPLINK = True


@dataclass(frozen=True)
class RXParamSetupAns(_StatusAns):
    """Whether the device took RX1DROffset, RX2 DataRate and RX2 frequency (§5.4); repeated in
    every uplink until the device receives a downlink."""

    CID = Cid.RX_PARAM_SETUP
    UPLINK = True
    rx1_dr_offset_ack: bool = True
    rx2_dr_ack: bool = True
    channel_ack: bool = True


@dataclass(frozen=True)
class DevStatusAns(MacCommand):
    """Battery (0 external power, 1..254 level, 255 unknown) and the SNR margin in dB of the
    DevStatusReq as the device received it, -32..31 (§5.5)."""

    CID = Cid.DEV_STATUS
    UPLINK = True
    SIZE = 2
    battery: int = 255
    margin: int = 0

    def payload(self) -> bytes:
        if not (0 <= self.battery <= 255 and -32 <= self.margin <= 31):
            raise MacError("bad_value", "battery 0..255, margin -32..31")
        return bytes([self.battery, self.margin & 0x3F])

    @classmethod
    def from_payload(cls, data: bytes) -> DevStatusAns:
        margin = data[1] & 0x3F
        return cls(data[0], margin - 64 if margin & 0x20 else margin)


@dataclass(frozen=True)
class NewChannelAns(_StatusAns):
    """Whether the device took a NewChannelReq's data-rate range and frequency (§5.6)."""

    CID = Cid.NEW_CHANNEL
    UPLINK = True
    dr_range_ok: bool = True
    frequency_ok: bool = True


@dataclass(frozen=True)
class RXTimingSetupAns(MacCommand):
    """Repeated in every uplink until the device receives a downlink (§5.7)."""

    CID = Cid.RX_TIMING_SETUP
    UPLINK = True


@dataclass(frozen=True)
class TxParamSetupAns(MacCommand):
    CID = Cid.TX_PARAM_SETUP
    UPLINK = True


@dataclass(frozen=True)
class DlChannelAns(_StatusAns):
    """Repeated in every uplink until the device receives a downlink (§5.8)."""

    CID = Cid.DL_CHANNEL
    UPLINK = True
    uplink_frequency_exists: bool = True
    frequency_ok: bool = True


@dataclass(frozen=True)
class DeviceTimeReq(MacCommand):
    """The device asks for the network's time (§5.9)."""

    CID = Cid.DEVICE_TIME
    UPLINK = True


# -- network -> device ------------------------------------------------------------------------
@dataclass(frozen=True)
class LinkCheckAns(MacCommand):
    """``margin``: dB above the demodulation floor of the best reception, 0..254; ``gw_cnt``:
    how many gateways heard the LinkCheckReq (§5.2)."""

    CID = Cid.LINK_CHECK
    UPLINK = False
    SIZE = 2
    margin: int = 0
    gw_cnt: int = 1

    def payload(self) -> bytes:
        if not (0 <= self.margin <= 254 and 0 <= self.gw_cnt <= 255):
            raise MacError("bad_value", "margin 0..254, gateway count 0..255")
        return bytes([self.margin, self.gw_cnt])

    @classmethod
    def from_payload(cls, data: bytes) -> LinkCheckAns:
        return cls(data[0], data[1])


@dataclass(frozen=True)
class LinkADRReq(MacCommand):
    """DataRate and TXPower (15: keep), the ChMask of channels 0..15 under ChMaskCntl, and
    NbTrans (0: keep) (§5.3)."""

    CID = Cid.LINK_ADR
    UPLINK = False
    SIZE = 4
    dr: int = KEEP
    tx_power: int = KEEP
    ch_mask: int = 0
    ch_mask_cntl: int = 0
    nb_trans: int = 0

    def payload(self) -> bytes:
        if not (0 <= self.dr <= 15 and 0 <= self.tx_power <= 15 and 0 <= self.nb_trans <= 15):
            raise MacError("bad_value", "DataRate, TXPower and NbTrans are 4 bits")
        if not (0 <= self.ch_mask <= 0xFFFF and 0 <= self.ch_mask_cntl <= 7):
            raise MacError("bad_value", "ChMask is 16 bits, ChMaskCntl 3")
        return (
            bytes([self.dr << 4 | self.tx_power])
            + self.ch_mask.to_bytes(2, "little")
            + bytes([self.ch_mask_cntl << 4 | self.nb_trans])
        )

    @classmethod
    def from_payload(cls, data: bytes) -> LinkADRReq:
        return cls(
            dr=data[0] >> 4,
            tx_power=data[0] & 0x0F,
            ch_mask=int.from_bytes(data[1:3], "little"),
            ch_mask_cntl=data[3] >> 4 & 0x07,
            nb_trans=data[3] & 0x0F,
        )


@dataclass(frozen=True)
class DutyCycleReq(MacCommand):
    """Aggregated duty cycle 1 / 2^``max_duty_cycle`` (0: no limit) (§5.4)."""

    CID = Cid.DUTY_CYCLE
    UPLINK = False
    SIZE = 1
    max_duty_cycle: int = 0

    def payload(self) -> bytes:
        if not 0 <= self.max_duty_cycle <= 15:
            raise MacError("bad_value", "MaxDCycle is 0..15")
        return bytes([self.max_duty_cycle])

    @classmethod
    def from_payload(cls, data: bytes) -> DutyCycleReq:
        return cls(data[0] & 0x0F)


@dataclass(frozen=True)
class RXParamSetupReq(MacCommand):
    """RX1DROffset, RX2 DataRate and RX2 frequency (§5.4)."""

    CID = Cid.RX_PARAM_SETUP
    UPLINK = False
    SIZE = 4
    rx1_dr_offset: int = 0
    rx2_dr: int = 0
    frequency_hz: int = 0

    def payload(self) -> bytes:
        if not (0 <= self.rx1_dr_offset <= 7 and 0 <= self.rx2_dr <= 15):
            raise MacError("bad_value", "RX1DROffset 0..7, RX2 DataRate 0..15")
        return bytes([self.rx1_dr_offset << 4 | self.rx2_dr]) + _freq(self.frequency_hz)

    @classmethod
    def from_payload(cls, data: bytes) -> RXParamSetupReq:
        return cls(data[0] >> 4 & 0x07, data[0] & 0x0F, _unfreq(data[1:4]))


@dataclass(frozen=True)
class DevStatusReq(MacCommand):
    CID = Cid.DEV_STATUS
    UPLINK = False


@dataclass(frozen=True)
class NewChannelReq(MacCommand):
    """Define (or, with frequency 0, disable) channel ``ch_index`` for DR ``min_dr``..``max_dr``
    (§5.6)."""

    CID = Cid.NEW_CHANNEL
    UPLINK = False
    SIZE = 5
    ch_index: int = 0
    frequency_hz: int = 0
    min_dr: int = 0
    max_dr: int = 5

    def payload(self) -> bytes:
        if not (0 <= self.ch_index <= 255 and 0 <= self.min_dr <= 15 and 0 <= self.max_dr <= 15):
            raise MacError("bad_value", "ChIndex is an octet, MinDR and MaxDR 4 bits")
        return (
            bytes([self.ch_index])
            + _freq(self.frequency_hz)
            + bytes([self.max_dr << 4 | self.min_dr])
        )

    @classmethod
    def from_payload(cls, data: bytes) -> NewChannelReq:
        return cls(data[0], _unfreq(data[1:4]), data[4] & 0x0F, data[4] >> 4)


@dataclass(frozen=True)
class RXTimingSetupReq(MacCommand):
    """RECEIVE_DELAY1 in seconds; 0 means 1 (§5.7)."""

    CID = Cid.RX_TIMING_SETUP
    UPLINK = False
    SIZE = 1
    delay: int = 1

    def payload(self) -> bytes:
        if not 0 <= self.delay <= 15:
            raise MacError("bad_value", "Del is 0..15")
        return bytes([self.delay])

    @classmethod
    def from_payload(cls, data: bytes) -> RXTimingSetupReq:
        return cls(data[0] & 0x0F)

    @property
    def delay_s(self) -> int:
        return max(1, self.delay)


@dataclass(frozen=True)
class TxParamSetupReq(MacCommand):
    """The dwell-time limits (True: 400 ms) and the MaxEIRP code (§5.9, AS923 only)."""

    CID = Cid.TX_PARAM_SETUP
    UPLINK = False
    SIZE = 1
    downlink_dwell: bool = True
    uplink_dwell: bool = True
    max_eirp: int = 5  # 16 dBm

    def payload(self) -> bytes:
        if not 0 <= self.max_eirp <= 15:
            raise MacError("bad_value", "MaxEIRP is 0..15")
        return bytes([self.downlink_dwell << 5 | self.uplink_dwell << 4 | self.max_eirp])

    @classmethod
    def from_payload(cls, data: bytes) -> TxParamSetupReq:
        return cls(_flag(data[0], 5), _flag(data[0], 4), data[0] & 0x0F)

    @property
    def max_eirp_dbm(self) -> int:
        return MAX_EIRP_CODES_DBM[self.max_eirp]


@dataclass(frozen=True)
class DlChannelReq(MacCommand):
    """Move the downlink (RX1) frequency of channel ``ch_index`` (§5.8)."""

    CID = Cid.DL_CHANNEL
    UPLINK = False
    SIZE = 4
    ch_index: int = 0
    frequency_hz: int = 0

    def payload(self) -> bytes:
        return bytes([self.ch_index]) + _freq(self.frequency_hz)

    @classmethod
    def from_payload(cls, data: bytes) -> DlChannelReq:
        return cls(data[0], _unfreq(data[1:4]))


@dataclass(frozen=True)
class DeviceTimeAns(MacCommand):
    """Seconds since the GPS epoch (uint32) and a fraction in 1/256 s (§5.9): the time at the
    end of the uplink that asked."""

    CID = Cid.DEVICE_TIME
    UPLINK = False
    SIZE = 5
    seconds: int = 0
    fraction: int = 0

    @classmethod
    def at(cls, when: datetime) -> DeviceTimeAns:
        """The answer for UTC ``when``."""
        gps = (when - GPS_EPOCH).total_seconds() + GPS_LEAP_SECONDS
        seconds = int(gps)
        return cls(seconds, min(255, round((gps - seconds) * 256)))

    def payload(self) -> bytes:
        if not (0 <= self.seconds < 1 << 32 and 0 <= self.fraction <= 255):
            raise MacError("bad_value", "seconds are 32 bits, the fraction an octet")
        return self.seconds.to_bytes(4, "little") + bytes([self.fraction])

    @classmethod
    def from_payload(cls, data: bytes) -> DeviceTimeAns:
        return cls(int.from_bytes(data[0:4], "little"), data[4])

    @property
    def utc(self) -> datetime:
        gps = self.seconds + self.fraction / 256 - GPS_LEAP_SECONDS
        return GPS_EPOCH + timedelta(seconds=gps)


UPLINK_COMMANDS: dict[int, type[MacCommand]] = {
    c.CID: c
    for c in (
        LinkCheckReq,
        LinkADRAns,
        DutyCycleAns,
        RXParamSetupAns,
        DevStatusAns,
        NewChannelAns,
        RXTimingSetupAns,
        TxParamSetupAns,
        DlChannelAns,
        DeviceTimeReq,
    )
}
DOWNLINK_COMMANDS: dict[int, type[MacCommand]] = {
    c.CID: c
    for c in (
        LinkCheckAns,
        LinkADRReq,
        DutyCycleReq,
        RXParamSetupReq,
        DevStatusReq,
        NewChannelReq,
        RXTimingSetupReq,
        TxParamSetupReq,
        DlChannelReq,
        DeviceTimeAns,
    )
}


def encode(commands: list[MacCommand]) -> bytes:
    return b"".join(c.to_bytes() for c in commands)


def parse(data: bytes, *, uplink: bool) -> tuple[list[MacCommand], str | None]:
    """The commands in ``data`` sent in the given direction, and why parsing stopped early
    (``unknown_cid``, ``truncated``) or None when every octet was a command."""
    table = UPLINK_COMMANDS if uplink else DOWNLINK_COMMANDS
    commands: list[MacCommand] = []
    at = 0
    while at < len(data):
        kind = table.get(data[at])
        if kind is None:
            return commands, "unknown_cid"
        end = at + 1 + kind.SIZE
        if end > len(data):
            return commands, "truncated"
        commands.append(kind.from_payload(data[at + 1 : end]))
        at = end
    return commands, None
