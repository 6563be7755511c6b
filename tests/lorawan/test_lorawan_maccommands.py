"""LoRaWAN 1.0.4 §5 MAC commands at byte level, both directions.

The vectors are the published test table of ChirpStack's lrwn crate (lrwn/src/maccommand.rs,
MIT), an implementation independent of ours, for every Class A command of 1.0.4; the
LoRa Alliance certification's malformed LinkADRReq; and the GPS epoch from the GPS ICD.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.lorawan import maccommands as mc
from gateway.lorawan import region

# (sent uplink?, command, octets) -- lrwn's test_maccommand_set rows for 1.0.4 Class A.
VECTORS = [
    (True, mc.LinkCheckReq(), "02"),
    (False, mc.LinkCheckAns(margin=10, gw_cnt=15), "020a0f"),
    (
        False,
        mc.LinkADRReq(dr=1, tx_power=2, ch_mask=0b100, ch_mask_cntl=4, nb_trans=5),
        "0312040045",
    ),
    (True, mc.LinkADRAns(power_ack=False, dr_ack=False, ch_mask_ack=True), "0301"),
    (True, mc.LinkADRAns(power_ack=False, dr_ack=True, ch_mask_ack=False), "0302"),
    (True, mc.LinkADRAns(power_ack=True, dr_ack=False, ch_mask_ack=False), "0304"),
    (True, mc.LinkADRAns(), "0307"),
    (False, mc.DutyCycleReq(13), "040d"),
    (True, mc.DutyCycleAns(), "04"),
    (False, mc.RXParamSetupReq(rx1_dr_offset=3, rx2_dr=11, frequency_hz=26265700), "053b010204"),
    (True, mc.RXParamSetupAns(True, False, True), "0505"),
    (False, mc.DevStatusReq(), "06"),
    (True, mc.DevStatusAns(battery=0, margin=-30), "060022"),
    (True, mc.DevStatusAns(battery=255, margin=30), "06ff1e"),
    (True, mc.DevStatusAns(battery=127, margin=-1), "067f3f"),
    (True, mc.DevStatusAns(battery=127, margin=0), "067f00"),
    (False, mc.NewChannelReq(3, 26265700, min_dr=10, max_dr=5), "07030102045a"),
    (True, mc.NewChannelAns(dr_range_ok=False, frequency_ok=False), "0700"),
    (True, mc.NewChannelAns(dr_range_ok=False, frequency_ok=True), "0701"),
    (True, mc.NewChannelAns(dr_range_ok=True, frequency_ok=False), "0702"),
    (True, mc.NewChannelAns(), "0703"),
    (False, mc.RXTimingSetupReq(15), "080f"),
    (True, mc.RXTimingSetupAns(), "08"),
    (False, mc.TxParamSetupReq(downlink_dwell=False, uplink_dwell=False, max_eirp=15), "090f"),
    (False, mc.TxParamSetupReq(downlink_dwell=False, uplink_dwell=True, max_eirp=15), "091f"),
    (False, mc.TxParamSetupReq(downlink_dwell=True, uplink_dwell=False, max_eirp=15), "092f"),
    (True, mc.TxParamSetupAns(), "09"),
    (False, mc.DlChannelReq(0, 868_100_000), "0a00287684"),
    (False, mc.DlChannelReq(1, 868_200_000), "0a01107a84"),
    (True, mc.DlChannelAns(uplink_frequency_exists=False, frequency_ok=False), "0a00"),
    (True, mc.DlChannelAns(uplink_frequency_exists=False, frequency_ok=True), "0a01"),
    (True, mc.DlChannelAns(uplink_frequency_exists=True, frequency_ok=False), "0a02"),
    (True, mc.DlChannelAns(), "0a03"),
    (True, mc.DeviceTimeReq(), "0d"),
    (False, mc.DeviceTimeAns(seconds=1), "0d0100000000"),
    (False, mc.DeviceTimeAns(seconds=1, fraction=2), "0d0100000002"),  # 1 s + 2 x 1/256 s
]


@pytest.mark.parametrize(("uplink", "command", "octets"), VECTORS)
def test_each_command_encodes_and_parses_as_the_published_vector(uplink, command, octets):
    assert command.UPLINK is uplink
    assert command.to_bytes().hex() == octets
    assert mc.parse(bytes.fromhex(octets), uplink=uplink) == ([command], None)


def test_one_cid_means_a_different_command_each_way():
    """CID 0x03 is LinkADRReq (4 octets) down and LinkADRAns (1 octet) up (Table 4)."""
    assert mc.parse(bytes.fromhex("0307"), uplink=True) == ([mc.LinkADRAns()], None)
    assert mc.parse(bytes.fromhex("0307"), uplink=False) == ([], "truncated")


def test_several_commands_in_one_fopts_field_keep_their_order():
    up = bytes.fromhex("0307" + "02" + "067f3f" + "0d")
    commands, error = mc.parse(up, uplink=True)
    assert error is None
    assert commands == [
        mc.LinkADRAns(),
        mc.LinkCheckReq(),
        mc.DevStatusAns(127, -1),
        mc.DeviceTimeReq(),
    ]
    assert mc.encode(commands) == up


@pytest.mark.parametrize(
    ("octets", "uplink", "kept", "reason"),
    [
        ("02" + "80ff", True, 1, "unknown_cid"),  # a proprietary CID ends the parse (§5)
        ("02" + "01", True, 1, "unknown_cid"),  # ResetInd is LoRaWAN 1.1 only
        ("06" + "0b01", False, 1, "unknown_cid"),  # RekeyConf is LoRaWAN 1.1 only
        ("0602", False, 1, "truncated"),  # LinkCheckAns down has two octets
        ("067f", True, 0, "truncated"),  # DevStatusAns without its margin
        ("03", True, 0, "truncated"),
        ("0307" + "07", True, 1, "truncated"),
    ],
)
def test_unknown_or_cut_commands_stop_the_parse_and_say_why(octets, uplink, kept, reason):
    commands, error = mc.parse(bytes.fromhex(octets), uplink=uplink)
    assert (len(commands), error) == (kept, reason)


def test_certification_malformed_link_adr_req_parses_with_its_rfu_data_rate():
    """The LoRaWAN certification's incorrect-MAC-command step sends LinkADRReq 0380000000: DR 8,
    an empty ChMask; it parses, and the device (not the codec) refuses it."""
    (request,), error = mc.parse(bytes.fromhex("0380000000"), uplink=False)
    assert error is None
    assert (request.dr, request.tx_power, request.ch_mask, request.nb_trans) == (8, 0, 0, 0)


def test_device_time_is_gps_time_with_the_leap_seconds():
    """GPS time 0 is 1980-01-06T00:00:00Z; 2017-01-01T00:00:00Z is GPS 1167264018 (18 leap
    seconds since), as published GPS-time converters give it. (The constant holds from 2017.)"""
    answer = mc.DeviceTimeAns.at(datetime(2017, 1, 1, tzinfo=UTC))
    assert (answer.seconds, answer.fraction) == (1_167_264_018, 0)
    half = mc.DeviceTimeAns.at(datetime(2026, 11, 22, 10, 0, 0, 500_000, tzinfo=UTC))
    assert half.fraction == 128
    assert half.utc == datetime(2026, 11, 22, 10, 0, 0, 500_000, tzinfo=UTC)


def test_tx_param_setup_eirp_table_and_as923_default():
    assert mc.TxParamSetupReq(max_eirp=5).max_eirp_dbm == region.MAX_EIRP_DBM == 16
    assert mc.MAX_EIRP_CODES_DBM[0] == 8 and mc.MAX_EIRP_CODES_DBM[15] == 36
    assert mc.TxParamSetupReq().to_bytes().hex() == "0935"  # both dwell limits, 16 dBm


def test_values_out_of_range_are_refused_when_built():
    with pytest.raises(mc.MacError):
        mc.LinkADRReq(dr=16).to_bytes()
    with pytest.raises(mc.MacError):
        mc.NewChannelReq(2, 923_300_050).to_bytes()  # not a multiple of 100 Hz
    with pytest.raises(mc.MacError):
        mc.DevStatusAns(battery=10, margin=40).to_bytes()


def test_as923_cflist_and_the_spec_example():
    """The EU868 CFList example of LoRaWAN 1.0 (867.1..867.9 MHz) as published, then the city's
    AS923-1 plan: five extra channels in the CFList, the sixth left for a NewChannelReq."""
    eu = [867_100_000, 867_300_000, 867_500_000, 867_700_000, 867_900_000]
    assert region.cf_list_bytes(eu).hex() == "184f84e85684b85e84886684586e8400"
    plan = region.ChannelPlan.with_extra([922.0, 922.2, 922.4, 922.6, 922.8, 923.0])
    cf_list = plan.cf_list()
    assert cf_list is not None and len(cf_list) == 16 and cf_list[15] == 0
    assert region.parse_cf_list(cf_list) == [
        922_000_000,
        922_200_000,
        922_400_000,
        922_600_000,
        922_800_000,
    ]
    assert plan.ch_mask == 0xFF
    assert 923_000_000 in plan and 868_300_000 not in plan
    assert region.ChannelPlan().cf_list() is None


@pytest.mark.parametrize(
    "extra",
    [[923.2], [868.3], [922.0] * 2, [922.0, 922.2, 922.4, 922.6, 922.8, 923.0, 921.8], [922.00005]],
)
def test_a_bad_channel_plan_is_refused(extra):
    with pytest.raises(ValueError):
        region.ChannelPlan.with_extra(extra)
