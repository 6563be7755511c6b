"""LoRaWAN 1.0.4 PHYPayload: parse what arrives, build what is sent, for both ends of the link.

The network server parses uplinks and builds Join-Accepts and downlinks; the device simulators
build uplinks and parse what comes back. Parsing never trusts its input: anything malformed raises
``FrameError`` whose ``reason`` is a short, stable string the server counts rejections by.

Integers stand for the multi-octet fields (EUIs, DevAddr, NetID, nonces) and are written
little-endian on air (§1.2), so ``f"{dev_addr:08x}"`` prints a DevAddr the way consoles show it.
RFU bits must be zero: a frame with one set is rejected rather than silently altered, so a parsed
frame always re-encodes to the very octets its MIC was computed over.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass, replace
from enum import IntEnum

from edge.protocol.errors import ReasonedError
from gateway.lorawan import crypto

MIC_LEN = crypto.MIC_LEN
MAX_PHY_PAYLOAD = 255
MAX_FOPTS = 15
JOIN_REQUEST_LEN = 23
JOIN_ACCEPT_LENS = (17, 33)  # without / with the 16-octet CFList
MIN_DATA_LEN = 12  # MHDR | DevAddr | FCtrl | FCnt | MIC


class FrameError(ReasonedError):
    """A PHYPayload that cannot be accepted; ``reason`` is stable and machine-readable."""


class MType(IntEnum):
    """Frame types (LoRaWAN 1.0.4 §4.2.1, Table 4)."""

    JOIN_REQUEST = 0
    JOIN_ACCEPT = 1
    UNCONFIRMED_DATA_UP = 2
    UNCONFIRMED_DATA_DOWN = 3
    CONFIRMED_DATA_UP = 4
    CONFIRMED_DATA_DOWN = 5
    RFU = 6
    PROPRIETARY = 7


UPLINK_DATA = (MType.UNCONFIRMED_DATA_UP, MType.CONFIRMED_DATA_UP)
DOWNLINK_DATA = (MType.UNCONFIRMED_DATA_DOWN, MType.CONFIRMED_DATA_DOWN)
MAJOR_R1 = 0  # §4.2.2: the only Major defined


def _mhdr(mtype: MType) -> bytes:
    return bytes([mtype << 5 | MAJOR_R1])


def _parse_mhdr(data: bytes) -> MType:
    if not data:
        raise FrameError("too_short", "empty PHYPayload")
    if len(data) > MAX_PHY_PAYLOAD:
        raise FrameError("too_long", f"{len(data)} octets")
    if data[0] & 0b11100:
        raise FrameError("bad_mhdr", "RFU bits set")
    if data[0] & 0b11 != MAJOR_R1:
        raise FrameError("bad_major", f"Major {data[0] & 0b11}")
    return MType(data[0] >> 5)


def _le(data: bytes, start: int, size: int) -> int:
    return int.from_bytes(data[start : start + size], "little")


@dataclass(frozen=True)
class JoinRequest:
    """Join-Request (§6.2.5). JoinEUI is the AppEUI of earlier 1.0.x revisions."""

    join_eui: int
    dev_eui: int
    dev_nonce: int
    mic: bytes

    def signed_part(self) -> bytes:
        """MHDR | JoinEUI | DevEUI | DevNonce: the octets the MIC covers."""
        return (
            _mhdr(MType.JOIN_REQUEST)
            + self.join_eui.to_bytes(8, "little")
            + self.dev_eui.to_bytes(8, "little")
            + self.dev_nonce.to_bytes(2, "little")
        )

    def to_bytes(self) -> bytes:
        return self.signed_part() + self.mic


@dataclass(frozen=True)
class JoinAccept:
    """Join-Accept (§6.2.6) after decryption and MIC check.

    ``rx_delay`` is the on-air Del value: 0 and 1 both mean one second (see ``rx1_delay_s``).
    ``cf_list`` is the raw 16-octet CFList or None; its layout is region-specific (RP002).
    """

    join_nonce: int
    net_id: int
    dev_addr: int
    rx1_dr_offset: int = 0
    rx2_dr: int = 0
    rx_delay: int = 0
    cf_list: bytes | None = None

    @property
    def rx1_delay_s(self) -> int:
        return max(1, self.rx_delay)

    def plaintext(self) -> bytes:
        """JoinNonce | NetID | DevAddr | DLSettings | RxDelay | CFList, before MIC and cipher."""
        if not (0 <= self.rx1_dr_offset <= 7 and 0 <= self.rx2_dr <= 15):
            raise ValueError("rx1_dr_offset is 0..7 and rx2_dr 0..15")
        if not 0 <= self.rx_delay <= 15:
            raise ValueError("rx_delay is 0..15")
        if self.cf_list is not None and len(self.cf_list) != 16:
            raise ValueError("a CFList is 16 octets")
        return (
            self.join_nonce.to_bytes(3, "little")
            + self.net_id.to_bytes(3, "little")
            + self.dev_addr.to_bytes(4, "little")
            + bytes([self.rx1_dr_offset << 4 | self.rx2_dr, self.rx_delay])
            + (self.cf_list or b"")
        )


@dataclass(frozen=True)
class FCtrl:
    """Frame control (§4.3.1, Tables 7 and 8). FOptsLen is not stored: it is ``len(fopts)``.

    ``adr_ack_req`` and ``class_b`` exist only on uplinks, ``f_pending`` only on downlinks.
    """

    adr: bool = False
    adr_ack_req: bool = False
    ack: bool = False
    f_pending: bool = False
    class_b: bool = False

    def to_byte(self, *, uplink: bool, fopts_len: int) -> int:
        if uplink and self.f_pending:
            raise ValueError("FPending is a downlink bit")
        if not uplink and (self.adr_ack_req or self.class_b):
            raise ValueError("ADRACKReq and ClassB are uplink bits")
        bit4 = self.class_b if uplink else self.f_pending
        return self.adr << 7 | self.adr_ack_req << 6 | self.ack << 5 | bit4 << 4 | fopts_len

    @classmethod
    def from_byte(cls, value: int, *, uplink: bool) -> FCtrl:
        if not uplink and value & 0x40:
            raise FrameError("bad_fctrl", "RFU bit 6 set on a downlink")
        bit4 = bool(value & 0x10)
        return cls(
            adr=bool(value & 0x80),
            adr_ack_req=bool(value & 0x40),
            ack=bool(value & 0x20),
            f_pending=bit4 and not uplink,
            class_b=bit4 and uplink,
        )


NO_FLAGS = FCtrl()


@dataclass(frozen=True)
class DataFrame:
    """A data frame as on air: ``fcnt`` is the 16-bit field, ``frm_payload`` still encrypted."""

    mtype: MType
    dev_addr: int
    fcnt: int
    fctrl: FCtrl = NO_FLAGS
    fopts: bytes = b""
    fport: int | None = None
    frm_payload: bytes = b""
    mic: bytes = b""

    @property
    def uplink(self) -> bool:
        return self.mtype in UPLINK_DATA

    @property
    def confirmed(self) -> bool:
        return self.mtype in (MType.CONFIRMED_DATA_UP, MType.CONFIRMED_DATA_DOWN)

    def signed_part(self) -> bytes:
        """MHDR | MACPayload: the octets the MIC covers."""
        if self.mtype not in UPLINK_DATA + DOWNLINK_DATA:
            raise ValueError(f"{self.mtype!r} is not a data frame type")
        if len(self.fopts) > MAX_FOPTS:
            raise ValueError("FOpts holds at most 15 octets")
        if self.fport is None and self.frm_payload:
            raise ValueError("a non-empty FRMPayload needs an FPort (§4.3.2)")
        if self.fport == 0 and self.fopts:
            raise ValueError("MAC commands cannot be in FOpts and FRMPayload at once (§4.3.1.6)")
        fctrl = self.fctrl.to_byte(uplink=self.uplink, fopts_len=len(self.fopts))
        port = b"" if self.fport is None else bytes([self.fport])
        return (
            _mhdr(self.mtype)
            + self.dev_addr.to_bytes(4, "little")
            + bytes([fctrl])
            + self.fcnt.to_bytes(2, "little")
            + self.fopts
            + port
            + self.frm_payload
        )

    def to_bytes(self) -> bytes:
        return self.signed_part() + self.mic

    def payload_key(self, nwk_s_key: bytes, app_s_key: bytes) -> bytes:
        """FPort 0 carries MAC commands under the NwkSKey, other ports use the AppSKey (§4.3.3)."""
        return nwk_s_key if self.fport == 0 else app_s_key

    def mic_valid(self, nwk_s_key: bytes, fcnt: int) -> bool:
        """Check the MIC against the full 32-bit ``fcnt`` reconstructed by the receiver."""
        if fcnt & 0xFFFF != self.fcnt:
            return False
        expected = crypto.data_mic(
            nwk_s_key, uplink=self.uplink, dev_addr=self.dev_addr, fcnt=fcnt, msg=self.signed_part()
        )
        return hmac.compare_digest(expected, self.mic)

    def decrypt(self, nwk_s_key: bytes, app_s_key: bytes, fcnt: int) -> bytes:
        """The plaintext FRMPayload, given the full 32-bit ``fcnt``."""
        return crypto.crypt_frm_payload(
            self.payload_key(nwk_s_key, app_s_key),
            self.frm_payload,
            uplink=self.uplink,
            dev_addr=self.dev_addr,
            fcnt=fcnt,
        )


def build_join_request(app_key: bytes, *, join_eui: int, dev_eui: int, dev_nonce: int) -> bytes:
    """Device side: a signed Join-Request PHYPayload."""
    unsigned = JoinRequest(join_eui, dev_eui, dev_nonce, mic=b"")
    return unsigned.to_bytes() + crypto.cmac_mic(app_key, unsigned.signed_part())


def build_join_accept(app_key: bytes, accept: JoinAccept) -> bytes:
    """Network side: the PHYPayload MHDR | encrypt(fields | MIC) answering a Join-Request."""
    mhdr = _mhdr(MType.JOIN_ACCEPT)
    plaintext = accept.plaintext()
    mic = crypto.cmac_mic(app_key, mhdr + plaintext)
    return mhdr + crypto.encrypt_join_accept(app_key, plaintext + mic)


def _seal(frame: DataFrame, nwk_s_key: bytes, app_s_key: bytes, fcnt: int, payload: bytes) -> bytes:
    """Encrypt ``payload`` into ``frame`` and append the MIC for the full 32-bit ``fcnt``."""
    if not 0 <= fcnt <= 0xFFFFFFFF:
        raise ValueError("FCnt is a 32-bit counter")
    key = frame.payload_key(nwk_s_key, app_s_key)
    args = {"uplink": frame.uplink, "dev_addr": frame.dev_addr, "fcnt": fcnt}
    msg = replace(frame, frm_payload=crypto.crypt_frm_payload(key, payload, **args)).signed_part()
    if len(msg) + MIC_LEN > MAX_PHY_PAYLOAD:
        raise ValueError("frame longer than a LoRa PHY payload")
    return msg + crypto.data_mic(nwk_s_key, msg=msg, **args)


def build_data_uplink(
    nwk_s_key: bytes,
    app_s_key: bytes,
    *,
    dev_addr: int,
    fcnt: int,
    fport: int | None = None,
    payload: bytes = b"",
    confirmed: bool = False,
    fctrl: FCtrl = NO_FLAGS,
    fopts: bytes = b"",
) -> bytes:
    """Device side: an encrypted, signed data uplink; ``fcnt`` is the full 32-bit FCntUp."""
    mtype = MType.CONFIRMED_DATA_UP if confirmed else MType.UNCONFIRMED_DATA_UP
    frame = DataFrame(mtype, dev_addr, fcnt & 0xFFFF, fctrl, fopts, fport)
    return _seal(frame, nwk_s_key, app_s_key, fcnt, payload)


def build_data_downlink(
    nwk_s_key: bytes,
    app_s_key: bytes,
    *,
    dev_addr: int,
    fcnt: int,
    fport: int | None = None,
    payload: bytes = b"",
    confirmed: bool = False,
    fctrl: FCtrl = NO_FLAGS,
    fopts: bytes = b"",
) -> bytes:
    """Network side: an encrypted, signed downlink (an ACK is ``fctrl=FCtrl(ack=True)``).

    ``fcnt`` is the full 32-bit FCntDown.
    """
    mtype = MType.CONFIRMED_DATA_DOWN if confirmed else MType.UNCONFIRMED_DATA_DOWN
    frame = DataFrame(mtype, dev_addr, fcnt & 0xFFFF, fctrl, fopts, fport)
    return _seal(frame, nwk_s_key, app_s_key, fcnt, payload)


def _parse_data(mtype: MType, data: bytes) -> DataFrame:
    if len(data) < MIN_DATA_LEN:
        raise FrameError("too_short", f"{len(data)} octets, a data frame has at least 12")
    body = data[:-MIC_LEN]
    fctrl_byte = body[5]
    uplink = mtype in UPLINK_DATA
    fctrl = FCtrl.from_byte(fctrl_byte, uplink=uplink)
    fopts_end = 8 + (fctrl_byte & 0x0F)
    if fopts_end > len(body):
        raise FrameError("fopts_len", f"FOptsLen {fctrl_byte & 0x0F} exceeds the frame")
    fport = body[fopts_end] if len(body) > fopts_end else None
    if fport == 0 and fopts_end > 8:
        raise FrameError("fopts_with_fport0", "MAC commands in both FOpts and FRMPayload")
    return DataFrame(
        mtype=mtype,
        dev_addr=_le(body, 1, 4),
        fcnt=_le(body, 6, 2),
        fctrl=fctrl,
        fopts=body[8:fopts_end],
        fport=fport,
        frm_payload=body[fopts_end + 1 :],
        mic=data[-MIC_LEN:],
    )


def parse_frame(data: bytes) -> JoinRequest | DataFrame:
    """Parse a Join-Request or a data frame (up or down). MICs are checked by the caller.

    A Join-Accept cannot be parsed without its key: use ``parse_join_accept``.
    """
    mtype = _parse_mhdr(data)
    if mtype in UPLINK_DATA + DOWNLINK_DATA:
        return _parse_data(mtype, data)
    if mtype is not MType.JOIN_REQUEST:
        raise FrameError("bad_mtype", f"{mtype.name} is not handled here")
    if len(data) != JOIN_REQUEST_LEN:
        raise FrameError("bad_length", f"Join-Request of {len(data)} octets, expected 23")
    return JoinRequest(
        join_eui=_le(data, 1, 8), dev_eui=_le(data, 9, 8), dev_nonce=_le(data, 17, 2), mic=data[19:]
    )


def parse_join_accept(data: bytes, app_key: bytes) -> JoinAccept:
    """Device side: decrypt a Join-Accept PHYPayload and check its MIC (§6.2.6)."""
    mtype = _parse_mhdr(data)
    if mtype is not MType.JOIN_ACCEPT:
        raise FrameError("bad_mtype", f"{mtype.name} is not a Join-Accept")
    if len(data) not in JOIN_ACCEPT_LENS:
        raise FrameError("bad_length", f"Join-Accept of {len(data)} octets, expected 17 or 33")
    plain = crypto.decrypt_join_accept(app_key, data[1:])
    fields, mic = plain[:-MIC_LEN], plain[-MIC_LEN:]
    if not hmac.compare_digest(crypto.cmac_mic(app_key, data[:1] + fields), mic):
        raise FrameError("bad_mic", "Join-Accept MIC does not match the AppKey")
    dl_settings, rx_delay = fields[10], fields[11]
    if dl_settings & 0x80:
        raise FrameError("bad_dl_settings", "RFU bit 7 (OptNeg) set on LoRaWAN 1.0")
    if rx_delay & 0xF0:
        raise FrameError("bad_rx_delay", "RFU bits of RxDelay set")
    return JoinAccept(
        join_nonce=_le(fields, 0, 3),
        net_id=_le(fields, 3, 3),
        dev_addr=_le(fields, 6, 4),
        rx1_dr_offset=dl_settings >> 4,
        rx2_dr=dl_settings & 0x0F,
        rx_delay=rx_delay,
        cf_list=fields[12:] or None,
    )


def join_request_mic_valid(request: JoinRequest, app_key: bytes) -> bool:
    """Network side: whether ``request`` was signed with ``app_key`` (§6.2.5)."""
    return hmac.compare_digest(crypto.cmac_mic(app_key, request.signed_part()), request.mic)
