"""The network's side of the MAC layer for one device session (LoRaWAN 1.0.4 §5, RP002 AS923).

``MacState`` is what the network knows of a device's radio settings, kept with the session in the
state file: the channels the device holds, its data rate and power (as ADR set them), its receive
windows, duty cycle and dwell settings, the SNRs of its recent uplinks, its last battery and
margin, and which requests went down in the last frame. ``MacLayer`` reads the commands an uplink
carries and says what goes down next:

- answers at once to the device's own requests: LinkCheckAns (margin over the demodulation floor
  at the best gateway, number of gateways) and DeviceTimeAns (GPS time of the gateway's clock);
- requests wherever the device differs from what the network wants: NewChannelReq for each
  channel of the plan it lacks (an ABP device, or the eighth channel after a CFList),
  RXParamSetupReq / RXTimingSetupReq / DutyCycleReq when the config differs from the device's,
  LinkADRReq for the channel mask and for ADR, and DevStatusReq every ``dev_status_every``
  uplinks. Each of these makes a downlink go even when nothing else would.
- requests that only ride along when a downlink goes anyway, and only when the device can answer
  beside the payload it sends, so they never cost it a frame: TxParamSetupReq (the AS923 dwell
  limits and MaxEIRP the device already defaults to, stated once a session) and the session's
  first DevStatusReq.

A request stands until its answer arrives: the device answers in its next uplink, so an uplink
without the answer means the downlink was lost, and the request goes down again, in a new frame,
up to ``MAX_ATTEMPTS`` frames; then the network stops asking for the rest of the session and
counts ``mac.unanswered``. A refusal (a NACK bit) is counted as ``mac.refused`` and asked again
the same way. Answers the device repeats until it hears a downlink (RXParamSetupAns,
RXTimingSetupAns, DlChannelAns, §5.4/5.7/5.8), and answers to a request the device heard twice,
are taken once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from edge.protocol.airtime import max_payload
from edge.runtime.clock import Clock
from gateway.lorawan import adr, region
from gateway.lorawan import maccommands as mc
from gateway.lorawan.adr import PHY_OVERHEAD
from gateway.lorawan.frames import MAX_FOPTS
from gateway.lorawan.stats import Stats

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 4  # frames that carry one request before the network gives up on it


@dataclass(frozen=True)
class MacSettings:
    """What the network wants every device to use (``lorawan`` in the config)."""

    plan: region.ChannelPlan = field(default_factory=region.ChannelPlan)
    rx1_dr_offset: int = 0
    rx2_dr: int = region.RX2_DR
    rx_delay_s: int = region.RECEIVE_DELAY1_S
    max_duty_cycle: int = 0  # DutyCycleReq MaxDCycle: aggregated 1/2^n, 0 no limit
    adr_margin_db: float = 10.0
    adr_max_dr: int = region.MAX_RX1_DR
    dev_status_every: int = 96  # uplinks between DevStatusReqs; 0: never ask


@dataclass
class MacState:
    """The network's knowledge of one device's radio settings; JSON in the state file."""

    channels: list[int] = field(default_factory=lambda: list(region.DEFAULT_CHANNELS_HZ))
    ch_mask: int = 0b11
    tx_power: int = 0
    rx1_dr_offset: int = 0
    rx2_dr: int = region.RX2_DR
    rx_delay_s: int = region.RECEIVE_DELAY1_S
    max_duty_cycle: int = 0
    tx_params_set: bool = False
    snr: list[float] = field(default_factory=list)  # best SNR of recent uplinks at this power
    uplinks: int = 0
    status_due: bool = False
    battery: int | None = None
    margin_db: int | None = None
    status_at: str | None = None
    pending: list[str] = field(default_factory=list)  # hex of the requests in the last frame
    attempts: dict[str, int] = field(default_factory=dict)  # CID -> frames without an answer

    @classmethod
    def after_join(cls, settings: MacSettings, *, rx1_dr_offset: int, rx2_dr: int) -> MacState:
        """An OTAA device holds the CFList's channels (all enabled) and the Join-Accept's
        receive settings."""
        known = list(settings.plan.frequencies_hz[: 2 + region.CFLIST_CHANNELS])
        return cls(
            channels=known,
            ch_mask=(1 << len(known)) - 1,
            rx1_dr_offset=rx1_dr_offset,
            rx2_dr=rx2_dr,
            rx_delay_s=settings.rx_delay_s,
        )

    def to_json(self) -> str:
        return json.dumps(vars(self), separators=(",", ":"))  # fields are plain JSON values

    @classmethod
    def from_json(cls, text: str) -> MacState:
        """A stored state; an empty one (a session from before MAC commands, or ABP at start)
        is a device on the AS923 defaults."""
        return cls(**json.loads(text)) if text else cls()

    def summary(self, dr: int) -> dict[str, object]:
        """The device's radio state for the gateway's status (``devices``)."""
        return {
            "dr": dr,
            "tx_power_dbm": region.tx_power_dbm(self.tx_power),
            "channels": sum(1 for hz in self.channels if hz),
            "battery": self.battery,
            "margin_db": self.margin_db,
            "status_at": self.status_at,
        }

    def requests(self) -> list[mc.MacCommand]:
        return [mc.parse(bytes.fromhex(h), uplink=False)[0][0] for h in self.pending]

    def holds(self, index: int, frequency_hz: int) -> bool:
        held = self.channels[index] if index < len(self.channels) else 0
        return held == frequency_hz


@dataclass(frozen=True)
class UplinkInfo:
    """What the MAC layer needs of an accepted uplink."""

    dr: int
    best_snr: float | None
    gateways: int
    adr: bool
    phy_size: int


def _answer_room(up: UplinkInfo) -> int:
    """Octets of FOpts the device has beside the payload it sends, at the data rate it uses."""
    limit = max_payload(up.dr, dwell_time=True)
    mac_payload = up.phy_size - PHY_OVERHEAD  # FHDR, FPort and FRMPayload, without FOpts
    return min(MAX_FOPTS, (limit.m if limit else 0) - mac_payload)


class MacLayer:
    """``clock`` gives the time of an uplink being handled (DeviceTimeAns, DevStatusAns)."""

    def __init__(self, settings: MacSettings, stats: Stats, clock: Clock) -> None:
        self.settings = settings
        self.stats = stats
        self.clock = clock

    # -- uplink ---------------------------------------------------------------------------------
    def read(self, data: bytes) -> list[mc.MacCommand]:
        """The commands of an uplink's FOpts or FPort 0 payload; the unreadable rest counted."""
        commands, error = mc.parse(data, uplink=True)
        if error is not None:
            self.stats.reject(f"mac.{error}")
            log.info("mac commands cut short", extra={"fields": {"reason": error}})
        for command in commands:
            self.stats.count(f"mac.up.{type(command).__name__}")
        return commands

    def on_uplink(
        self, state: MacState, commands: list[mc.MacCommand], up: UplinkInfo, device_id: str
    ) -> list[mc.MacCommand]:
        """Apply what the uplink answers, note its SNR; return the answers that go down now."""
        sent = state.requests()
        state.pending = []
        replies: list[mc.MacCommand] = []
        for command in commands:
            if isinstance(command, mc.LinkCheckReq):
                floor = region.required_snr(up.dr)
                margin = 0 if up.best_snr is None else round(up.best_snr - floor)
                replies.append(mc.LinkCheckAns(max(0, min(254, margin)), min(255, up.gateways)))
            elif isinstance(command, mc.DeviceTimeReq):
                replies.append(mc.DeviceTimeAns.at(self.clock.now()))
            else:
                request = next((r for r in sent if r.CID == command.CID), None)
                if request is None:  # repeated (§5.4) or answering a request sent twice: taken once
                    continue
                sent.remove(request)
                self._apply(state, request, command, up, device_id)
        for request in sent:  # not answered: the frame that carried it was lost
            if state.attempts.get(str(request.CID), 0) >= MAX_ATTEMPTS:
                self.stats.reject("mac.unanswered")
                fields = {"device": device_id, "command": type(request).__name__}
                log.warning("mac request not answered, given up", extra={"fields": fields})
        if up.adr and up.best_snr is not None:
            state.snr = [*state.snr, up.best_snr][-adr.HISTORY :]
        state.uplinks += 1
        every = self.settings.dev_status_every
        if every and state.uplinks % every == 0:
            state.status_due = True
        return replies

    def _apply(
        self,
        state: MacState,
        request: mc.MacCommand,
        answer: mc.MacCommand,
        up: UplinkInfo,
        device_id: str,
    ) -> None:
        accepted = getattr(answer, "accepted", True)
        key = str(request.CID)
        if not accepted:
            self.stats.reject("mac.refused")
            fields = {"device": device_id, "command": type(request).__name__}
            log.warning("device refused a mac command", extra={"fields": fields})
            return
        state.attempts.pop(key, None)
        if isinstance(request, mc.LinkADRReq):
            if request.ch_mask_cntl == 0:
                state.ch_mask = request.ch_mask
            if request.tx_power != mc.KEEP:
                state.tx_power = request.tx_power
                state.snr = []  # a new power: the history starts over, as ChirpStack's does
        elif isinstance(request, mc.NewChannelReq):
            while len(state.channels) <= request.ch_index:
                state.channels.append(0)
            state.channels[request.ch_index] = request.frequency_hz
            if request.frequency_hz:
                state.ch_mask |= 1 << request.ch_index
            else:
                state.ch_mask &= ~(1 << request.ch_index)
        elif isinstance(request, mc.RXParamSetupReq):
            state.rx1_dr_offset, state.rx2_dr = request.rx1_dr_offset, request.rx2_dr
        elif isinstance(request, mc.RXTimingSetupReq):
            state.rx_delay_s = request.delay_s
        elif isinstance(request, mc.DutyCycleReq):
            state.max_duty_cycle = request.max_duty_cycle
        elif isinstance(request, mc.TxParamSetupReq):
            state.tx_params_set = True
        elif isinstance(request, mc.DevStatusReq) and isinstance(answer, mc.DevStatusAns):
            state.status_due = False
            state.battery, state.margin_db = answer.battery, answer.margin
            state.status_at = self.clock.now().isoformat(timespec="seconds")
            fields = {"device": device_id, "battery": answer.battery, "margin": answer.margin}
            log.info("device status", extra={"fields": fields})

    # -- downlink -------------------------------------------------------------------------------
    def wanted(self, state: MacState, up: UplinkInfo, *, riding: bool) -> list[mc.MacCommand]:
        """Every request the device should get now, most important first: empty when none
        justifies a downlink of its own, unless a downlink goes anyway (``riding``), which also
        takes the requests that only ride along."""
        s, plan = self.settings, self.settings.plan.frequencies_hz
        wanted: list[mc.MacCommand] = []
        if state.channels != list(plan):  # most uplinks: the device holds the plan already
            for index, hz in enumerate(plan):
                if not state.holds(index, hz):
                    wanted.append(mc.NewChannelReq(index, hz, region.MIN_UPLINK_DR, s.adr_max_dr))
            for index in range(len(plan), len(state.channels)):
                if state.channels[index]:  # a channel the city no longer listens on
                    wanted.append(mc.NewChannelReq(index, 0, 0, 0))
        if (state.rx1_dr_offset, state.rx2_dr) != (s.rx1_dr_offset, s.rx2_dr):
            wanted.append(mc.RXParamSetupReq(s.rx1_dr_offset, s.rx2_dr, region.RX2_FREQUENCY_HZ))
        if state.rx_delay_s != s.rx_delay_s:
            wanted.append(mc.RXTimingSetupReq(s.rx_delay_s))
        if state.max_duty_cycle != s.max_duty_cycle:
            wanted.append(mc.DutyCycleReq(s.max_duty_cycle))
        link = self._link_adr(state, up)
        if link is not None:
            wanted.append(link)
        if state.status_due:
            wanted.append(mc.DevStatusReq())
        wanted = [r for r in wanted if state.attempts.get(str(r.CID), 0) < MAX_ATTEMPTS]
        if not (wanted or riding):
            return []
        # Those that ride along are asked only if the device can answer beside its payload, so
        # they never cost it a frame of its own (at DR2, 2 octets beside a 9-octet reading).
        room = _answer_room(up)
        if not state.tx_params_set and room >= 1 + mc.TxParamSetupAns.SIZE:
            eirp = mc.MAX_EIRP_CODES_DBM.index(region.MAX_EIRP_DBM)
            wanted.insert(0, mc.TxParamSetupReq(True, True, eirp))
            room -= 1 + mc.TxParamSetupAns.SIZE
        first_status = state.status_at is None and not state.status_due
        if first_status and room >= 1 + mc.DevStatusAns.SIZE:
            wanted.append(mc.DevStatusReq())
        return [r for r in wanted if state.attempts.get(str(r.CID), 0) < MAX_ATTEMPTS]

    def _link_adr(self, state: MacState, up: UplinkInfo) -> mc.LinkADRReq | None:
        # Enable only channels the device already holds as the plan has them: a mask naming an
        # undefined channel makes the device refuse the whole LinkADRReq (§5.3).
        plan = self.settings.plan.frequencies_hz
        mask = sum(1 << i for i, hz in enumerate(plan) if state.holds(i, hz))
        if up.adr:
            goal = adr.target(
                state.snr,
                adr.LinkSettings(up.dr, state.tx_power),
                margin_db=self.settings.adr_margin_db,
                max_dr=self.settings.adr_max_dr,
                phy_size=up.phy_size,
                history_full=len(state.snr) >= adr.HISTORY,
            )
            if (goal.dr, goal.tx_power, mask) != (up.dr, state.tx_power, state.ch_mask):
                return mc.LinkADRReq(goal.dr, goal.tx_power, mask, 0, nb_trans=1)
            return None
        if mask != state.ch_mask:
            return mc.LinkADRReq(mc.KEEP, mc.KEEP, mask, 0, nb_trans=0)
        return None

    def choose(self, wanted: list[mc.MacCommand], room: int) -> list[mc.MacCommand]:
        """The requests, in order, that fit ``room`` octets."""
        chosen: list[mc.MacCommand] = []
        for request in wanted:
            if room >= 1 + request.SIZE:
                chosen.append(request)
                room -= 1 + request.SIZE
        return chosen

    def sent(self, state: MacState, commands: list[mc.MacCommand]) -> None:
        """``commands`` went down in a frame: its requests now await their answers."""
        requests = [c for c in commands if c.CID not in (mc.Cid.LINK_CHECK, mc.Cid.DEVICE_TIME)]
        for key in {str(r.CID) for r in requests}:
            state.attempts[key] = state.attempts.get(key, 0) + 1
        state.pending = [r.to_bytes().hex() for r in requests]
        for command in commands:
            self.stats.count(f"mac.down.{type(command).__name__}")
