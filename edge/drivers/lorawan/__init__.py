"""LoRaWAN modems that speak AT commands over a UART: the radio link of gauges without a network.

Each module drives one modem family behind the same interface, ``Modem``, which the LoRaWAN link
(``edge/runtime/lora_link.py``) uses and nothing else: configure the region and keys, join over
the air, send one uplink on an fPort, confirmed or not, and hand over what came down.

* ``rak3172`` — RAKwireless RAK3172 (and other RUI3 modules), 115200 baud;
* ``lora_e5`` — Seeed LoRa-E5 (STM32WLE5 with Seeed's AT firmware), 9600 baud.

Everything that can go wrong is a ``ModemError`` with a stable ``reason``, so the link can decide
what to do and count it: ``busy`` (try again shortly), ``not_joined`` (join again), ``no_ack`` (a
confirmed uplink was not acknowledged: the network did not hear it, or its answer was lost),
``rejected`` (the modem refused a command or a parameter), ``timeout`` (it stopped answering:
reset it), ``port`` (the serial adapter failed; the next call reopens it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

HEX = re.compile(r"^[0-9A-Fa-f]*$")
Reason = Literal["busy", "not_joined", "no_ack", "rejected", "timeout", "port"]


class ModemError(Exception):
    """A modem operation that did not succeed; ``reason`` says what the caller should do."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclass(frozen=True)
class Downlink:
    """An application downlink the modem delivered after an uplink (Class A)."""

    port: int
    payload: bytes
    rssi: int | None = None
    snr: float | None = None


@dataclass
class ModemConfig:
    """How to reach and set up the modem. Keys given here are written to it; keys left None are
    whatever the modem already holds (provisioned with the vendor's tool)."""

    model: Literal["rak3172", "lora_e5"] = "rak3172"
    port: str = "/dev/ttyUSB0"
    baudrate: int | None = None  # None: the model's default
    dev_eui: str | None = None  # 16 hex digits
    join_eui: str | None = None  # 16 hex digits (the AppEUI of LoRaWAN 1.0.2)
    app_key_file: Path | None = None  # 32 hex digits in a file (mode 0600), never in the config
    data_rate: int = 2  # AS923 DR2 = SF10: the slowest rate the 400 ms dwell limit allows
    adr: bool = False
    command_timeout_s: float = 3.0  # an ordinary AT command
    send_timeout_s: float = 30.0  # an uplink until TX_DONE or its confirmation (RX1, RX2)
    join_timeout_s: float = 30.0  # a Join-Request until JOINED or JOIN FAILED

    def __post_init__(self) -> None:
        for name, digits in (("dev_eui", 16), ("join_eui", 16)):
            value = getattr(self, name)
            if value is not None and (len(value) != digits or not HEX.match(value)):
                raise ValueError(f"{name} must be {digits} hex digits")
        if not 2 <= self.data_rate <= 5:
            raise ValueError("data_rate must be 2..5 (AS923 under the 400 ms dwell limit)")

    def app_key(self) -> str | None:
        """The AppKey from ``app_key_file``; raises ValueError (without the key) if malformed."""
        if self.app_key_file is None:
            return None
        key = self.app_key_file.read_text(encoding="ascii").strip()
        if len(key) != 32 or not HEX.match(key):
            raise ValueError(f"{self.app_key_file}: expected an AppKey of 32 hex digits")
        return key


class Modem(Protocol):
    """What the LoRaWAN link needs of a modem. Calls block; one thread owns a modem."""

    downlinks: list[Downlink]  # received since the caller last emptied it

    def configure(self) -> None:
        """Region AS923-1, OTAA, Class A, keys, data rate, ADR. Raises ModemError."""
        ...

    def join(self) -> bool:
        """One OTAA join attempt: True when joined, False when no Join-Accept came."""
        ...

    def send(self, port: int, payload: bytes, *, confirmed: bool) -> None:
        """One uplink. Returns when it was sent (unconfirmed) or acknowledged (confirmed)."""
        ...

    def data_rate(self) -> int:
        """The data rate the next uplink will use (ADR may have changed it)."""
        ...

    def reset(self) -> None:
        """Restart the modem; it must be configured and joined again."""
        ...

    def close(self) -> None: ...


def open_modem(config: ModemConfig) -> Modem:
    """The driver for ``config.model``; the port opens on first use."""
    if config.model == "lora_e5":
        from edge.drivers.lorawan.lora_e5 import LoraE5

        return LoraE5(config)
    from edge.drivers.lorawan.rak3172 import Rak3172

    return Rak3172(config)
