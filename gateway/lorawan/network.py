"""LoRaWAN 1.0.x network and join server for one city: OTAA and ABP, Class A, AS923-1.

``handle`` takes one deduplicated frame with all its receptions and either accepts it or counts a
rejection by reason (``frame.*``), logging the ones an operator should see. Frame counters follow
ChirpStack: the 32-bit FCnt is rebuilt from the last accepted one, the MIC is checked with it, a
repeat of the last frame is a retransmission (dropped; a confirmed one is acknowledged again, as
its ACK was evidently lost), and an older counter is a replay or a device reset (dropped). State
is written to the session store before anything is sent, so a restart neither forces a re-join
nor reopens a replay window, and a JoinNonce or FCntDown is never issued twice.

City commands go down as ConfirmedDataDown (§4.2.1) and stay at the head of the device's queue
until an uplink carries ACK (§4.3.1.2: the device acknowledges in its next uplink). An uplink
without it means the downlink was missed: the command is sent again in that uplink's RX window,
each time in a new frame with the next FCntDown, up to ``cmd_max_attempts`` frames; then it is
dropped. Either outcome is reported (``report``) in the batch that learnt it.

MAC commands (§5) ride in FOpts or on FPort 0 both ways; ``mac.MacLayer`` decides what they say
(the channel plan, ADR, receive windows, device status, link checks, time). They share the Class A
downlink with the ACK and the city command: answers first, then requests, as many as fit the
window's size under the dwell limit; with no command waiting they go in FOpts, or on FPort 0
(encrypted with the NwkSKey) when more than FOpts' 15 octets wait.

Not implemented, deliberately for a small single-region network: Class B/C, LoRaWAN 1.1, roaming.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Protocol

from edge.protocol import utc_timestamp
from edge.protocol.airtime import max_payload
from edge.runtime.clock import Clock
from gateway.lorawan import maccommands, region
from gateway.lorawan.crypto import derive_session_keys
from gateway.lorawan.dedup import Frame, Reception
from gateway.lorawan.downlink import (
    Downlink,
    RxWindowMode,
    best_reception,
    max_mac_payload,
    schedule,
)
from gateway.lorawan.fcnt import FCNT_MAX, FCntDecision, Verdict, reconstruct_fcnt
from gateway.lorawan.forward import Gateway, Uplink, radio_metadata
from gateway.lorawan.frames import (
    MAX_FOPTS,
    DataFrame,
    FCtrl,
    FrameError,
    JoinAccept,
    JoinRequest,
    build_data_downlink,
    build_join_accept,
    join_request_mic_valid,
    parse_frame,
)
from gateway.lorawan.mac import MacLayer, MacSettings, MacState, UplinkInfo
from gateway.lorawan.registry import Device, Registry
from gateway.lorawan.sessions import QueuedDownlink, Session, SessionStore
from gateway.lorawan.stats import Stats

log = logging.getLogger(__name__)
# (type prefix length, NwkID bits) per NetID type, LoRaWAN Backend Interfaces TS002-1.1.0 §6.1.
DEV_ADDR_LAYOUT = ((1, 6), (2, 6), (3, 9), (4, 11), (5, 12), (6, 13), (7, 15), (8, 17))
FIRST_APP_PORT, LAST_APP_PORT = 1, 223  # 0 is MAC commands, 224 the test port, the rest RFU
MAX_QUEUED_DOWNLINKS = 16
FHDR_LEN = 7  # DevAddr, FCtrl, FCnt: the MACPayload without FOpts, FPort and FRMPayload


@dataclass(frozen=True)
class DevAddrSpace:
    """The DevAddrs a NetID owns: ``prefix`` in the top ``prefix_bits``, any NwkAddr below."""

    prefix: int
    prefix_bits: int

    @classmethod
    def for_net_id(cls, net_id: int) -> DevAddrSpace:
        if not 0 <= net_id <= 0xFFFFFF:
            raise ValueError("a NetID is 24 bits")
        net_type = net_id >> 21
        type_bits, nwk_id_bits = DEV_ADDR_LAYOUT[net_type]
        type_prefix = (1 << type_bits) - 2  # type ones, then a zero
        nwk_id = net_id & ((1 << nwk_id_bits) - 1)
        bits = type_bits + nwk_id_bits
        return cls(type_prefix << nwk_id_bits | nwk_id, bits)

    def __contains__(self, dev_addr: int) -> bool:
        return dev_addr >> (32 - self.prefix_bits) == self.prefix

    def random(self, rng: random.Random) -> int:
        free_bits = 32 - self.prefix_bits
        return self.prefix << free_bits | rng.getrandbits(free_bits)


@dataclass
class NetworkSettings:
    net_id: int = 0
    rx_window: RxWindowMode = "auto"
    tx_power_dbm: int = 13
    max_fcnt_gap: int | None = 16384
    cmd_max_attempts: int = 4
    mac: MacSettings = field(default_factory=MacSettings)


# Told each command's outcome: the device, the command, and whether the device acknowledged it.
CommandReport = Callable[[Device, QueuedDownlink, bool], None]


class Transmitter(Protocol):
    """The packet-forwarder server, as far as the network server needs it."""

    def routable(self, gateway_eui: int) -> bool: ...

    def transmit(self, downlink: Downlink) -> bool: ...


class Rejected(Exception):
    """A frame not accepted: counted as ``frame.{reason}``."""

    def __init__(self, reason: str, level: int = logging.INFO, **fields: object) -> None:
        super().__init__(reason)
        self.reason = reason
        self.level = level
        self.fields = fields


def _nearest_fcnt(last: int | None, received: int) -> int | None:
    """The 32-bit counter with these low bits nearest the last one, for a rejected frame's MIC
    check (which tells a replay of a real frame from a forgery)."""
    if last is None:
        return received
    behind = last - ((last - received) & 0xFFFF)
    ahead = last + ((received - last) & 0xFFFF)
    candidates = [c for c in (behind, ahead) if 0 <= c <= FCNT_MAX]
    return min(candidates, key=lambda c: abs(c - last), default=None)


class NetworkServer:
    """Runs on the event loop; ``forward`` is given each accepted application payload (and
    queues it, with its seq, in the batch's transactions); ``report`` each command delivered or
    given up. Both write to the batch ``output_batch`` opens."""

    def __init__(
        self,
        registry: Registry,
        store: SessionStore,
        settings: NetworkSettings,
        stats: Stats,
        forward: Callable[[Uplink], object],
        report: CommandReport,
        clock: Clock,
    ) -> None:
        self.registry = registry
        self.store = store
        self.settings = settings
        self.stats = stats
        self.forward = forward
        self.report = report
        self.clock = clock
        self.transmitter: Transmitter | None = None
        # What the forward callback writes to: its transaction commits before the state's, so
        # a counter is never advanced past a reading that is not on disk.
        self.output_batch: Callable[[], AbstractContextManager[None]] = nullcontext
        self.dev_addrs = DevAddrSpace.for_net_id(settings.net_id)
        self.mac = MacLayer(settings.mac, stats, clock)
        self._rng = random.Random()
        # What a batch changed, written and then sent once its transaction commits:
        self._dirty: dict[str, Session] = {}
        self._outgoing: list[Downlink] = []
        self._sessions: dict[str, Session] = {}
        self._by_addr: dict[int, list[Session]] = {}
        self._stale = False  # the sessions in memory may be ahead of the state file
        self._load()

    # -- state ----------------------------------------------------------------------------------
    def _load(self) -> None:
        stored = {s.dev_eui: s for s in self.store.sessions()}
        for device in self.registry.devices:
            session = stored.get(device.eui)
            abp = device.abp
            if abp is not None:
                keys = (abp.dev_addr_int, abp.nwk_s_key_bytes, abp.app_s_key_bytes)
                if (
                    session is None
                    or (session.dev_addr, session.nwk_s_key, session.app_s_key) != keys
                ):
                    session = Session(device.eui, *keys, activated_at=self._now())
                    self.store.save_session(session)
                    log.info("abp session provisioned", extra={"fields": {"device": device.id}})
            if session is not None:
                self._activate(session)

    def use_registry(self, registry: Registry) -> list[str]:
        """Adopt a changed registry (a device added, revoked or re-keyed by provisioning). A
        device no longer in it loses its session here and in the state file, so its next frame
        is refused as unknown; a new ABP device gets its session. Returns the ids dropped."""
        gone = {d.eui: d.id for d in self.registry.devices}
        self.registry = registry
        known = {d.eui for d in registry.devices}
        dropped = []
        for dev_eui, session in list(self._sessions.items()):
            if dev_eui not in known:
                self._by_addr[session.dev_addr].remove(session)
                del self._sessions[dev_eui]
                self.store.forget(dev_eui)
                dropped.append(gone.get(dev_eui, dev_eui))
        self._load()
        return dropped

    def _activate(self, session: Session) -> None:
        old = self._sessions.get(session.dev_eui)
        if old is not None:
            self._by_addr[old.dev_addr].remove(old)
        self._sessions[session.dev_eui] = session
        self._by_addr.setdefault(session.dev_addr, []).append(session)

    def session(self, device: Device) -> Session | None:
        return self._sessions.get(device.eui)

    def _now(self) -> str:
        return utc_timestamp(self.clock.now())

    # -- frames ---------------------------------------------------------------------------------
    def handle_batch(self, frames: list[Frame]) -> None:
        """Deduplicated frames whose windows closed together. Never raises: every outcome is
        counted. Their state is committed in one transaction, and only then is anything sent.
        If the transaction fails, the sessions are read again from the state file: the frame
        counters in memory ran ahead of it, and a device sending the frame again must find it
        new (forwarded and acknowledged), not a retransmission acknowledged without its data."""
        try:
            if self._stale:
                self._reload()
            with self.store.transaction(), self.output_batch():
                for phy, receptions in frames:
                    self._handle(phy, receptions)
                self.store.save_counters(self._dirty.values())
        except Exception:  # the state file failed: what is not on disk must not be answered
            self.stats.reject("internal.store")
            log.exception("state file write failed")
            self._outgoing.clear()
            self._stale = True
            try:
                self._reload()
            except Exception:  # still failing: no frame is taken until the file reads again
                log.exception("state file unreadable; sessions reloaded with the next frame")
        finally:
            self._dirty.clear()
        outgoing, self._outgoing = self._outgoing, []
        for downlink in outgoing:  # queued only where the transmitter had a route
            assert self.transmitter is not None
            self.transmitter.transmit(downlink)

    def _reload(self) -> None:
        """Forget the sessions in memory and take them from the state file again."""
        self._sessions.clear()
        self._by_addr.clear()
        self._load()
        self._stale = False

    def handle(self, phy: bytes, receptions: list[Reception]) -> None:
        """One deduplicated frame."""
        self.handle_batch([(phy, receptions)])

    def _handle(self, phy: bytes, receptions: list[Reception]) -> None:
        self.stats.count("frames")
        try:
            frame = parse_frame(phy)
            if isinstance(frame, JoinRequest):
                self._join(frame, receptions)
            elif frame.uplink:
                self._data(frame, phy, receptions)
            else:
                raise Rejected("not_uplink", logging.DEBUG)
        except FrameError as exc:
            self.stats.reject(f"frame.{exc.reason}")
            log.debug("frame rejected", extra={"fields": {"reason": exc.reason}})
        except Rejected as exc:
            self.stats.reject(f"frame.{exc.reason}")
            fields = {"reason": exc.reason, **exc.fields}
            log.log(exc.level, "frame rejected", extra={"fields": fields})
        except Exception:
            self.stats.reject("internal.network")
            log.exception("frame handling failed")

    def _join(self, request: JoinRequest, receptions: list[Reception]) -> None:
        dev_eui = f"{request.dev_eui:016x}"
        device = self.registry.by_eui.get(request.dev_eui)
        if device is None or device.otaa is None:
            raise Rejected("unknown_device", dev_eui=dev_eui)
        otaa = device.otaa
        if request.join_eui != otaa.join_eui_int:
            raise Rejected("join_eui_mismatch", logging.WARNING, device=device.id)
        if not join_request_mic_valid(request, otaa.app_key_bytes):
            raise Rejected("bad_mic", logging.WARNING, device=device.id, type="join_request")
        if self.store.dev_nonce_used(device.eui, request.dev_nonce):
            raise Rejected(
                "dev_nonce_reused", logging.WARNING, device=device.id, dev_nonce=request.dev_nonce
            )
        reception = self._route(receptions)
        if reception is None:  # nothing could carry the Join-Accept: consume no nonce
            raise Rejected("no_downlink_route", logging.WARNING, device=device.id)
        join_nonce = self.store.take_join_nonce(device.eui)
        dev_addr = self._free_dev_addr()
        keys = derive_session_keys(
            otaa.app_key_bytes,
            join_nonce=join_nonce,
            net_id=self.settings.net_id,
            dev_nonce=request.dev_nonce,
        )
        m = self.settings.mac
        state = MacState.after_join(m, rx1_dr_offset=m.rx1_dr_offset, rx2_dr=m.rx2_dr)
        session = Session(
            device.eui, dev_addr, keys.nwk_s_key, keys.app_s_key, None, 0, self._now(), state
        )
        self.store.save_session(session, dev_nonce=request.dev_nonce)
        self._activate(session)
        accept = JoinAccept(
            join_nonce=join_nonce,
            net_id=self.settings.net_id,
            dev_addr=dev_addr,
            rx1_dr_offset=m.rx1_dr_offset,
            rx2_dr=m.rx2_dr,
            rx_delay=m.rx_delay_s,
            cf_list=m.plan.cf_list(),
        )
        self._send(build_join_accept(otaa.app_key_bytes, accept), reception, None)
        self.stats.count("joins")
        fields = {"device": device.id, "dev_eui": device.eui, "dev_addr": f"{dev_addr:08x}"}
        log.info("device joined", extra={"fields": fields})

    def _free_dev_addr(self) -> int:
        while True:
            dev_addr = self.dev_addrs.random(self._rng)
            if dev_addr not in self._by_addr or not self._by_addr[dev_addr]:
                return dev_addr

    def _data(self, frame: DataFrame, phy: bytes, receptions: list[Reception]) -> None:
        session, decision = self._authenticate(frame)
        device = self.registry.by_eui[int(session.dev_eui, 16)]
        fields = {"device": device.id, "fcnt": frame.fcnt, "last_fcnt": session.fcnt_up}
        if decision.verdict is Verdict.REJECT:
            raise Rejected(decision.reason or "fcnt", logging.WARNING, **fields)
        if decision.verdict is Verdict.RETRANSMISSION:
            if frame.confirmed:  # its ACK was lost: acknowledge again, forward nothing
                # The device missed the downlink that answered the first copy, and this copy's
                # ACK bit predates that downlink: a pending command counts as not received.
                queued = self._settle(device, session, acked=False)
                self._answer(device, session, receptions, queued, ack=True, adr_ack_req=False)
            raise Rejected("fcnt_retransmission", **fields)
        fcnt = decision.fcnt
        assert fcnt is not None
        up = self._uplink_info(frame, phy, receptions)
        commands = self._mac_commands(session, frame, fcnt)
        replies = self.mac.on_uplink(session.mac, commands, up, device.id)
        self.stats.device(device.id, session.mac.summary(up.dr))
        self._deliver(device, session, frame, fcnt, phy, receptions)
        session.fcnt_up = fcnt
        self._dirty[session.dev_eui] = session
        self.stats.count("uplinks")
        queued = self._settle(device, session, acked=frame.fctrl.ack)
        self._answer(
            device,
            session,
            receptions,
            queued,
            ack=frame.confirmed,
            adr_ack_req=frame.fctrl.adr_ack_req,
            mac=(replies, up),
        )

    def _uplink_info(self, frame: DataFrame, phy: bytes, receptions: list[Reception]) -> UplinkInfo:
        snrs = [r.rxpk.lsnr for r in receptions if r.rxpk.lsnr is not None]
        return UplinkInfo(
            dr=region.dr_from_datr(str(receptions[0].rxpk.datr)),
            best_snr=max(snrs, default=None),
            gateways=len(receptions),
            adr=frame.fctrl.adr,
            phy_size=len(phy) - len(frame.fopts),  # the payload in use, without MAC answers
        )

    def _mac_commands(
        self, session: Session, frame: DataFrame, fcnt: int
    ) -> list[maccommands.MacCommand]:
        """What the device says to the network: FOpts, or the FRMPayload of FPort 0."""
        if frame.fport == 0:
            return self.mac.read(frame.decrypt(session.nwk_s_key, session.app_s_key, fcnt))
        return self.mac.read(frame.fopts) if frame.fopts else []

    def _authenticate(self, frame: DataFrame) -> tuple[Session, FCntDecision]:
        """The session whose key signed ``frame``, and the frame-counter decision for it."""
        candidates = self._by_addr.get(frame.dev_addr)
        if not candidates:  # often another network's device within range
            raise Rejected("unknown_dev_addr", logging.DEBUG, dev_addr=f"{frame.dev_addr:08x}")
        for session in candidates:
            decision = reconstruct_fcnt(
                session.fcnt_up, frame.fcnt, max_gap=self.settings.max_fcnt_gap
            )
            full = (
                decision.fcnt
                if decision.fcnt is not None
                else _nearest_fcnt(session.fcnt_up, frame.fcnt)
            )
            if full is not None and frame.mic_valid(session.nwk_s_key, full):
                return session, decision
        raise Rejected("bad_mic", logging.WARNING, dev_addr=f"{frame.dev_addr:08x}")

    def _deliver(
        self,
        device: Device,
        session: Session,
        frame: DataFrame,
        fcnt: int,
        phy: bytes,
        receptions: list[Reception],
    ) -> None:
        if frame.fport is None or not FIRST_APP_PORT <= frame.fport <= LAST_APP_PORT:
            self.stats.count("uplinks.no_application_payload")
            return
        rxpk = receptions[0].rxpk
        datr = str(rxpk.datr)
        radio = radio_metadata(
            [Gateway(f"{r.gateway_eui:016x}", r.rxpk.rssi, r.rxpk.lsnr) for r in receptions],
            frequency_hz=rxpk.frequency_hz,
            dr=region.dr_from_datr(datr),
            datr=datr,
            phy_size=len(phy),
            fcnt=fcnt,
        )
        payload = frame.decrypt(session.nwk_s_key, session.app_s_key, fcnt)
        self.forward(Uplink(device, frame.fport, payload, radio))

    # -- downlinks ------------------------------------------------------------------------------
    def _route(self, receptions: list[Reception]) -> Reception | None:
        routable = self.transmitter.routable if self.transmitter else lambda _eui: False
        return best_reception(receptions, routable)

    def _send(self, phy: bytes, reception: Reception, state: MacState | None) -> None:
        """Schedule ``phy`` for the receive windows of a device with MAC ``state``, or those of
        a Join-Accept when None."""
        s = self.settings
        windows = {}
        if state is not None:
            windows = {
                "rx1_dr_offset": state.rx1_dr_offset,
                "rx2_dr": state.rx2_dr,
                "delay1_s": state.rx_delay_s,
            }
        downlink = schedule(
            phy,
            reception,
            join=state is None,
            mode=s.rx_window,
            power_dbm=s.tx_power_dbm,
            plan=s.mac.plan,
            **windows,
        )
        self._outgoing.append(downlink)

    def _settle(self, device: Device, session: Session, *, acked: bool) -> list[QueuedDownlink]:
        """Resolve the command awaiting an ACK after an uplink; return the device's queue as it
        then stands. ACK=1 delivers it; ACK=0 means its last frame was missed, so it is sent
        again, unless ``cmd_max_attempts`` frames have carried it already."""
        queued = self.store.queued(session.dev_eui)
        if not queued or queued[0].attempts == 0:
            return queued  # nothing awaits an ACK (an ACK=1 here answers nothing of ours)
        head = queued[0]
        if not acked and head.attempts < self.settings.cmd_max_attempts:
            return queued
        self.store.dequeue(head)
        self.report(device, head, acked)
        fields = {
            "device": device.id,
            "command": head.command,
            "command_seq": head.command_seq,
            "attempts": head.attempts,
        }
        if acked:
            self.stats.count("cmd.delivered")
            log.info("command delivered", extra={"fields": fields})
        else:
            self.stats.reject("cmd.unacknowledged")
            log.warning("command not acknowledged, given up", extra={"fields": fields})
        return queued[1:]

    def _answer(
        self,
        device: Device,
        session: Session,
        receptions: list[Reception],
        queued: list[QueuedDownlink],
        *,
        ack: bool,
        adr_ack_req: bool,
        mac: tuple[list[maccommands.MacCommand], UplinkInfo] | None = None,
    ) -> None:
        """The Class A downlink after an uplink: an ACK, the next queued command, MAC answers and
        requests, or an empty frame when the device asks for any downlink (ADRACKReq), in one
        frame. A command goes as ConfirmedDataDown, and its attempt is counted with the FCntDown
        it uses."""
        item = queued[0] if queued else None
        going = ack or item is not None or adr_ack_req
        commands = self._fit(session, mac, item, going=going)
        if not (going or commands):
            return
        reception = self._route(receptions)
        if reception is None:
            self.stats.reject("downlink.no_route")
            log.warning("no forwarder to answer through", extra={"fields": {"ack": ack}})
            return
        self.mac.sent(session.mac, commands)
        mac_bytes = maccommands.encode(commands)
        on_port0 = item is None and len(mac_bytes) > MAX_FOPTS
        fcnt_down = session.fcnt_down
        session.fcnt_down += 1
        self._dirty[session.dev_eui] = session
        phy = build_data_downlink(
            session.nwk_s_key,
            session.app_s_key,
            dev_addr=session.dev_addr,
            fcnt=fcnt_down,
            fport=item.fport if item else (0 if on_port0 else None),
            payload=item.payload if item else (mac_bytes if on_port0 else b""),
            confirmed=item is not None,
            fctrl=FCtrl(ack=ack, f_pending=len(queued) > 1),
            fopts=b"" if on_port0 else mac_bytes,
        )
        if item is not None:
            item = self.store.count_attempt(item)
            self.stats.count("cmd.sent")
            fields = {
                "device": device.id,
                "command": item.command,
                "attempt": item.attempts,
                "fcnt_down": fcnt_down,
            }
            log.info("command sent", extra={"fields": fields})
        self._send(phy, reception, session.mac)

    def _fit(
        self,
        session: Session,
        mac: tuple[list[maccommands.MacCommand], UplinkInfo] | None,
        item: QueuedDownlink | None,
        *,
        going: bool,
    ) -> list[maccommands.MacCommand]:
        """The MAC commands this frame carries: answers, then requests, within what both receive
        windows carry beside the command (FOpts at most 15 octets when a command rides along).
        Empty when nothing justifies a downlink and none goes anyway (``going``)."""
        if mac is None:
            return []
        replies, up = mac
        state = session.mac
        wanted = self.mac.wanted(state, up, riding=going or bool(replies))
        if not (replies or wanted):
            return []
        size = max_mac_payload(
            up.dr,
            rx1_dr_offset=state.rx1_dr_offset,
            rx2_dr=state.rx2_dr,
            mode=self.settings.rx_window,
        )
        room = size - FHDR_LEN - (1 + len(item.payload) if item else 1)
        if item is not None:
            room = min(room, MAX_FOPTS)
        chosen: list[maccommands.MacCommand] = []
        for reply in replies:
            if len(reply.to_bytes()) <= room:
                chosen.append(reply)
                room -= len(reply.to_bytes())
        return chosen + self.mac.choose(wanted, room)

    def enqueue(
        self,
        device: Device,
        fport: int,
        payload: bytes,
        *,
        command: str = "",
        command_seq: int | None = None,
    ) -> None:
        """Queue a city command (``command`` and ``command_seq``: its envelope's type and seq,
        for the report) for the device's next uplink."""
        if not FIRST_APP_PORT <= fport <= LAST_APP_PORT:
            raise ValueError(f"fPort {fport} is not an application port")
        limit = max_payload(region.RX2_DR, dwell_time=True).n  # RX2: the smallest window
        if len(payload) > limit:
            raise ValueError(f"{len(payload)} bytes exceed the {limit} that fit DR2 with dwell")
        if len(self.store.queued(device.eui)) >= MAX_QUEUED_DOWNLINKS:
            raise OverflowError(f"{MAX_QUEUED_DOWNLINKS} downlinks already queued")
        self.store.enqueue(device.eui, fport, payload, command=command, command_seq=command_seq)
