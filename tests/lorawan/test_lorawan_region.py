"""AS923-1 parameters, RX1 window and the forwarder's data-rate strings."""

from __future__ import annotations

import pytest

from edge.protocol.airtime import AS923_DATA_RATES
from gateway.lorawan import region


def test_as923_1_defaults():
    # RP002-1.0.4 AS923; the same values as chirpstack lrwn/src/region/as923.rs get_defaults.
    assert region.DEFAULT_CHANNELS_HZ == (923_200_000, 923_400_000)
    assert (region.RX2.frequency_hz, region.RX2.dr) == (923_200_000, 2)
    assert region.RX2.datr == "SF10BW125"
    assert (region.RECEIVE_DELAY1_S, region.RECEIVE_DELAY2_S) == (1, 2)
    assert (region.JOIN_ACCEPT_DELAY1_S, region.JOIN_ACCEPT_DELAY2_S) == (5, 6)
    assert region.MAX_EIRP_DBM == 16


@pytest.mark.parametrize(
    ("datr", "dr"),
    [
        ("SF12BW125", 0),
        ("SF11BW125", 1),
        ("SF10BW125", 2),
        ("SF9BW125", 3),
        ("SF8BW125", 4),
        ("SF7BW125", 5),
        ("SF7BW250", 6),
    ],
)
def test_datr_strings(datr, dr):
    assert region.dr_from_datr(datr) == dr
    assert region.datr_from_dr(dr) == datr


@pytest.mark.parametrize("datr", ["SF7BW500", "sf7bw125", "SF7", "", "SF6BW125"])
def test_unknown_datr_strings(datr):
    with pytest.raises(ValueError):
        region.dr_from_datr(datr)


def test_unknown_dr():
    with pytest.raises(ValueError):
        region.datr_from_dr(7)


# chirpstack lrwn/src/region/as923.rs, test_get_rx1_dr_dwell_time and ..._no_dwell_time:
# (uplink DR, RX1DROffset, RX1 DR with dwell time, RX1 DR without).
CHIRPSTACK_RX1_DR = [
    (5, 0, 5, 5),
    (5, 1, 4, 4),
    (5, 2, 3, 3),
    (5, 3, 2, 2),
    (5, 4, 2, 1),
    (5, 5, 2, 0),
    (5, 6, 5, 5),
    (5, 7, 5, 5),
    (2, 6, 3, 3),
    (2, 7, 4, 4),
]


@pytest.mark.parametrize(("uplink_dr", "offset", "dwell", "no_dwell"), CHIRPSTACK_RX1_DR)
def test_rx1_dr(uplink_dr, offset, dwell, no_dwell):
    assert region.rx1_dr(uplink_dr, offset) == dwell
    assert region.rx1_dr(uplink_dr, offset, dwell_time=False) == no_dwell


def test_rx1_dr_is_always_a_downlink_rate():
    for dr in AS923_DATA_RATES:
        for offset in range(8):
            assert 2 <= region.rx1_dr(dr, offset) <= 5
            assert 0 <= region.rx1_dr(dr, offset, dwell_time=False) <= 5


def test_rx1_window_uses_uplink_frequency():
    window = region.rx1_window(923_400_000, 2)
    assert window == region.RxWindow(923_400_000, 2)
    assert window.datr == "SF10BW125"
    assert region.rx1_window(923_200_000, 5, 2).datr == "SF9BW125"


@pytest.mark.parametrize(("dr", "offset"), [(7, 0), (-1, 0), (2, 8), (2, -1)])
def test_rx1_rejects_bad_input(dr, offset):
    with pytest.raises(ValueError):
        region.rx1_dr(dr, offset)
