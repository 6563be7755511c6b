"""The radio half of a simulated LoRaWAN modem: a real end device behind a packet forwarder.

The AT-command simulators (``rak3172``, ``lora_e5``) hold one ``ModemRadio`` each: it keeps the
device's keys, DevNonce, session and frame counters (``LoRaWANDevice``, built on the gateway's
own frame and crypto code), puts each frame on the air by handing it to a ``PacketForwarderSim``
that sends it to the gateway over real UDP, and catches the downlink meant for it.

Timing: the gateway schedules a downlink by the concentrator's ``tmst`` (RX1 one second after an
uplink, five after a Join-Request); the simulated forwarder delivers it as soon as the PULL_RESP
arrives, so a join or a confirmed uplink takes milliseconds, not seconds. A modem that hears
nothing within ``rx_window_s`` (real seconds) reports what a real one reports after its RX2
window: no Join-Accept, no acknowledgement. Like a real one, it hears only a downlink timed for
its own frame's RX1 or RX2 (``tmst`` = that uplink's + the receive delay): a late answer to an
earlier frame — a slow or killed gateway's — is not taken for this frame's acknowledgement.
Several modems may share one forwarder: each offers every downlink to its own device, which
rejects frames for another DevAddr or another AppKey.

The radio follows the device's MAC layer: each frame goes on a channel the device holds (the two
defaults until a CFList or NewChannelReq adds more) at the data rate it uses (``device.mac.dr``,
which ADR may move), and the SNR the gateway hears falls 2 dB for each TXPower step ADR takes off.

Fault: ``miss_downlinks(n)``: the next ``n`` receive windows hear nothing (a downlink lost to
interference), so the device neither gets those frames nor acknowledges them.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from gateway.lorawan.frames import FrameError
from gateway.lorawan.region import JOIN_ACCEPT_DELAY1_S, datr_from_dr
from gateway.lorawan.registry import Registry
from sim.devices.device_mac import DeviceMac
from sim.devices.lorawan_device import Downlink, LoRaWANDevice
from sim.devices.packet_forwarder import TMST_MODULUS, PacketForwarderSim, ReceivedDownlink

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Keys:
    """What a modem is provisioned with for OTAA."""

    dev_eui: int
    app_key: bytes
    join_eui: int = 0

    @classmethod
    def from_registry(cls, path: str | Path, device_id: str) -> Keys:
        """The keys the gateway's device registry holds for ``device_id``."""
        device = Registry.load(path).by_id[device_id]
        if device.otaa is None:
            raise ValueError(f"{device_id} is not an OTAA device in {path}")
        return cls(device.dev_eui_int, device.otaa.app_key_bytes, device.otaa.join_eui_int)


class ModemRadio:
    """A LoRaWAN end device on the air. Blocking calls; the AT simulator runs them off its
    serial thread."""

    def __init__(
        self,
        keys: Keys,
        forwarder: PacketForwarderSim,
        *,
        rx_window_s: float = 1.0,
        rssi: int = -95,
        lsnr: float = 6.5,
        dev_nonce: int = 0,
        seed: int | None = None,
        battery: int = 254,
    ) -> None:
        """``dev_nonce``: the first DevNonce; a gateway that remembers an earlier run of the same
        device refuses the ones it has seen. ``lsnr``: the SNR at full power; ``battery``: what
        the device reports in DevStatusAns."""
        self.device = LoRaWANDevice(
            keys.dev_eui,
            app_key=keys.app_key,
            join_eui=keys.join_eui,
            mac=DeviceMac(battery=battery),
        )
        self.device.dev_nonce = dev_nonce
        self.forwarder = forwarder
        self.rx_window_s = rx_window_s
        self.rssi = rssi
        self.lsnr = lsnr
        self.uplinks = 0  # frames put on the air, joins included
        self._deaf_windows = 0
        self._rng = random.Random(seed)
        self._inbox: queue.Queue[ReceivedDownlink] = queue.Queue()
        self._listening = threading.Event()
        forwarder.on_downlink(self._heard)

    @property
    def joined(self) -> bool:
        return self.device.joined

    def forget_session(self) -> None:
        """A reset: the session is gone; the DevNonce counter survives, as in the modem's NVM."""
        self.device.dev_addr = self.device.nwk_s_key = self.device.app_s_key = None
        self.device.mac.reset()

    @property
    def snr(self) -> float:
        """The SNR at the gateway, and of downlinks at the device: less at lower power."""
        return self.lsnr - 2 * self.device.mac.tx_power

    def join(self) -> bool:
        """One Join-Request, on a default channel at the set data rate; True when a Join-Accept
        for this device came back."""
        self.forget_session()
        frame = self.device.join_request()
        accepted = self._exchange(frame, self.device.accept_join, join=True)
        return accepted is not None

    def send(self, port: int, payload: bytes, *, confirmed: bool) -> tuple[bool, Downlink | None]:
        """One data uplink at the device's data rate: (acknowledged, the downlink that came
        back, if any). MAC answers that do not fit beside the payload go first, alone; a city
        command the network put in that frame's answer is reported as the modem would."""
        hear = lambda phy: self.device.downlink(phy, self.snr)  # noqa: E731
        flushed = None
        if self.device.owes_more_than_fits(port, payload):
            flushed = self._exchange(self.device.uplink(None), hear)
        frame = self.device.uplink(port, payload, confirmed=confirmed)
        downlink = self._exchange(frame, hear)
        acked = downlink is not None and downlink.ack
        if (downlink is None or not downlink.fport) and flushed is not None and flushed.fport:
            downlink = flushed
        return acked, downlink

    def miss_downlinks(self, windows: int) -> None:
        self._deaf_windows = windows

    def _heard(self, received: ReceivedDownlink) -> None:
        if self._listening.is_set():
            self._inbox.put(received)

    def _exchange(
        self, phy: bytes, accept: Callable[[bytes], T], *, join: bool = False
    ) -> T | None:
        """Transmit ``phy``; the first downlink ``accept`` takes within the receive window."""
        while not self._inbox.empty():  # what came after an earlier window closed is not ours
            self._inbox.get_nowait()
        deaf = self._deaf_windows > 0
        if deaf:
            self._deaf_windows -= 1
        self._listening.set()
        try:
            self.uplinks += 1
            windows: set[int] = set()  # the tmst of this frame's RX1 and RX2
            try:
                rxpk = self.forwarder.uplink(
                    phy,
                    freq_hz=self.device.mac.frequency(self._rng, join=join),
                    datr=datr_from_dr(self.device.mac.dr),
                    rssi=self.rssi - 2 * self.device.mac.tx_power,
                    lsnr=self.snr,
                    wait_ack=False,
                )
                delay = JOIN_ACCEPT_DELAY1_S if join else self.device.mac.rx_delay_s
                windows = {(rxpk.tmst + (delay + k) * 1_000_000) % TMST_MODULUS for k in (0, 1)}
            except OSError as exc:  # the server is down: the forwarder's datagram is lost
                log.debug("forwarder could not push: %s", exc)
            deadline = time.monotonic() + self.rx_window_s
            while True:
                try:
                    received = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    return None
                if deaf or received.txpk.imme or received.txpk.tmst not in windows:
                    continue  # not heard, or not in this frame's windows: they stay open
                try:
                    return accept(received.txpk.data)
                except (FrameError, ValueError, RuntimeError):
                    continue  # another device's downlink
        finally:
            self._listening.clear()
