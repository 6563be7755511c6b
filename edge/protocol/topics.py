"""MQTT topic names: ``machimori/v1/{kind}/{device_id}/{channel}``.

One builder and one parser, so no module ever formats a topic string by hand.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "machimori/v1"
KINDS = ("river", "camera", "bus", "tracker", "gateway", "alert")
# channel -> (QoS, retained). image/{event_id} carries raw JPEG bytes.
CHANNELS = {
    "telemetry": (1, False),
    "event": (1, False),
    "status": (1, True),
    "cmd": (1, False),
    "image": (1, False),
    # the store's end-to-end acknowledgement (edge.protocol.ack): QoS 0, a lost one costs a resend
    "ack": (0, True),
}
DEVICE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
EVENT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class TopicError(ValueError):
    """A topic that is not part of the contract; the message says which part is wrong."""


def check_device_id(device: str) -> str:
    if not isinstance(device, str) or not DEVICE_ID.match(device):
        raise TopicError(
            f"device id {device!r}: expected 1-63 chars of a-z, 0-9 and '-', starting alphanumeric"
        )
    return device


@dataclass(frozen=True)
class Topic:
    kind: str
    device: str
    channel: str
    event_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise TopicError(f"kind {self.kind!r}: expected one of {', '.join(KINDS)}")
        check_device_id(self.device)
        if self.channel not in CHANNELS:
            raise TopicError(f"channel {self.channel!r}: expected one of {', '.join(CHANNELS)}")
        if (self.channel == "image") != (self.event_id is not None):
            raise TopicError("channel 'image' needs an event id, and only it takes one")
        if self.event_id is not None and not EVENT_ID.match(self.event_id):
            raise TopicError(f"event id {self.event_id!r}: expected 1-64 chars of A-Z a-z 0-9 _ -")

    def __str__(self) -> str:
        tail = f"image/{self.event_id}" if self.event_id is not None else self.channel
        return f"{PREFIX}/{self.kind}/{self.device}/{tail}"

    @property
    def qos(self) -> int:
        return CHANNELS[self.channel][0]

    @property
    def retain(self) -> bool:
        return CHANNELS[self.channel][1]

    @classmethod
    def parse(cls, topic: str) -> Topic:
        parts = topic.split("/")
        if len(parts) not in (5, 6) or "/".join(parts[:2]) != PREFIX:
            raise TopicError(f"topic {topic!r}: expected {PREFIX}/{{kind}}/{{device}}/{{channel}}")
        if len(parts) == 6:
            if parts[4] != "image":
                raise TopicError(f"topic {topic!r}: only image/{{event_id}} has six levels")
            return cls(parts[2], parts[3], "image", parts[5])
        return cls(parts[2], parts[3], parts[4])


def topic(kind: str, device: str, channel: str, event_id: str | None = None) -> str:
    return str(Topic(kind, device, channel, event_id))
