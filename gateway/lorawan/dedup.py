"""One frame heard by several gateways is one uplink: collect its receptions for a short window.

The first reception of a PHYPayload opens a window (200 ms by default, as ChirpStack); copies from
other gateways arriving within it add their RSSI/SNR; when it closes the frame is handled once,
with all of them. A copy arriving later is handled again and rejected as a retransmission by the
frame counter check, so nothing is ever accepted twice. The window costs latency, not
throughput, and is far inside RX1 (one second after the uplink; five for a Join-Accept).

Windows that close together are handed over together, so the network server can write their
state in one transaction.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from gateway.lorawan.semtech_udp import Rxpk
from gateway.lorawan.stats import Stats

BATCH_SLACK_S = 0.001  # windows closing within this of each other are handled as one batch


@dataclass(frozen=True)
class Reception:
    """One gateway's copy of a frame: which forwarder heard it and its radio metadata."""

    gateway_eui: int
    rxpk: Rxpk


Frame = tuple[bytes, list[Reception]]


class Deduplicator:
    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        window_s: float,
        on_frames: Callable[[list[Frame]], None],
        stats: Stats,
    ) -> None:
        if window_s < 0:
            raise ValueError("the deduplication window cannot be negative")
        self._loop = loop
        self._window_s = window_s
        self._on_frames = on_frames
        self._stats = stats
        self._open: dict[bytes, list[Reception]] = {}
        self._closing: deque[tuple[float, bytes]] = deque()  # (deadline, PHYPayload), in order
        self._timer: asyncio.TimerHandle | None = None

    def add(self, reception: Reception) -> None:
        """Take one reception: open a window for a new frame, or join the open one."""
        phy = reception.rxpk.data
        receptions = self._open.get(phy)
        if receptions is not None:
            self._stats.count("rxpk.copies")
            if all(r.gateway_eui != reception.gateway_eui for r in receptions):
                receptions.append(reception)
            return
        self._open[phy] = [reception]
        self._closing.append((self._loop.time() + self._window_s, phy))
        if self._timer is None:
            self._timer = self._loop.call_at(self._closing[0][0], self._close)

    def _close(self) -> None:
        self._timer = None
        due = self._loop.time() + BATCH_SLACK_S
        batch = []
        while self._closing and self._closing[0][0] <= due:
            _, phy = self._closing.popleft()
            batch.append((phy, self._open.pop(phy)))
        if self._closing:
            self._timer = self._loop.call_at(self._closing[0][0], self._close)
        if batch:
            self._on_frames(batch)
