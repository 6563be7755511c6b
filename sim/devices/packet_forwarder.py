"""A LoRa concentrator running Semtech's packet forwarder (lora_pkt_fwd), over real UDP.

Like the real one it uses two sockets: "up" for PUSH_DATA (received frames, status) and "down"
for the PULL_DATA keep-alive that lets the server send PULL_RESP (downlinks), each answered with
a TX_ACK. The concentrator's microsecond counter ``tmst`` runs from a random start, wraps at
2^32, and stamps every uplink; a downlink's ``txpk.tmst`` says when it would go on air.

    with PacketForwarderSim(0xAA555A0000000001, ("127.0.0.1", 1700)) as pf:
        rxpk = pf.uplink(phy_payload, freq_hz=923_200_000, datr="SF10BW125", rssi=-80, lsnr=7.5)
        tx = pf.wait_downlink(timeout_s=2)   # tx.txpk.data, tx.txpk.tmst - rxpk.tmst == 1e6 ...

``refuse_next("TOO_LATE")`` makes the next PULL_RESP be refused in its TX_ACK, as a busy or late
forwarder does (the gateway then tries RX2).
"""

from __future__ import annotations

import queue
import random
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from gateway.lorawan.semtech_udp import (
    PullAck,
    PullData,
    PullResp,
    PushAck,
    PushData,
    Rxpk,
    Stat,
    TxAck,
    Txpk,
    UdpError,
    parse_datagram,
)

TMST_MODULUS = 1 << 32


@dataclass(frozen=True)
class ReceivedDownlink:
    """A PULL_RESP the forwarder accepted: what to send, and the counter when it arrived."""

    token: int
    txpk: Txpk
    tmst_at_arrival: int


