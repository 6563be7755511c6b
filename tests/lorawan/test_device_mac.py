"""The simulated end device's MAC layer, which stands in for the modems' firmware in every
end-to-end test: it must obey and answer as LoRaWAN 1.0.4 §5 (and a certified device) does."""

from __future__ import annotations

import random

from gateway.lorawan import maccommands as mc
from gateway.lorawan import region
from gateway.lorawan.frames import DataFrame, parse_frame
from sim.devices.device_mac import ADR_ACK_DELAY, ADR_ACK_LIMIT, DeviceMac
from sim.devices.lorawan_device import LoRaWANDevice

KEY = bytes(range(16))


def device(**mac) -> LoRaWANDevice:
    return LoRaWANDevice(1, dev_addr=0x01020304, nwk_s_key=KEY, app_s_key=KEY, mac=DeviceMac(**mac))


def fopts(phy: bytes) -> bytes:
    frame = parse_frame(phy)
    assert isinstance(frame, DataFrame)
    return frame.fopts


def test_certification_malformed_link_adr_req_is_refused_and_changes_nothing():
    """The certification's step sends LinkADRReq 0380000000 (DR 8, no channel): the device
    answers power ACK only and keeps its settings."""
    d = device()
    (request,), _ = mc.parse(bytes.fromhex("0380000000"), uplink=False)
    d.mac.downlink([request], snr=5)
    assert fopts(d.uplink(None)) == bytes.fromhex("0304")
    assert (d.mac.dr, d.mac.ch_mask, d.mac.tx_power) == (2, 0b11, 0)


def test_a_link_adr_block_is_applied_as_one_and_each_request_answered():
    d = device()
    d.mac.downlink([mc.NewChannelReq(2, 922_000_000, 0, 5)], snr=5)
    assert fopts(d.uplink(None)) == bytes.fromhex("0703")
    block = [mc.LinkADRReq(mc.KEEP, mc.KEEP, 0b001, 0, 0), mc.LinkADRReq(5, 3, 0, 6, 1)]
    d.mac.downlink(block, snr=5)
    assert fopts(d.uplink(None)) == bytes.fromhex("03070307")
    assert (d.mac.dr, d.mac.tx_power, d.mac.ch_mask) == (5, 3, 0b111)  # ChMaskCntl 6: all on
    d.mac.downlink([mc.LinkADRReq(4, 0, 0b1000, 0, 1)], snr=5)  # channel 3 undefined
    assert fopts(d.uplink(None)) == bytes.fromhex("0306")  # mask NACK: nothing applied
    assert (d.mac.dr, d.mac.tx_power) == (5, 3)


def test_new_channel_req_cannot_touch_the_default_channels():
    d = device()
    d.mac.downlink([mc.NewChannelReq(0, 922_000_000, 0, 5), mc.NewChannelReq(2, 868_100_000)], 5)
    assert fopts(d.uplink(None)) == bytes.fromhex("07020702")  # DR range ok, frequency not
    assert d.mac.channels[:3] == [923_200_000, 923_400_000, 0]


def test_rx_param_setup_answer_repeats_until_a_downlink():
    d = device()
    d.mac.downlink([mc.RXParamSetupReq(1, 3, 923_200_000), mc.RXTimingSetupReq(3)], snr=5)
    assert fopts(d.uplink(None)) == bytes.fromhex("050708")
    assert fopts(d.uplink(None)) == bytes.fromhex("050708")
    assert (d.mac.rx1_dr_offset, d.mac.rx2_dr, d.mac.rx_delay_s) == (1, 3, 3)
    d.mac.downlink([], snr=5)
    assert fopts(d.uplink(None)) == b""


def test_dev_status_and_tx_params_are_answered_once():
    d = device(battery=200)
    d.mac.downlink([mc.DevStatusReq(), mc.TxParamSetupReq(False, True, 3)], snr=-4.6)
    assert fopts(d.uplink(None)) == bytes.fromhex("06c83b09")  # battery 200, margin -5
    assert (d.mac.uplink_dwell, d.mac.downlink_dwell, d.mac.max_eirp_dbm) == (True, False, 13)
    assert fopts(d.uplink(None)) == b""


def test_answers_that_do_not_fit_beside_the_payload_wait_for_a_frame_of_their_own():
    d = device()
    d.mac.downlink([mc.DevStatusReq(), mc.NewChannelReq(2, 922_000_000)], snr=5)
    assert d.owes_more_than_fits(1, bytes(9))  # DR2, dwell: 19 - 7 - 1 - 9 = 2 octets of FOpts
    flush = d.uplink(None)
    assert fopts(flush) == bytes.fromhex("06fe050703")
    assert not d.owes_more_than_fits(1, bytes(9))


def test_adr_backoff_restores_power_then_steps_the_rate_down_to_dr2():
    d = device(adr=True, dr=4)
    d.mac.tx_power = 3
    uplinks = ADR_ACK_LIMIT + 3 * ADR_ACK_DELAY
    flags = [parse_frame(d.uplink(1, bytes(9))).fctrl for _ in range(uplinks)]
    assert flags[0].adr and not flags[ADR_ACK_LIMIT - 2].adr_ack_req
    assert flags[ADR_ACK_LIMIT - 1].adr_ack_req
    assert (d.mac.tx_power, d.mac.dr) == (0, 2)  # power back first, then DR4 -> DR3 -> DR2
    for _ in range(2 * ADR_ACK_DELAY):
        d.uplink(1, bytes(9))
    assert d.mac.dr == region.DWELL_MIN_DR  # never below DR2 under the dwell limit
    d.mac.downlink([], snr=5)  # any downlink ends the backoff
    assert not parse_frame(d.uplink(1, bytes(9))).fctrl.adr_ack_req


def test_uplinks_spread_over_the_channels_the_device_holds():
    d = device()
    cf_list = region.ChannelPlan.with_extra([922.0, 922.2]).cf_list()
    assert cf_list is not None
    d.mac.channels[2:4] = region.parse_cf_list(cf_list)[:2]
    d.mac.ch_mask = 0b1111
    rng = random.Random(1)
    used = {d.mac.frequency(rng) for _ in range(200)}
    assert used == {923_200_000, 923_400_000, 922_000_000, 922_200_000}
    assert {d.mac.frequency(rng, join=True) for _ in range(50)} == set(region.DEFAULT_CHANNELS_HZ)
