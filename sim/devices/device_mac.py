"""The end device's side of the LoRaWAN 1.0.4 MAC layer, as a modem's firmware runs it.

The RAK3172 and LoRa-E5 handle MAC commands themselves (LoRaMac-node inside): they take the
CFList's channels at a join, obey LinkADRReq, NewChannelReq, RXParamSetupReq, RXTimingSetupReq,
DutyCycleReq, TxParamSetupReq and DlChannelReq, answer DevStatusReq, and put their answers in the
FOpts of the next uplink. This is that logic for the simulated devices, so end-to-end tests see
what a real device would do:

- RXParamSetupAns, RXTimingSetupAns and DlChannelAns are repeated in every uplink until a downlink
  is received (§5.4, §5.7, §5.8); every other answer goes once;
- a contiguous block of LinkADRReq is applied as one (channel masks in order, the rest from the
  last) or not at all, and each gets the same answer (§5.3); DataRate or TXPower 15 keeps the
  value;
- with ADR on, ADR_ACK_CNT counts uplinks without a downlink: from ADR_ACK_LIMIT the device sets
  ADRACKReq, and every ADR_ACK_DELAY after it first restores full power, then steps the data rate
  down, never below DR2 while the dwell limit applies (§4.3.1.1, RP002 AS923);
- answers go in FOpts only as far as they fit beside the payload at the data rate in use under
  the 400 ms dwell limit; what does not fit is sent first in a frame of its own (FOpts, no FPort),
  as LoRaMac-node based stacks flush pending MAC answers with an empty uplink;
- uplinks go on a random enabled channel; Join-Requests on the two default channels.
"""

from __future__ import annotations

import random

from gateway.lorawan import maccommands as mc
from gateway.lorawan import region
from gateway.lorawan.frames import MAX_FOPTS, JoinAccept

ADR_ACK_LIMIT = 64
ADR_ACK_DELAY = 32
CHANNEL_SLOTS = 16
_OWN = (mc.Cid.LINK_CHECK, mc.Cid.DEVICE_TIME)  # what the device asks, not answers


