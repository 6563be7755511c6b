"""The network's MAC layer without sockets: the octets it sends and reads (LoRaWAN 1.0.4 §5), the
channel plan (CFList, NewChannelReq), ADR, device status, and what happens when answers are lost.

The device is the simulated end device, whose MAC layer acts as the modems' firmware does; each
test also checks the octets on the air where the spec fixes them.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from gateway_rig import GW2_EUI, GW_EUI, TMST, abp_device, level, otaa_device

from gateway.lorawan import maccommands as mc
from gateway.lorawan import region
from gateway.lorawan.frames import DataFrame, parse_frame
from gateway.lorawan.mac import MAX_ATTEMPTS, MacSettings

CITY = region.ChannelPlan.with_extra([922.0, 922.2, 922.4, 922.6, 922.8, 923.0])


def frame_of(phy) -> DataFrame:
    frame = parse_frame(phy)
    assert isinstance(frame, DataFrame)
    return frame


def settle(n, device, seq, *, snr=7.5, freq=923.4, datr="SF10BW125", **uplink):
    """One reading; the device hears (and obeys) the downlink it gets, if any, and returns it.
    MAC answers that do not fit beside the reading go first in a frame of their own."""
    if device.owes_more_than_fits(1, bytes(9)):
        n.hear(device.uplink(None), (GW_EUI, -80, snr), freq=freq, datr=datr)
    before = len(n.radio.sent)
    n.hear(level(device, seq, **uplink), (GW_EUI, -80, snr), freq=freq, datr=datr)
    if len(n.radio.sent) == before:
        return None
    return device.downlink(n.last_downlink(), snr)


def test_link_check_in_fopts_is_answered_with_margin_and_gateway_count(net, keys):
    n = net()
    device = abp_device(keys)
    device.mac.requests.append(mc.LinkCheckReq())
    phy = level(device, 0)
    assert frame_of(phy).fopts == b"\x02"  # LinkCheckReq in FOpts, FOptsLen 1
    n.hear(phy, (GW_EUI, -101, -3.5), (GW2_EUI, -88, 6.0))
    down = frame_of(n.last_downlink())
    # best SNR 6.0 dB at SF10, whose floor is -15 dB: a 21 dB margin, heard by 2 gateways
    assert down.fopts[:3] == bytes([0x02, 21, 2])
    device.downlink(n.last_downlink())
    assert device.mac.link_check == mc.LinkCheckAns(21, 2)
    assert len(n.forwarded) == 1  # the reading beside it went on


def test_mac_commands_on_fport_0_are_read_with_the_nwkskey_and_answered(net, keys):
    n = net()
    device = abp_device(keys)
    phy = device.uplink(0, bytes([0x02, 0x0D]))  # LinkCheckReq and DeviceTimeReq, encrypted
    assert b"\x02\x0d" not in phy[8:]
    n.hear(phy)
    reply = device.downlink(n.last_downlink())
    kinds = [type(c) for c in reply.mac]
    assert kinds[:2] == [mc.LinkCheckAns, mc.DeviceTimeAns]
    sent = device.mac.device_time.utc
    assert abs((sent - datetime.now(UTC)).total_seconds()) < 2
    assert n.forwarded == [] and n.stats.value("uplinks.no_application_payload") == 1


def test_join_accept_carries_the_city_channels_and_the_eighth_follows_by_new_channel_req(net, keys):
    n = net(mac=MacSettings(plan=CITY))
    device = otaa_device(keys)
    n.hear(device.join_request())
    accept = device.accept_join(n.radio.sent[0].first.data)
    assert accept.cf_list == CITY.cf_list()
    # 922.0 .. 922.8 MHz in 100 Hz units, 24-bit little-endian, then CFListType 0
    assert accept.cf_list.hex() == "a0af8c70b78c40bf8c10c78ce0ce8c00"
    assert [hz for hz in device.mac.channels if hz] == list(CITY.frequencies_hz[:7])
    down = settle(n, device, 0)  # the first uplink: channel 7 (923.0 MHz) is still missing
    assert mc.NewChannelReq(7, 923_000_000, 0, 5) in down.mac
    # TxParamSetupReq (dwell both ways, 16 dBm), NewChannelReq 7 @ 923.0 MHz DR0..5
    assert frame_of(n.last_downlink()).fopts.startswith(bytes.fromhex("09350707b0d68c50"))
    assert mc.DevStatusReq() not in down.mac  # its answer would not fit beside the reading
    settle(n, device, 1)  # NewChannelAns, TxParamSetupAns go up
    state = n.server.session(n.server.registry.by_eui[device.dev_eui]).mac
    assert state.channels == list(CITY.frequencies_hz) and state.ch_mask == 0xFF
    assert device.mac.channels[:8] == list(CITY.frequencies_hz) and device.mac.ch_mask == 0xFF
    assert state.tx_params_set and state.battery is None
    assert settle(n, device, 2) is None  # nothing more to say: no downlink


@pytest.mark.parametrize(
    ("datr", "frames", "fport"),
    [
        # DR2 under the dwell limit carries 19 octets of MACPayload, 11 of them MAC commands:
        # one NewChannelReq a frame, in FOpts
        ("SF10BW125", 6, None),
        # DR5 in RX1 (no RX2 fallback) carries 250: all at once, more than FOpts' 15: FPort 0
        ("SF7BW125", 1, 0),
    ],
)
def test_abp_device_gets_the_plan_by_new_channel_req(net, keys, datr, frames, fport):
    n = net(mac=MacSettings(plan=CITY), rx_window="rx1")
    device = abp_device(keys)
    downs = [settle(n, device, seq, datr=datr) for seq in range(frames + 3)]
    sent = [d for d in downs if d is not None]
    assert len(sent) == frames and {d.fport for d in sent} == {fport}
    channels = [c for d in sent for c in d.mac if isinstance(c, mc.NewChannelReq)]
    assert [c.ch_index for c in channels] == [2, 3, 4, 5, 6, 7]
    assert device.mac.channels[:8] == list(CITY.frequencies_hz) and device.mac.ch_mask == 0xFF
    state = n.server.session(n.server.registry.by_eui[device.dev_eui]).mac
    assert state.channels == list(CITY.frequencies_hz) and state.ch_mask == 0xFF
    assert n.rejected == {}


def test_a_request_whose_answer_never_comes_is_sent_again_then_given_up(net, keys):
    n = net(mac=MacSettings(plan=region.ChannelPlan.with_extra([922.0])))
    device = abp_device(keys)
    for seq in range(MAX_ATTEMPTS):
        n.hear(level(device, seq))  # the device hears none of the downlinks
        frame = frame_of(n.radio.sent[-1].first.data)
        assert frame.fcnt == seq  # a new frame each time
    n.hear(level(device, MAX_ATTEMPTS))
    assert len(n.radio.sent) == MAX_ATTEMPTS  # given up: no fifth frame
    # NewChannelReq, and the TxParamSetupReq that rode with it (a DevStatusAns would not fit
    # beside the reading at DR2, so no DevStatusReq rides along)
    assert n.rejected == {"mac.unanswered": 2}


def test_sticky_answers_are_repeated_until_a_downlink_and_taken_once(net, keys):
    n = net(mac=MacSettings(rx1_dr_offset=1, rx2_dr=3, rx_delay_s=2))
    device = abp_device(keys)
    down = settle(n, device, 0)
    assert mc.RXParamSetupReq(1, 3, 923_200_000) in down.mac
    assert mc.RXTimingSetupReq(2) in down.mac
    first = device.uplink(None)  # the answers, in a frame of their own (no FPort)
    assert bytes.fromhex("0507") in frame_of(first).fopts and b"\x08" in frame_of(first).fopts
    n.hear(first, tmst=TMST)
    state = n.server.session(n.server.registry.by_eui[device.dev_eui]).mac
    assert (state.rx1_dr_offset, state.rx2_dr, state.rx_delay_s) == (1, 3, 2)
    n.command(device, 60, seq=1)
    again = device.uplink(None)  # no downlink heard yet: the answers go up again
    assert bytes.fromhex("0507") in frame_of(again).fopts and b"\x08" in frame_of(again).fopts
    n.hear(again, tmst=TMST)
    downlink = n.radio.sent[-1]
    assert (downlink.first.tmst - TMST) % 2**32 == 2_000_000  # RX1 after the new delay
    assert downlink.first.datr == "SF10BW125"  # DR2 - RX1DROffset 1, floored at DR2 (dwell)
    assert (downlink.fallback.datr, downlink.fallback.freq) == ("SF9BW125", 923.2)  # RX2 DR3
    device.downlink(downlink.first.data)
    after, _ = mc.parse(frame_of(device.uplink(None)).fopts, uplink=True)
    assert not [c for c in after if c.CID in (mc.Cid.RX_PARAM_SETUP, mc.Cid.RX_TIMING_SETUP)]
    assert n.rejected == {}


def test_duty_cycle_and_dev_status_on_schedule(net, keys):
    n = net(mac=MacSettings(max_duty_cycle=7, dev_status_every=4))
    device = abp_device(keys)
    device.mac.battery = 0  # on external power
    first = settle(n, device, 0, snr=-3.4)
    assert mc.DutyCycleReq(7) in first.mac and device.mac.max_duty_cycle == 7
    asked = [settle(n, device, seq, snr=-3.4) for seq in range(1, 9)]
    status_reqs = [d for d in asked if d is not None and mc.DevStatusReq() in d.mac]
    assert len(status_reqs) >= 2  # every 4 uplinks (MAC-only frames count too)
    state = n.server.session(n.server.registry.by_eui[device.dev_eui]).mac
    assert (state.battery, state.margin_db) == (0, -3)
    devices = n.stats.snapshot()["devices"]
    assert devices["river-lora-02"]["battery"] == 0


def test_unknown_and_cut_mac_commands_are_counted_and_the_reading_kept(net, keys):
    n = net()
    device = abp_device(keys)
    n.hear(device.uplink(1, bytes(9), fopts=bytes([0x02, 0x80, 0x01])))
    n.hear(device.uplink(1, bytes(9), fopts=bytes([0x06, 0x10])))
    assert n.rejected == {"mac.unknown_cid": 1, "mac.truncated": 1}
    assert len(n.forwarded) == 2
    link_check = [c for c in device.downlink(n.radio.sent[0].first.data).mac]
    assert isinstance(link_check[0], mc.LinkCheckAns)  # what came before the unknown CID


def test_adr_moves_a_strong_gauge_to_dr5_and_lowers_its_power(net, keys):
    n = net()
    device = abp_device(keys)
    device.mac.adr = True
    dr = 2
    for seq in range(30):
        snr = 8.0 - 2 * device.mac.tx_power  # less power, less SNR at the gateway
        settle(n, device, seq, snr=snr, datr=region.datr_from_dr(device.mac.dr))
        dr = device.mac.dr
    assert dr == 5
    assert device.mac.tx_power > 0
    assert frame_of(level(device, 99)).fctrl.adr


def test_adr_leaves_a_weak_gauge_at_dr2_and_full_power(net, keys):
    n = net()
    device = abp_device(keys)
    device.mac.adr = True
    for seq in range(30):
        settle(n, device, seq, snr=-11.0)
    assert (device.mac.dr, device.mac.tx_power) == (2, 0)
    assert n.stats.value("mac.down.LinkADRReq") == 0
