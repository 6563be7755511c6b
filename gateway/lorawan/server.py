"""The Semtech UDP packet-forwarder server (PROTOCOL.TXT v2, v1 accepted): one asyncio datagram
endpoint on port 1700 for any number of forwarders.

PUSH_DATA is acknowledged at once, by its header alone (PROTOCOL.TXT §3), so a forwarder never
counts a failed upstream for a datagram we received; then each of its ``rxpk`` is read on its own
(an unreadable one is counted by reason, its neighbours kept) and those on a channel of the
network's plan go to the deduplicator: a frame on any other frequency (a device on the wrong
band, 868.3 MHz) is rejected as ``rxpk.off_plan``, so no answer is ever scheduled outside the
plan. PULL_DATA is answered and its source address becomes the forwarder's downlink route;
PULL_RESP carries downlinks and TX_ACK says whether they were scheduled. Every datagram is
accepted or counted as rejected by reason (``udp.*``, ``rxpk.*``), and nothing a datagram contains
can raise out of here: UDP is unauthenticated, so anyone on the network may send anything.
"""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import time
from collections.abc import Callable
from typing import cast

from gateway.lorawan import region
from gateway.lorawan.dedup import Reception
from gateway.lorawan.downlink import Downlink
from gateway.lorawan.semtech_udp import (
    PullAck,
    PullData,
    PullResp,
    PushAck,
    PushData,
    Rxpk,
    TxAck,
    UdpError,
    datagram_eui,
    parse_datagram,
    push_ack_for,
)
from gateway.lorawan.stats import Stats

log = logging.getLogger(__name__)
RECEIVE_BUFFER = 4 * 1024 * 1024  # rides out a burst while the loop is busy
TX_ACK_TIMEOUT_S = 10.0  # a v1 forwarder never answers; forget the fallback by then
Address = tuple[str, int]


