"""An RDM6300 125 kHz reader on a pty: cards presented, held, pulled away, garbled frames.

While a card lies on the reader the module repeats its frame (``edge.drivers.rdm6300.frame``)
every ``period_s`` (the real module: about every 60-100 ms); with no card it is silent.
"""

from __future__ import annotations

import threading
import time

from edge.drivers.rdm6300 import frame
from sim.serial_pty import PtyDevice

PERIOD_S = 0.065


class Rdm6300Sim(PtyDevice):
    def __init__(
        self, name: str = "ttyRFID", *, link_dir: str | None = None, seed: int | None = None
    ) -> None:
        self._card: bytes | None = None
        self._lock_card = threading.Lock()
        super().__init__(name, link_dir=link_dir, seed=seed)
        self.stream(PERIOD_S, self._emit)

    def _emit(self) -> bytes | None:
        with self._lock_card:
            return frame(self._card) if self._card is not None else None

    def place(self, uid: bytes) -> None:
        """A card put on the reader (and left there until ``remove``)."""
        frame(uid)  # a bad id fails here, in the test, not in the device thread
        with self._lock_card:
            self._card = uid

    def remove(self) -> None:
        with self._lock_card:
            self._card = None

    def present(self, uid: bytes, hold_s: float = 0.3) -> None:
        """A rider's tap: the card lies on the reader for ``hold_s``, then goes."""
        self.place(uid)
        time.sleep(hold_s)
        self.remove()

    def garbled(self, uid: bytes) -> bytes:
        """One frame of ``uid`` with a digit flipped (the checksum no longer matches); sent."""
        data = bytearray(frame(uid))
        data[3] = ord("0") if data[3] != ord("0") else ord("1")
        self.write(bytes(data))
        return bytes(data)
