"""A LoRaWAN 1.0.4 Class A end device as the network sees it: keys, counters and frames.

No radio and no timing: it turns readings into the PHYPayloads a real device would transmit and
checks and decrypts what comes back, so a test (or the RAK3172 modem simulator) can put it behind
a simulated packet forwarder. It uses the gateway's own frame and crypto code, which is tested
against the published vectors; what it adds is the device's bookkeeping (DevNonce, FCntUp,
FCntDown) and the codec. Like a real modem (LoRaWAN 1.0.4 §4.3.1.2), it acknowledges a
confirmed downlink by setting ACK in its next uplink, once, and its firmware's MAC layer
(``device_mac.DeviceMac``, ``device.mac``) takes the CFList at a join, obeys the network's MAC
commands and answers them in the FOpts of its next uplink.

    device = LoRaWANDevice(dev_eui=0x70B3D57ED0000001, app_key=bytes.fromhex("..."))
    rxpk = forwarder.uplink(device.join_request())
    device.accept_join(forwarder.wait_downlink().txpk.data)
    forwarder.uplink(device.message("telemetry", "level", seq, ts, {"level_m": 1.2, "valid": 9}))
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge.protocol.airtime import max_payload
from edge.protocol.codecs import codec
from gateway.lorawan import crypto
from gateway.lorawan import maccommands as mc
from gateway.lorawan.frames import (
    MAX_FOPTS,
    DataFrame,
    FCtrl,
    FrameError,
    JoinAccept,
    MType,
    build_data_uplink,
    build_join_request,
    parse_frame,
    parse_join_accept,
)
from sim.devices.device_mac import DeviceMac


@dataclass(frozen=True)
class Downlink:
    """A downlink the device accepted: ``payload`` decrypted, ``fport`` None for an empty one."""

    fcnt: int
    fport: int | None
    payload: bytes
    ack: bool
    f_pending: bool
    confirmed: bool  # ConfirmedDataDown: the device's next uplink carries ACK
    mac: tuple[mc.MacCommand, ...] = ()  # MAC commands from FOpts or FPort 0


class LoRaWANDevice:
    """OTAA when ``app_key`` is given (call ``join_request``/``accept_join``), ABP when the
    session (``dev_addr``, ``nwk_s_key``, ``app_s_key``) is."""

    def __init__(
        self,
        dev_eui: int,
        *,
        app_key: bytes | None = None,
        join_eui: int = 0,
        dev_addr: int | None = None,
        nwk_s_key: bytes | None = None,
        app_s_key: bytes | None = None,
        codec_name: str = "river-v1",
        mac: DeviceMac | None = None,
    ) -> None:
        self.dev_eui = dev_eui
        self.join_eui = join_eui
        self.app_key = app_key
        self.dev_addr = dev_addr
        self.nwk_s_key = nwk_s_key
        self.app_s_key = app_s_key
        self.codec = codec(codec_name)
        self.dev_nonce = 0  # the next DevNonce; 1.0.4 devices count up from 0 in NVM
        self.fcnt_up = 0  # the next FCntUp
        self.fcnt_down: int | None = None  # the last accepted FCntDown
        self.ack_pending = False  # the last downlink was confirmed: ACK it in the next uplink
        self.last_accept: JoinAccept | None = None
        self.mac = mac or DeviceMac()

    @property
    def joined(self) -> bool:
        return self.nwk_s_key is not None

    # -- join -----------------------------------------------------------------------------------
    def join_request(self) -> bytes:
        """A Join-Request with the next DevNonce (consumed, as a device does when it sends)."""
        if self.app_key is None:
            raise RuntimeError("an ABP device does not join")
        frame = build_join_request(
            self.app_key, join_eui=self.join_eui, dev_eui=self.dev_eui, dev_nonce=self.dev_nonce
        )
        self.dev_nonce += 1
        return frame

    def accept_join(self, phy: bytes) -> JoinAccept:
        """Check and apply a Join-Accept: new DevAddr and session keys, counters back to 0."""
        if self.app_key is None:
            raise RuntimeError("an ABP device does not join")
        accept = parse_join_accept(phy, self.app_key)
        keys = crypto.derive_session_keys(
            self.app_key,
            join_nonce=accept.join_nonce,
            net_id=accept.net_id,
            dev_nonce=self.dev_nonce - 1,
        )
        self.dev_addr, self.nwk_s_key, self.app_s_key = (
            accept.dev_addr,
            keys.nwk_s_key,
            keys.app_s_key,
        )
        self.fcnt_up, self.fcnt_down, self.last_accept = 0, None, accept
        self.ack_pending = False
        self.mac.joined(accept)
        return accept

    # -- uplinks --------------------------------------------------------------------------------
    def fopts_room(self, fport: int | None, payload: bytes) -> int:
        """Octets of FOpts that fit beside ``payload`` at the data rate in use (dwell limit)."""
        limit = max_payload(self.mac.dr, dwell_time=self.mac.uplink_dwell)
        size = limit.m if limit is not None else 0
        beside = 7 + (0 if fport is None else 1 + len(payload))  # FHDR, FPort, FRMPayload
        return max(0, min(MAX_FOPTS, size - beside))

    def owes_more_than_fits(self, fport: int | None, payload: bytes) -> bool:
        """Whether MAC answers are owed that this uplink cannot carry (send ``uplink(None)``
        first, as the modems' stacks do)."""
        return self.mac.owed() > self.fopts_room(fport, payload)

    def uplink(
        self,
        fport: int | None,
        payload: bytes = b"",
        *,
        confirmed: bool = False,
        adr_ack_req: bool = False,
        fopts: bytes | None = None,
    ) -> bytes:
        """The next data uplink (FCntUp consumed); ``fport`` None sends an empty frame. It
        carries ACK if the last downlink was confirmed (acknowledgements are never repeated), the
        ADR bit as the device is set, and the MAC answers it owes in FOpts (``fopts`` sends those
        octets instead, as a faulty device might)."""
        if self.nwk_s_key is None or self.app_s_key is None or self.dev_addr is None:
            raise RuntimeError("not joined: no session")
        adr_ack_req = self.mac.uplink_sent() or adr_ack_req
        frame = build_data_uplink(
            self.nwk_s_key,
            self.app_s_key,
            dev_addr=self.dev_addr,
            fcnt=self.fcnt_up,
            fport=fport,
            payload=payload,
            confirmed=confirmed,
            fctrl=FCtrl(adr=self.mac.adr, ack=self.ack_pending, adr_ack_req=adr_ack_req),
            fopts=fopts
            if fopts is not None
            else b""
            if fport == 0
            else self.mac.fopts(self.fopts_room(fport, payload)),
        )
        self.fcnt_up += 1
        self.ack_pending = False
        return frame

    def message(
        self,
        channel: str,
        type: str,
        seq: int,
        ts: datetime,
        data: dict[str, Any],
        *,
        confirmed: bool = False,
    ) -> bytes:
        """A reading, encoded with the device's codec, as the next uplink."""
        fport, payload = self.codec.encode(channel, type, seq, ts, data)
        return self.uplink(fport, payload, confirmed=confirmed)

    # -- downlinks ------------------------------------------------------------------------------
    def downlink(self, phy: bytes, snr: float = 0.0) -> Downlink:
        """Check a downlink's address, counter and MIC, then decrypt it (raises FrameError) and
        apply its MAC commands; ``snr`` is how well it was heard (DevStatusAns margin)."""
        if self.nwk_s_key is None or self.app_s_key is None:
            raise RuntimeError("not joined: no session")
        frame = parse_frame(phy)
        if not isinstance(frame, DataFrame) or frame.uplink:
            raise FrameError("bad_mtype", "not a data downlink")
        if frame.dev_addr != self.dev_addr:
            raise FrameError("other_device", f"DevAddr {frame.dev_addr:08x}")
        last = self.fcnt_down
        base = 0 if last is None else (last + 1) & ~0xFFFF
        fcnt = base | frame.fcnt
        if last is not None and fcnt <= last:
            fcnt += 0x10000
        expected = crypto.data_mic(
            self.nwk_s_key,
            uplink=False,
            dev_addr=frame.dev_addr,
            fcnt=fcnt,
            msg=frame.signed_part(),
        )
        if not hmac.compare_digest(expected, frame.mic):
            raise FrameError("bad_mic", "downlink MIC or counter does not match")
        self.fcnt_down = fcnt
        self.ack_pending = frame.mtype is MType.CONFIRMED_DATA_DOWN
        payload = frame.decrypt(self.nwk_s_key, self.app_s_key, fcnt) if frame.frm_payload else b""
        commands, _ = mc.parse(payload if frame.fport == 0 else frame.fopts, uplink=False)
        self.mac.downlink(commands, snr)
        fctrl = frame.fctrl
        return Downlink(
            fcnt, frame.fport, payload, fctrl.ack, fctrl.f_pending, frame.confirmed, tuple(commands)
        )

    def command(self, downlink: Downlink) -> tuple[str, dict[str, Any]]:
        """The city command a downlink carries, decoded with the device's codec."""
        if downlink.fport is None:
            raise ValueError("an empty downlink carries no command")
        return self.codec.decode_command(downlink.fport, downlink.payload)
