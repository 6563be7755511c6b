"""When and how a Class A downlink goes out: RX1 or RX2, timed from the uplink's ``tmst``.

The packet forwarder schedules a ``txpk`` on its concentrator's microsecond counter, so the answer
is sent at once and carries ``tmst`` = uplink ``tmst`` + the receive delay: JOIN_ACCEPT_DELAY1
(5 s) for a Join-Accept, RECEIVE_DELAY1 (1 s) for data, one second more for RX2. RX1 is on the
uplink's frequency at its data rate less the RX1DROffset (AS923, with the dwell limit); RX2 is
923.2 MHz at the RX2 data rate (DR2 unless RXParamSetupReq moved it). RECEIVE_DELAY1 is the
device's (1 s unless RXTimingSetupReq moved it). In ``auto`` mode RX2 is the fallback when the
forwarder refuses RX1 (TX_ACK TOO_LATE, a collision...). An RX1 frequency outside the channel plan
is never used: such an uplink is refused before it gets here, and if one did, only RX2 would go.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from edge.protocol.airtime import max_payload
from gateway.lorawan import region
from gateway.lorawan.dedup import Reception
from gateway.lorawan.semtech_udp import Txpk

RxWindowMode = Literal["rx1", "rx2", "auto"]
TMST_MODULUS = 1 << 32


@dataclass(frozen=True)
class Downlink:
    """A PHYPayload to send through ``gateway_eui``; ``fallback`` is tried if ``first`` fails."""

    gateway_eui: int
    first: Txpk
    fallback: Txpk | None


def best_reception(
    receptions: Iterable[Reception], routable: Callable[[int], bool]
) -> Reception | None:
    """The gateway to answer through: the best SNR, then RSSI, among those with a downlink route
    (a forwarder that has sent PULL_DATA)."""
    candidates = [r for r in receptions if routable(r.gateway_eui)]
    if not candidates:
        return None
    return max(candidates, key=lambda r: (r.rxpk.lsnr or -99.0, r.rxpk.rssi))


def _txpk(phy: bytes, tmst: int, window: region.RxWindow, power_dbm: int) -> Txpk:
    return Txpk(
        freq=window.frequency_hz / 1e6,
        powe=power_dbm,
        datr=window.datr,
        data=phy,
        tmst=tmst % TMST_MODULUS,
    )


def schedule(
    phy: bytes,
    reception: Reception,
    *,
    join: bool,
    mode: RxWindowMode,
    power_dbm: int,
    plan: region.ChannelPlan,
    rx1_dr_offset: int = 0,
    rx2_dr: int = region.RX2_DR,
    delay1_s: int = region.RECEIVE_DELAY1_S,
) -> Downlink:
    """The txpk(s) answering the uplink ``reception``, in the order to try them. A Join-Accept
    uses the join delays and the defaults the device has before it holds a session."""
    rxpk = reception.rxpk
    if join:
        delay1_s, rx1_dr_offset, rx2_dr = region.JOIN_ACCEPT_DELAY1_S, 0, region.RX2_DR
    uplink_dr = region.dr_from_datr(str(rxpk.datr))
    rx1_window = region.rx1_window(rxpk.frequency_hz, uplink_dr, rx1_dr_offset)
    rx2_window = region.RxWindow(region.RX2_FREQUENCY_HZ, rx2_dr)
    rx1 = _txpk(phy, rxpk.tmst + delay1_s * 1_000_000, rx1_window, power_dbm)
    rx2 = _txpk(phy, rxpk.tmst + (delay1_s + 1) * 1_000_000, rx2_window, power_dbm)
    if mode == "rx2" or rx1_window.frequency_hz not in plan:
        return Downlink(reception.gateway_eui, rx2, None)
    if mode == "rx1":
        return Downlink(reception.gateway_eui, rx1, None)
    return Downlink(reception.gateway_eui, rx1, rx2)


def max_mac_payload(uplink_dr: int, *, rx1_dr_offset: int, rx2_dr: int, mode: RxWindowMode) -> int:
    """The largest MACPayload (FHDR, FPort, FRMPayload) the windows ``mode`` may use carry under
    the 400 ms dwell limit: in ``auto`` both, so a frame refused in RX1 still fits RX2."""
    windows = {
        "rx1": [region.rx1_dr(uplink_dr, rx1_dr_offset)],
        "rx2": [rx2_dr],
        "auto": [region.rx1_dr(uplink_dr, rx1_dr_offset), rx2_dr],
    }[mode]
    sizes = []
    for dr in windows:
        limit = max_payload(dr, dwell_time=True)
        sizes.append(limit.m if limit is not None else 0)
    return min(sizes)
