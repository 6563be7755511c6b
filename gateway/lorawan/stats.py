"""Counters of the LoRaWAN side for the gateway's retained status: what was accepted, every
rejection by reason, and each packet forwarder's last contact.

A LoRaWAN device has no status message of its own, so its radio state as the network knows it
(data rate, power, channels, and the battery and margin of its last DevStatusAns) is under
``devices`` in the gateway's status.

Written from the event loop, read by the MQTT thread that builds the status, hence the lock.
Rejection reasons are ``stage.reason`` (``udp.bad_json``, ``rxpk.crc_bad``, ``frame.bad_mic``,
``decode.bad_length``...), so each stage's inputs add up to its outputs plus its rejections.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from edge.protocol import utc_timestamp
from edge.runtime.clock import Clock

FORWARDER_COUNTERS = ("push_data", "pull_data", "rxpk", "rxpk_crc_bad", "tx_ack_ok", "tx_ack_error")


class Stats:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.accepted: Counter[str] = Counter()
        self.rejected: Counter[str] = Counter()
        self._forwarders: dict[int, dict[str, Any]] = {}
        self._devices: dict[str, dict[str, Any]] = {}

    def count(self, name: str, by: int = 1) -> None:
        with self._lock:
            self.accepted[name] += by

    def reject(self, reason: str) -> None:
        with self._lock:
            self.rejected[reason] += 1

    def forwarder(self, eui: int, counter: str, address: tuple[str, int] | None = None) -> None:
        """One datagram from packet forwarder ``eui``: bump ``counter``, note when and where."""
        with self._lock:
            entry = self._forwarders.get(eui)
            if entry is None:
                entry = self._forwarders[eui] = dict.fromkeys(FORWARDER_COUNTERS, 0)
            entry[counter] += 1
            entry["last_seen"] = utc_timestamp(self._clock.now())
            if address is not None:
                entry["address"] = f"{address[0]}:{address[1]}"

    def forwarder_stat(self, eui: int, stat: dict[str, Any]) -> None:
        """The forwarder's own periodic report (rxnb, rxok, txnb, GPS position...)."""
        with self._lock:
            if eui in self._forwarders:
                self._forwarders[eui]["stat"] = stat

    def device(self, device_id: str, radio: dict[str, Any]) -> None:
        """The radio state of a LoRaWAN device after its latest uplink."""
        with self._lock:
            self._devices[device_id] = radio

    def value(self, name: str) -> int:
        with self._lock:
            return self.accepted[name]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "accepted": dict(sorted(self.accepted.items())),
                "rejected": dict(sorted(self.rejected.items())),
                "packet_forwarders": {
                    f"{eui:016x}": dict(entry) for eui, entry in sorted(self._forwarders.items())
                },
                "devices": dict(sorted(self._devices.items())),
            }
