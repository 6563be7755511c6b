"""Card readers on the bus: one interface for 125 kHz tags (RDM6300) and FeliCa/MIFARE (nfcpy).

A reader *senses* a card many times a second while it lies on the reader; a rider *taps* once.
:class:`CardReader` turns sightings into taps: the same card seen again within ``hold_gap_s`` of
its last sighting is the same presentation (counted ``held``), so a card left on the reader is one
tap however long it stays. A different card, or the same one after a longer gap, is a new tap.

Subclasses only say what is on the reader now (``_sense``); they count their own faults (bad
frames, checksums, a reader unplugged) in ``counters`` and never turn one into a card. Not
thread-safe: one thread polls one reader.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from edge.drivers.closing import Closing


@dataclass(frozen=True)
class Card:
    """A card's technology (one of ``edge.protocol.bus.TECHS``) and its id as the reader read it."""

    tech: str
    uid: bytes


class CardReader(Closing):
    def __init__(self, hold_gap_s: float = 0.6) -> None:
        self.hold_gap_s = hold_gap_s
        self.counters: Counter[str] = Counter()
        self._last: Card | None = None
        self._last_seen = float("-inf")

    def tap(self, timeout_s: float) -> Card | None:
        """The next new tap within ``timeout_s``, or None. Never raises for reader trouble."""
        deadline = time.monotonic() + timeout_s
        while (remaining := deadline - time.monotonic()) > 0:
            card = self._sense(remaining)
            if card is None:
                continue
            now = time.monotonic()
            if card == self._last and now - self._last_seen <= self.hold_gap_s:
                self._last_seen = now
                self.counters["held"] += 1
                continue
            self._last, self._last_seen = card, now
            self.counters["taps"] += 1
            return card
        return None

    def _sense(self, timeout_s: float) -> Card | None:
        """A card on the reader within ``timeout_s`` (returning early is fine), or None."""
        raise NotImplementedError


def open_reader(model: str, port: str, hold_gap_s: float = 0.6) -> CardReader:
    """The reader ``model`` at ``port``: ``rdm6300`` on a UART path, or ``nfc`` with an nfcpy
    path (``usb:054c:06c1`` for a Sony RC-S380, ``tty:AMA0:pn532`` for a PN532 on a Pi's UART)."""
    if model == "rdm6300":
        from edge.drivers.rdm6300 import RDM6300

        return RDM6300(port, hold_gap_s=hold_gap_s)
    if model == "nfc":
        from edge.drivers.nfc import NfcReader

        return NfcReader(port, hold_gap_s=hold_gap_s)
    raise ValueError(f"unknown card reader {model!r}; choose rdm6300 or nfc")
