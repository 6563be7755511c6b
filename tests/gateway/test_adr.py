"""The ADR margin algorithm: ChirpStack's default (its published step table), the history rule
for negative steps, and AS923's dwell limit as a floor."""

from __future__ import annotations

import pytest

from gateway.lorawan import region
from gateway.lorawan.adr import HISTORY, LinkSettings, dwell_min_dr, target


def snr_for(steps: int, dr: int, margin_db: float = 10.0) -> float:
    """An SNR worth ``steps`` 3 dB steps over what ``dr`` needs plus the margin."""
    return region.required_snr(dr) + margin_db + 3 * steps + (0.5 if steps >= 0 else -0.5)


@pytest.mark.parametrize(
    ("steps", "dr", "power", "expected"),
    [  # ChirpStack adr/default.rs test_get_ideal_tx_power_index_and_dr, max DR 5
        (0, 3, 1, (3, 1)),  # nothing to do
        (1, 4, 1, (5, 1)),  # one step: data rate up
        (1, 5, 1, (5, 2)),  # at the top: power down
        (2, 3, 1, (5, 1)),
        (2, 4, 1, (5, 2)),
        (2, 5, 1, (5, 3)),
        (-1, 5, 1, (5, 0)),  # a negative step raises the power
        (-1, 4, 0, (4, 0)),  # never lowers the data rate
        (-10, 4, 0, (4, 0)),
    ],
)
def test_steps_as_chirpstack_default(steps, dr, power, expected):
    snrs = [snr_for(steps, dr)] * HISTORY
    goal = target(
        snrs, LinkSettings(dr, power), margin_db=10.0, max_dr=5, phy_size=22, history_full=True
    )
    assert (goal.dr, goal.tx_power) == expected


def test_negative_steps_wait_for_a_full_history_and_the_best_snr_counts():
    current = LinkSettings(5, 3)
    weak = [snr_for(-2, 5)] * 5
    assert target(weak, current, margin_db=10, max_dr=5, phy_size=22, history_full=False) == current
    one_good = weak + [snr_for(0, 5)]
    assert target(one_good, current, margin_db=10, max_dr=5, phy_size=22, history_full=True) == (
        current
    )


def test_the_dwell_limit_is_a_floor_at_the_payload_size_in_use():
    """AS923 with the 400 ms dwell limit: DR2 carries a MACPayload of 19 octets, DR3 61 (RP002)."""
    assert [dwell_min_dr(size) for size in (12, 24, 25, 66, 67)] == [2, 2, 3, 3, 4]
    weak = [region.required_snr(2) - 5] * HISTORY
    goal = target(weak, LinkSettings(2, 0), margin_db=10, max_dr=5, phy_size=40, history_full=True)
    assert goal.dr == 3  # a 40-octet frame does not fit DR2 under the dwell limit
    strong = [30.0] * HISTORY
    start = LinkSettings(2, 0)
    goal = target(strong, start, margin_db=10, max_dr=4, phy_size=22, history_full=True)
    assert goal == LinkSettings(4, 7)  # max_dr caps the rate; the rest goes to power
