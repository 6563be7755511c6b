"""When and how a Class A downlink goes out: RX1 or RX2, timed from the uplink's ``tmst``.

The packet forwarder schedules a ``txpk`` on its concentrator's microsecond counter, so the answer
is sent at once and carries ``tmst`` = uplink ``tmst`` + the receive delay: JOIN_ACCEPT_DELAY1
(5 s) for a Join-Accept, RECEIVE_DELAY1 (1 s) for data, one second more for RX2. RX1 is on the
uplink's frequency at its data rate less the RX1DROffset (AS923, with the dwell limit); RX2 is
923.2 MHz at DR2. In ``auto`` mode RX2 is the fallback when the forwarder refuses RX1 (TX_ACK
TOO_LATE, a collision...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

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
    rx1_dr_offset: int,
    power_dbm: int,
) -> Downlink:
    """The txpk(s) answering the uplink ``reception``, in the order to try them."""
    rxpk = reception.rxpk
    delay1_s, delay2_s = (
        (region.JOIN_ACCEPT_DELAY1_S, region.JOIN_ACCEPT_DELAY2_S)
        if join
        else (region.RECEIVE_DELAY1_S, region.RECEIVE_DELAY2_S)
    )
    uplink_dr = region.dr_from_datr(str(rxpk.datr))
    rx1_window = region.rx1_window(rxpk.frequency_hz, uplink_dr, rx1_dr_offset)
    rx1 = _txpk(phy, rxpk.tmst + delay1_s * 1_000_000, rx1_window, power_dbm)
    rx2 = _txpk(phy, rxpk.tmst + delay2_s * 1_000_000, region.RX2, power_dbm)
    if mode == "rx1":
        return Downlink(reception.gateway_eui, rx1, None)
    if mode == "rx2":
        return Downlink(reception.gateway_eui, rx2, None)
    return Downlink(reception.gateway_eui, rx1, rx2)
