"""The city side of the demo: a subscriber that checks every message against the contract, prints
one line per reading or event, and sums up what arrived per device (count, losses, duplicates)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt

from edge.protocol import Ack, Envelope, EnvelopeError, Status, Topic, TopicError
from edge.protocol.river import WARNING_LEVELS
from sim.broker import Mosquitto

JAPANESE = dict(WARNING_LEVELS)


@dataclass
class Seen:
    """What the city has received from one device."""

    seqs: set[int] = field(default_factory=set)
    duplicates: int = 0
    events: int = 0
    images: int = 0
    last: str = "-"  # the latest reading, described
    status: str = "-"
    acked: int = -1  # the store's watermark: every seq up to this is in the city store

    def lost(self) -> int:
        return max(self.seqs) + 1 - min(self.seqs) - len(self.seqs) if self.seqs else 0


def describe(envelope: Envelope) -> str:
    data = envelope.data
    if envelope.type == "level":
        if "missing" in data:
            return f"欠測 (missing: {data['missing']})"
        return f"{data['level_m']:.3f} m"
    if envelope.type == "level_crossing":
        arrow = "↑" if data["direction"] == "rising" else "↓"
        threshold = data["threshold"]
        return f"{arrow} {JAPANESE[threshold]} ({threshold}) at {data['level_m']:.2f} m"
    if envelope.type == "detection":
        verdict = "HARMFUL" if data.get("harmful") else "not harmful"
        return f"{data.get('label')} {data.get('confidence', 0):.2f}, {verdict}"
    if envelope.type == "uplink_error":
        return f"{data.get('device')}: {data.get('reason')}"
    if envelope.type in ("cmd_delivered", "cmd_failed"):
        outcome = "delivered" if envelope.type == "cmd_delivered" else "FAILED"
        tries = data.get("attempts")
        return f"{data.get('device')}: {data.get('command')} {outcome} after {tries} tries"
    if envelope.type == "position" and "route_id" in data:  # a bus: public, as in GTFS-RT
        return f"route {data.get('route_id')} stop {data.get('stop_id')} {data.get('status')}"
    if envelope.type == "position":  # never the coordinates: a child's position is not printed
        accuracy = f", ±{data['acc']:g} m" if data.get("acc") is not None else ""
        return f"position ({data.get('why')}{accuracy}, {data.get('src')})"
    if envelope.type in ("school_arrival", "school_departure", "not_at_school", "sos"):
        return f"{data.get('child')}: {envelope.type} ({data.get('school', '')})"
    return envelope.type


class CityConsole:
    def __init__(self, broker: Mosquitto, username: str, password: str, quiet: bool) -> None:
        self.quiet = quiet
        self.devices: dict[str, Seen] = defaultdict(Seen)
        self.rejected = 0
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="city-console")
        self.client.username_pw_set(username, password)
        self.client.on_connect = lambda c, *_: c.subscribe("machimori/v1/#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = Topic.parse(msg.topic)
            if topic.channel == "cmd":
                return
            if topic.channel == "image":
                with self.lock:
                    self.devices[topic.device].images += 1
                self._print(f"{topic.device:<10} image     {len(msg.payload) // 1024} KiB JPEG")
                return
            if topic.channel == "status":
                self._status(Status.from_json(msg.payload))
                return
            if topic.channel == "ack":  # the store's acknowledgement: shown in the summary
                ack = Ack.from_json(msg.payload)
                with self.lock:
                    seen = self.devices[ack.device]
                    seen.acked = max(seen.acked, ack.seq)
                return
            envelope = Envelope.from_json(msg.payload)
        except (TopicError, EnvelopeError) as exc:
            with self.lock:
                self.rejected += 1
            self._print(f"rejected   {msg.topic}: {exc}")
            return
        with self.lock:
            seen = self.devices[envelope.device]
            if envelope.seq in seen.seqs:
                seen.duplicates += 1
            seen.seqs.add(envelope.seq)
            seen.events += topic.channel == "event"
            if topic.channel == "telemetry":
                seen.last = describe(envelope)
            if "radio" in envelope.data:  # LoRaWAN devices have no status: their gateway does
                seen.status = "via LoRaWAN gateway"
        via = " via LoRaWAN" if "radio" in envelope.data else ""
        mark = "!" if topic.channel == "event" else " "
        self._print(
            f"{envelope.device:<10}{mark}{envelope.type:<15} {describe(envelope):<34} "
            f"seq {envelope.seq:<4} measured {envelope.ts[11:16]}{via}"
        )

    def _status(self, status: Status) -> None:
        with self.lock:
            seen = self.devices[status.device]
            changed, seen.status = seen.status != status.state, status.state
        if changed:  # the periodic health refresh is not news
            self._print(f"{status.device:<10} status          {status.state}")

    def _print(self, line: str) -> None:
        if not self.quiet:
            print(f"  {time.strftime('%H:%M:%S')}  {line}", flush=True)

    def summary(self) -> str:
        lines = ["", "summary (what the city received, checked against the contract):"]
        lines.append(
            f"  {'device':<10} {'messages':>8} {'events':>6} {'images':>6} {'lost':>5} {'dups':>5}"
            f" {'stored up to':>12}  last reading; status"
        )
        with self.lock:
            for device in sorted(self.devices):
                seen = self.devices[device]
                stored = f"seq {seen.acked}" if seen.acked >= 0 else "-"
                lines.append(
                    f"  {device:<10} {len(seen.seqs):>8} {seen.events:>6} {seen.images:>6} "
                    f"{seen.lost():>5} {seen.duplicates:>5} {stored:>12}  "
                    f"{seen.last}; {seen.status}"
                )
            lines.append(f"  {self.rejected} messages broke the contract")
        return "\n".join(lines)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