class PacketForwarderServer(asyncio.DatagramProtocol):
    """``on_rxpk`` receives each LoRa packet with a good CRC, tagged with its forwarder's EUI."""

    def __init__(
        self,
        stats: Stats,
        on_rxpk: Callable[[Reception], None],
        *,
        allowed_gateways: frozenset[int] = frozenset(),
        plan: region.ChannelPlan | None = None,
    ) -> None:
        self.stats = stats
        self.on_rxpk = on_rxpk
        self.allowed = allowed_gateways
        self.plan = plan or region.ChannelPlan()
        self.transport: asyncio.DatagramTransport | None = None
        self._routes: dict[int, tuple[Address, int]] = {}  # EUI -> (PULL_DATA source, version)
        self._pending: dict[int, tuple[float, Downlink]] = {}  # PULL_RESP token -> downlink
        self._rng = random.Random()

    # -- asyncio ------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)

    def error_received(self, exc: Exception) -> None:
        # ICMP port unreachable after a reply to a forwarder that went away: not ours to fix.
        self.stats.reject("socket.error")
        log.debug("udp error", extra={"fields": {"error": str(exc)}})

    def datagram_received(self, data: bytes, addr: Address) -> None:
        self.stats.count("udp.datagrams")
        try:
            self._dispatch(data, addr)
        except UdpError as exc:
            self.stats.reject(f"udp.{exc.reason}")
            log.debug(
                "datagram rejected", extra={"fields": {"from": addr[0], "reason": exc.reason}}
            )
        except Exception:  # a bug must not stop the server; count it where the status shows it
            self.stats.reject("internal.server")
            log.exception("datagram handling failed", extra={"fields": {"from": addr[0]}})

    # -- receiving ----------------------------------------------------------------------------
    def _dispatch(self, data: bytes, addr: Address) -> None:
        ack = push_ack_for(data)
        if ack is not None and (not self.allowed or datagram_eui(data) in self.allowed):
            self._send(ack.to_bytes(), addr)  # before the JSON is read: PROTOCOL.TXT §3
        datagram = parse_datagram(data)
        if isinstance(datagram, PushAck | PullAck | PullResp):
            raise UdpError("unexpected_direction", type(datagram).__name__)
        if self.allowed and datagram.gateway_eui not in self.allowed:
            raise UdpError("unknown_gateway", f"{datagram.gateway_eui:016x}")
        self.stats.count(f"udp.{type(datagram).__name__.lower()}")
        if isinstance(datagram, PushData):
            self._push_data(datagram, addr)
        elif isinstance(datagram, PullData):
            self._routes[datagram.gateway_eui] = (addr, datagram.version)
            self.stats.forwarder(datagram.gateway_eui, "pull_data", addr)
            self._send(PullAck(datagram.token, datagram.version).to_bytes(), addr)
        else:
            self._tx_ack(datagram)

    def _push_data(self, datagram: PushData, addr: Address) -> None:
        eui = datagram.gateway_eui
        self.stats.forwarder(eui, "push_data", addr)
        if datagram.stat is not None:
            self.stats.forwarder_stat(eui, datagram.stat.to_json())
        for reason in datagram.rejected:
            self.stats.forwarder(eui, "rxpk")
            self.stats.reject(f"rxpk.{reason}")
            fields = {"gateway": f"{eui:016x}", "reason": reason}
            log.debug("rxpk rejected", extra={"fields": fields})
        for rxpk in datagram.rxpk:
            self.stats.forwarder(eui, "rxpk")
            reason = _unusable(rxpk, self.plan)
            if reason is not None:
                if reason == "crc_bad":
                    self.stats.forwarder(eui, "rxpk_crc_bad")
                self.stats.reject(f"rxpk.{reason}")
                continue
            self.stats.count("rxpk.accepted")
            self.on_rxpk(Reception(eui, rxpk))

    def _tx_ack(self, ack: TxAck) -> None:
        entry = self._pending.pop(ack.token, None)
        if ack.error is None:
            self.stats.forwarder(ack.gateway_eui, "tx_ack_ok")
            return
        self.stats.forwarder(ack.gateway_eui, "tx_ack_error")
        self.stats.reject(f"downlink.{ack.error.lower()}")
        fields = {"gateway": f"{ack.gateway_eui:016x}", "error": ack.error}
        if entry is not None and entry[1].fallback is not None:
            _, downlink = entry
            fields["retry"] = "rx2"
            self.transmit(Downlink(downlink.gateway_eui, downlink.fallback, None))
        log.info("downlink refused by the forwarder", extra={"fields": fields})

    # -- sending --------------------------------------------------------------------------------
    def routable(self, gateway_eui: int) -> bool:
        return gateway_eui in self._routes

    def transmit(self, downlink: Downlink) -> bool:
        """Send ``downlink.first`` through its forwarder; keep the fallback for its TX_ACK."""
        route = self._routes.get(downlink.gateway_eui)
        if route is None:
            self.stats.reject("downlink.no_route")
            return False
        addr, version = route
        now = time.monotonic()
        for token, (sent, _) in list(self._pending.items()):
            if now - sent > TX_ACK_TIMEOUT_S:
                del self._pending[token]
        token = self._rng.getrandbits(16)
        self._pending[token] = (now, downlink)
        self._send(PullResp(token, downlink.first, version).to_bytes(), addr)
        self.stats.count("downlink.sent")
        return True

    def _send(self, data: bytes, addr: Address) -> None:
        if self.transport is not None:
            self.transport.sendto(data, addr)


def _unusable(rxpk: Rxpk, plan: region.ChannelPlan) -> str | None:
    """Why a received packet cannot be a LoRaWAN uplink here, or None."""
    if rxpk.stat != 1:
        return "crc_bad"  # -1 bad CRC, 0 no CRC: LoRaWAN uplinks always carry one
    if rxpk.modu != "LORA":
        return "not_lora"
    try:
        dr = region.dr_from_datr(str(rxpk.datr))
    except ValueError:
        return "bad_datr"
    if rxpk.frequency_hz not in plan or not region.MIN_UPLINK_DR <= dr <= region.MAX_UPLINK_DR:
        return "off_plan"  # RX1 would answer on that frequency: never outside the plan
    return None


async def serve(server: PacketForwarderServer, host: str, port: int) -> asyncio.DatagramTransport:
    """Bind ``server`` to ``host:port`` on the running loop."""
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: server, local_addr=(host, port))
    return transport