class DeviceMac:
    """One device's MAC settings and the answers it owes the network."""

    def __init__(self, *, dr: int = 2, adr: bool = False, battery: int = 254) -> None:
        self.dr = dr
        self.adr = adr
        self.battery = battery  # DevStatusAns: 0 external power, 1..254 level, 255 unknown
        self.requests: list[mc.MacCommand] = []  # the device's own: LinkCheckReq, DeviceTimeReq
        self.link_check: mc.LinkCheckAns | None = None
        self.device_time: mc.DeviceTimeAns | None = None
        self.reset()

    def reset(self) -> None:
        """The regional defaults, as after a join or a power cycle of an ABP device."""
        self.channels = [*region.DEFAULT_CHANNELS_HZ] + [0] * (CHANNEL_SLOTS - 2)
        self.ch_mask = 0b11
        self.tx_power = 0
        self.nb_trans = 1
        self.rx1_dr_offset, self.rx2_dr, self.rx2_hz = 0, region.RX2_DR, region.RX2_FREQUENCY_HZ
        self.rx_delay_s = region.RECEIVE_DELAY1_S
        self.max_duty_cycle = 0
        self.uplink_dwell = self.downlink_dwell = True
        self.max_eirp_dbm = region.MAX_EIRP_DBM
        self.answers: list[mc.MacCommand] = []
        self.sticky: list[mc.MacCommand] = []
        self.adr_ack_cnt = 0

    def joined(self, accept: JoinAccept) -> None:
        """A session starts: defaults, then the Join-Accept's receive settings and CFList."""
        self.reset()
        self.rx1_dr_offset, self.rx2_dr = accept.rx1_dr_offset, accept.rx2_dr
        self.rx_delay_s = accept.rx1_delay_s
        if accept.cf_list is not None:
            for offset, hz in enumerate(region.parse_cf_list(accept.cf_list)):
                if hz:
                    self.channels[2 + offset] = hz
                    self.ch_mask |= 1 << (2 + offset)

    # -- uplink ---------------------------------------------------------------------------------
    def frequency(self, rng: random.Random, *, join: bool = False) -> int:
        """The channel of the next transmission: a random enabled one."""
        if join:
            return rng.choice(region.DEFAULT_CHANNELS_HZ)
        enabled = [hz for i, hz in enumerate(self.channels) if hz and self.ch_mask >> i & 1]
        return rng.choice(enabled)

    def owed(self) -> int:
        """Octets of MAC commands the next uplink should carry."""
        return sum(1 + c.SIZE for c in [*self.answers, *self.sticky, *self.requests])

    def fopts(self, room: int) -> bytes:
        """The next uplink's FOpts within ``room`` octets: owed answers, the repeated ones, own
        requests, in that order; what does not fit waits for the next uplink."""
        out = b""
        left: list[mc.MacCommand] = []
        for command in [*self.answers, *self.sticky, *self.requests]:
            if len(out) + 1 + command.SIZE <= min(room, MAX_FOPTS):
                out += command.to_bytes()
            elif command not in self.sticky:
                left.append(command)
        self.answers = [c for c in left if c.UPLINK and c.CID not in _OWN]
        self.requests = [c for c in left if c.CID in _OWN]
        return out

    def uplink_sent(self) -> bool:
        """Count an uplink for the ADR backoff; True when it must carry ADRACKReq."""
        if not self.adr:
            return False
        self.adr_ack_cnt += 1
        past = self.adr_ack_cnt - ADR_ACK_LIMIT
        if past >= ADR_ACK_DELAY and past % ADR_ACK_DELAY == 0:
            if self.tx_power > 0:
                self.tx_power = 0
            elif self.dr > region.DWELL_MIN_DR:
                self.dr -= 1
            else:
                self.ch_mask |= 0b11
        return self.adr_ack_cnt >= ADR_ACK_LIMIT

    # -- downlink -------------------------------------------------------------------------------
    def downlink(self, commands: list[mc.MacCommand], snr: float) -> None:
        """A downlink was received: the repeated answers stop, its commands are applied."""
        self.sticky = []
        self.adr_ack_cnt = 0
        index = 0
        while index < len(commands):
            command = commands[index]
            if isinstance(command, mc.LinkADRReq):
                block = [command]
                while index + len(block) < len(commands) and isinstance(
                    commands[index + len(block)], mc.LinkADRReq
                ):
                    block.append(commands[index + len(block)])  # type: ignore[arg-type]
                answer = self._link_adr(block)
                self.answers += [answer] * len(block)
                index += len(block)
                continue
            self._apply(command, snr)
            index += 1

    def _apply(self, command: mc.MacCommand, snr: float) -> None:
        if isinstance(command, mc.LinkCheckAns):
            self.link_check = command
        elif isinstance(command, mc.DeviceTimeAns):
            self.device_time = command
        elif isinstance(command, mc.DevStatusReq):
            margin = max(-32, min(31, round(snr)))
            self.answers.append(mc.DevStatusAns(self.battery, margin))
        elif isinstance(command, mc.DutyCycleReq):
            self.max_duty_cycle = command.max_duty_cycle
            self.answers.append(mc.DutyCycleAns())
        elif isinstance(command, mc.TxParamSetupReq):
            self.uplink_dwell, self.downlink_dwell = command.uplink_dwell, command.downlink_dwell
            self.max_eirp_dbm = command.max_eirp_dbm
            self.answers.append(mc.TxParamSetupAns())
        elif isinstance(command, mc.RXTimingSetupReq):
            self.rx_delay_s = command.delay_s
            self.sticky.append(mc.RXTimingSetupAns())
        elif isinstance(command, mc.RXParamSetupReq):
            answer = mc.RXParamSetupAns(
                rx1_dr_offset_ack=command.rx1_dr_offset <= 7,
                rx2_dr_ack=self._dr_ok(command.rx2_dr),
                channel_ack=_in_band(command.frequency_hz),
            )
            if answer.accepted:
                self.rx1_dr_offset, self.rx2_dr = command.rx1_dr_offset, command.rx2_dr
                self.rx2_hz = command.frequency_hz
            self.sticky.append(answer)
        elif isinstance(command, mc.NewChannelReq):
            self.answers.append(self._new_channel(command))
        elif isinstance(command, mc.DlChannelReq):
            defined = command.ch_index < CHANNEL_SLOTS and bool(self.channels[command.ch_index])
            self.sticky.append(mc.DlChannelAns(defined, _in_band(command.frequency_hz)))

    def _dr_ok(self, dr: int) -> bool:
        low = region.DWELL_MIN_DR if self.uplink_dwell else region.MIN_UPLINK_DR
        return low <= dr <= region.MAX_UPLINK_DR

    def _new_channel(self, command: mc.NewChannelReq) -> mc.NewChannelAns:
        index, hz = command.ch_index, command.frequency_hz
        frequency_ok = 2 <= index < CHANNEL_SLOTS and (hz == 0 or _in_band(hz))
        dr_ok = command.min_dr <= command.max_dr <= region.MAX_UPLINK_DR
        answer = mc.NewChannelAns(dr_ok, frequency_ok)
        if answer.accepted:
            self.channels[index] = hz
            if hz:
                self.ch_mask |= 1 << index
            else:
                self.ch_mask &= ~(1 << index)
        return answer

    def _link_adr(self, block: list[mc.LinkADRReq]) -> mc.LinkADRAns:
        mask = self.ch_mask
        mask_ok = True
        for request in block:
            if request.ch_mask_cntl == 0:
                mask = request.ch_mask
            elif request.ch_mask_cntl == 6:  # AS923: every defined channel on
                mask = sum(1 << i for i, hz in enumerate(self.channels) if hz)
            else:
                mask_ok = False
        defined = sum(1 << i for i, hz in enumerate(self.channels) if hz)
        mask_ok = mask_ok and mask != 0 and mask & ~defined == 0
        last = block[-1]
        dr_ok = last.dr == mc.KEEP or self._dr_ok(last.dr)
        power_ok = last.tx_power == mc.KEEP or last.tx_power <= region.MAX_TX_POWER_INDEX
        answer = mc.LinkADRAns(power_ok, dr_ok, mask_ok)
        if answer.accepted:
            self.ch_mask = mask
            if last.dr != mc.KEEP:
                self.dr = last.dr
            if last.tx_power != mc.KEEP:
                self.tx_power = last.tx_power
            if last.nb_trans:
                self.nb_trans = last.nb_trans
        return answer


def _in_band(hz: int) -> bool:
    return region.BAND_HZ[0] <= hz <= region.BAND_HZ[1]