class PacketForwarderSim:
    def __init__(
        self,
        gateway_eui: int,
        server: tuple[str, int],
        *,
        keepalive_s: float = 5.0,
        ack_timeout_s: float = 2.0,
        version: int = 2,
    ) -> None:
        self.gateway_eui = gateway_eui
        self.server = server
        self.keepalive_s = keepalive_s
        self.ack_timeout_s = ack_timeout_s
        self.version = version
        self._refusals: deque[str] = deque()
        self.downlinks: queue.Queue[ReceivedDownlink] = queue.Queue()
        self.pull_acked = threading.Event()
        self._callbacks: list[Callable[[ReceivedDownlink], None]] = []
        self._acks: dict[int, threading.Event] = {}
        self._lock = threading.Lock()
        self._token = random.randrange(1 << 16)
        self._tmst_origin = time.monotonic() - random.randrange(TMST_MODULUS) / 1e6
        self._stop = threading.Event()
        self.up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.down = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for sock in (self.up, self.down):
            sock.bind(("127.0.0.1", 0))
            sock.connect(server)
        self._thread = threading.Thread(target=self._receive, name="pkt-fwd-sim", daemon=True)

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self, timeout_s: float = 5.0) -> PacketForwarderSim:
        """Open the downlink route: PULL_DATA until a PULL_ACK comes (raises TimeoutError)."""
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.pull_acked.is_set():
            _send(
                self.down, PullData(self._next_token(), self.gateway_eui, self.version).to_bytes()
            )
            if self.pull_acked.wait(0.2):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"no PULL_ACK from {self.server} in {timeout_s} s")
        return self

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        self.up.close()
        self.down.close()

    def __enter__(self) -> PacketForwarderSim:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- uplink ---------------------------------------------------------------------------------
    def tmst(self) -> int:
        """The concentrator's free-running microsecond counter."""
        return int((time.monotonic() - self._tmst_origin) * 1e6) % TMST_MODULUS

    def uplink(
        self,
        phy_payload: bytes,
        freq_hz: int = 923_200_000,
        datr: str = "SF10BW125",
        rssi: int = -80,
        lsnr: float = 7.5,
        *,
        crc_ok: bool = True,
        tmst: int | None = None,
        wait_ack: bool = True,
    ) -> Rxpk:
        """Report one received frame to the server (PUSH_DATA) and return its rxpk."""
        rxpk = Rxpk(
            tmst=self.tmst() if tmst is None else tmst,
            freq=freq_hz / 1e6,
            datr=datr,
            rssi=rssi,
            data=phy_payload,
            lsnr=lsnr,
            stat=1 if crc_ok else -1,
            chan=0,
        )
        self.push((rxpk,), wait_ack=wait_ack)
        return rxpk

    def push(
        self, rxpk: tuple[Rxpk, ...] = (), stat: Stat | None = None, *, wait_ack: bool = True
    ) -> int:
        """Send a PUSH_DATA; wait for its PUSH_ACK unless told not to. Returns its token."""
        token = self._next_token()
        datagram = PushData(token, self.gateway_eui, rxpk, stat, self.version).to_bytes()
        self.send_raw(datagram, wait_ack_token=token if wait_ack else None)
        return token

    def send_raw(self, datagram: bytes, *, wait_ack_token: int | None = None) -> None:
        """Any bytes from the up socket; with a token, wait for that PUSH_ACK."""
        event = threading.Event()
        if wait_ack_token is not None:
            with self._lock:
                self._acks[wait_ack_token] = event
        _send(self.up, datagram)
        if wait_ack_token is not None and not event.wait(self.ack_timeout_s):
            with self._lock:
                self._acks.pop(wait_ack_token, None)
            raise TimeoutError(f"no PUSH_ACK for token {wait_ack_token}")

    # -- downlink -------------------------------------------------------------------------------
    def refuse_next(self, error: str = "TOO_LATE") -> None:
        """Answer the next PULL_RESP with a TX_ACK carrying ``error`` instead of sending it."""
        self._refusals.append(error)

    def on_downlink(self, callback: Callable[[ReceivedDownlink], None]) -> None:
        """Call ``callback`` (on the receive thread) for each downlink, besides queueing it."""
        self._callbacks.append(callback)

    def wait_downlink(self, timeout_s: float = 5.0) -> ReceivedDownlink:
        """The next downlink (raises queue.Empty after ``timeout_s``)."""
        return self.downlinks.get(timeout=timeout_s)

    # -- receive thread -------------------------------------------------------------------------
    def _next_token(self) -> int:
        with self._lock:
            self._token = (self._token + 1) % (1 << 16)
            return self._token

    def _receive(self) -> None:
        selector = selectors.DefaultSelector()
        selector.register(self.up, selectors.EVENT_READ)
        selector.register(self.down, selectors.EVENT_READ)
        next_keepalive = time.monotonic() + self.keepalive_s
        while not self._stop.is_set():
            for key, _ in selector.select(timeout=0.1):
                try:
                    self._handle(key.fileobj.recv(65535))  # type: ignore[union-attr]
                except (OSError, UdpError):
                    continue  # ICMP unreachable while the server restarts; garbage from it
            if time.monotonic() >= next_keepalive:
                next_keepalive += self.keepalive_s
                pull = PullData(self._next_token(), self.gateway_eui, self.version)
                _send(self.down, pull.to_bytes())
        selector.close()

    def _handle(self, data: bytes) -> None:
        datagram = parse_datagram(data)
        if isinstance(datagram, PushAck):
            with self._lock:
                event = self._acks.pop(datagram.token, None)
            if event is not None:
                event.set()
        elif isinstance(datagram, PullAck):
            self.pull_acked.set()
        elif isinstance(datagram, PullResp):
            error = self._refusals.popleft() if self._refusals else None
            if self.version >= 2:
                self.down.send(
                    TxAck(datagram.token, self.gateway_eui, error, self.version).to_bytes()
                )
            if error is None:
                received = ReceivedDownlink(datagram.token, datagram.txpk, self.tmst())
                self.downlinks.put(received)
                for callback in self._callbacks:
                    callback(received)


def _send(sock: socket.socket, data: bytes) -> None:
    """UDP is fire and forget: a server that is down (ICMP port unreachable) loses the datagram,
    as it would for the real forwarder, and is not an error here."""
    try:
        sock.send(data)
    except ConnectionRefusedError:
        pass
