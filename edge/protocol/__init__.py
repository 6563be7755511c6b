"""The contract between field devices, the gateway and the city: topics, envelopes, LoRa codecs.

Everything a consumer of machimori's MQTT needs to know lives here; docs/protocol.md is its prose.
"""

from edge.protocol.ack import Ack
from edge.protocol.envelope import Envelope, EnvelopeError, Status, utc_timestamp
from edge.protocol.topics import CHANNELS, KINDS, Topic, TopicError

__all__ = [
    "Ack",
    "CHANNELS",
    "KINDS",
    "Envelope",
    "EnvelopeError",
    "Status",
    "Topic",
    "TopicError",
    "utc_timestamp",
]
