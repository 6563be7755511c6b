"""Adaptive data rate on the network side: the margin algorithm, as ChirpStack's default.

From the best SNR of a device's last ``HISTORY`` uplinks, the margin over what its data rate needs
(the demodulation floor plus an installation margin, 10 dB by default) is cut into 3 dB steps.
Each positive step raises the data rate by one, up to the highest allowed, then lowers the
transmit power by 2 dB; a negative step raises the power, never lowers the data rate (the device's
own ADRACKReq backoff does that when it stops hearing the network), and only once the history is
full at the current power, so the power does not swing up and down.

AS923 adds the 400 ms dwell limit: below DR2 no frame fits, and a payload may need a higher rate
still; the lowest data rate that carries the payload in use is a floor the target never goes
under.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.protocol.airtime import max_payload
from gateway.lorawan import region

HISTORY = 20  # uplinks whose SNR the algorithm looks at (ChirpStack's required history count)
STEP_DB = 3.0
PHY_OVERHEAD = 5  # MHDR and MIC around the MACPayload


@dataclass(frozen=True)
class LinkSettings:
    """What the network asks a device to transmit with: DR index and TXPower index."""

    dr: int
    tx_power: int


def dwell_min_dr(phy_size: int) -> int:
    """The lowest AS923 data rate whose dwell-limited maximum MACPayload carries ``phy_size``."""
    for dr in range(region.DWELL_MIN_DR, region.MAX_UPLINK_DR + 1):
        limit = max_payload(dr, dwell_time=True)
        if limit is not None and phy_size - PHY_OVERHEAD <= limit.m:
            return dr
    return region.MAX_UPLINK_DR


def target(
    snrs: list[float],
    current: LinkSettings,
    *,
    margin_db: float,
    max_dr: int,
    phy_size: int,
    history_full: bool,
) -> LinkSettings:
    """The data rate and power the device should use, given the SNRs of its recent uplinks."""
    dr = max(current.dr, dwell_min_dr(phy_size))
    dr = min(dr, max(max_dr, dwell_min_dr(phy_size)))
    power = current.tx_power
    if not snrs:
        return LinkSettings(dr, power)
    steps = int((max(snrs) - region.required_snr(dr) - margin_db) / STEP_DB)  # toward zero
    if steps < 0 and not history_full:
        return LinkSettings(dr, power)
    while steps > 0:
        if dr < max_dr:
            dr += 1
        elif power < region.MAX_TX_POWER_INDEX:
            power += 1
        steps -= 1
    while steps < 0:
        power = max(0, power - 1)
        steps += 1
    return LinkSettings(dr, power)
