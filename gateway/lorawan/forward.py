"""Uplink payload to envelope: decode with the device's codec, widen its seq, queue it for MQTT.

Both ways in (the UDP network server and ChirpStack mode) end here, so a consumer cannot tell
them apart. The envelope is the device's own: ``device`` is its id, ``seq`` its counter (widened
from the 16 bits the payload carries), ``ts`` its measurement time; radio metadata goes under
``data.radio``. A payload that does not decode becomes an ``uplink_error`` event on the gateway's
own topic, counted by reason, never dropped silently. The outcome of a city command sent to a
LoRaWAN device is reported on that topic too: ``cmd_delivered`` or ``cmd_failed``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from edge.protocol import Envelope, Topic, utc_timestamp
from edge.protocol.airtime import dr_time_on_air
from edge.protocol.codecs import CodecError, widen_seq
from edge.runtime.clock import Clock
from edge.runtime.outbox import Outbox, OutboxFull
from gateway.lorawan.registry import Device
from gateway.lorawan.sessions import QueuedDownlink, SessionStore
from gateway.lorawan.stats import Stats

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Gateway:
    """One receiving gateway's view of an uplink."""

    id: str
    rssi: float
    snr: float | None


def radio_metadata(
    gateways: list[Gateway],
    *,
    frequency_hz: int,
    dr: int,
    datr: str,
    phy_size: int,
    fcnt: int,
) -> dict[str, Any]:
    """``data.radio`` of a forwarded uplink: who heard it, how well, and at what cost."""
    return {
        "gateways": [{"id": g.id, "rssi": g.rssi, "snr": g.snr} for g in gateways],
        "frequency_hz": frequency_hz,
        "datr": datr,
        "dr": dr,
        "airtime_s": round(dr_time_on_air(dr, phy_size), 4),
        "fcnt": fcnt,
    }


@dataclass(frozen=True)
class Uplink:
    """A decrypted application payload from a known device."""

    device: Device
    fport: int
    payload: bytes
    radio: dict[str, Any]


class Forwarder:
    """Turns uplinks into outbox messages; the caller wakes the MQTT uplink (once a batch)."""

    def __init__(
        self,
        outbox: Outbox,
        store: SessionStore,
        stats: Stats,
        clock: Clock,
    ) -> None:
        self.outbox = outbox
        self.store = store
        self.stats = stats
        self.clock = clock

    def forward(self, uplink: Uplink) -> int | None:
        """Queue the envelope, then record its seq in the state file: after the message, so a
        crash in between repeats a message rather than losing it. Inside the network server's
        batch both writes belong to the batch's transactions, and a batch rolled back forgets
        both (no seq is remembered here in memory, which a rollback would leave ahead of the
        disk). Returns the seq; None when nothing was queued: the payload did not decode (an
        error event is queued instead), or it repeats a reading already forwarded."""
        device = uplink.device
        try:
            message = device.payload_codec.decode(uplink.fport, uplink.payload)
        except CodecError as exc:
            self._decode_error(uplink, exc.reason)
            return None
        last = self.store.last_seq(device.id)
        seq = widen_seq(last, message.seq_low)
        if last is not None and seq <= last:
            # A new frame with an old seq: the device resent a reading whose ACK it missed.
            # Devices send oldest first, so it was forwarded already; it is acknowledged, not
            # forwarded twice.
            self.stats.reject("forward.repeated_seq")
            log.info(
                "repeated reading dropped", extra={"fields": {"device": device.id, "seq": seq}}
            )
            return None
        data = {**message.data, "radio": uplink.radio}
        envelope = Envelope(device.id, seq, utc_timestamp(message.ts), message.type, data)
        try:
            topic = Topic(device.kind, device.id, message.channel)
            self.outbox.add_raw(topic, envelope.to_json(), seq=seq)
        except OutboxFull:
            self.stats.reject("forward.outbox_full")
            log.warning("outbox full, uplink refused", extra={"fields": {"device": device.id}})
            return None
        self.store.save_seq(device.id, seq)
        self.stats.count("forwarded")
        return seq

    def command_outcome(self, device: Device, command: QueuedDownlink, delivered: bool) -> None:
        """Tell the city whether the device acknowledged a command, naming it by the city
        envelope's type and seq, in the same outbox batch as the uplink that settled it."""
        data = {
            "device": device.id,
            "command": command.command,
            "command_seq": command.command_seq,
            "fport": command.fport,
            "attempts": command.attempts,
        }
        self._gateway_event("cmd_delivered" if delivered else "cmd_failed", data)

    def _gateway_event(self, type_: str, data: dict[str, Any]) -> None:
        topic = Topic("gateway", self.outbox.device, "event")
        try:
            self.outbox.add(topic, type_, data, utc_timestamp(self.clock.now()))
        except OutboxFull:
            self.stats.reject("forward.outbox_full")

    def _decode_error(self, uplink: Uplink, reason: str) -> None:
        self.stats.reject(f"decode.{reason}")
        fields = {"device": uplink.device.id, "fport": uplink.fport, "reason": reason}
        log.warning("uplink does not decode", extra={"fields": fields})
        data = {**fields, "codec": uplink.device.codec, "payload_hex": uplink.payload.hex()}
        self._gateway_event("uplink_error", data)
