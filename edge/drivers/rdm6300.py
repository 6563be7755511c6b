"""The RDM6300 125 kHz reader (EM4100 tags) on a UART, 9600 8N1, transmit only.

While a tag is in the field the module sends, over and over, a 14-byte frame::

    02 | 10 ASCII hex digits: version byte + 4-byte tag id | 2 ASCII hex: checksum | 03

where the checksum is the XOR of the five bytes the ten digits encode. A frame that breaks any of
this is counted by what was wrong and never read as a tag: ``malformed`` (no ``03`` where it
belongs, or a non-hex digit), ``checksum``, ``partial`` (a frame that stopped half way), and
``garbage_bytes`` skipped while hunting for an ``02``. An unplugged reader counts ``port`` and
is opened again on the next read, so plugging it back in just works.
"""

from __future__ import annotations

import logging
import time
from functools import reduce

from edge.drivers.cards import Card, CardReader
from edge.drivers.serialport import PortError, SerialPort

log = logging.getLogger(__name__)

STX, ETX = 0x02, 0x03
FRAME_LEN = 14
BAUDRATE = 9600
FRAME_GAP_S = 0.1  # a frame takes 15 ms at 9600 baud; silence this long inside one lost the rest
RETRY_S = 0.5  # after a port failure, how long before trying to open it again
HEX = frozenset(b"0123456789ABCDEFabcdef")


def frame(uid: bytes) -> bytes:
    """The frame the module sends for a 5-byte tag id (version + id): simulators and tests."""
    if len(uid) != 5:
        raise ValueError("an RDM6300 tag id is 5 bytes (version + 4-byte id)")
    checksum = reduce(lambda a, b: a ^ b, uid)
    return bytes([STX]) + uid.hex().upper().encode() + f"{checksum:02X}".encode() + bytes([ETX])


class RDM6300(CardReader):
    def __init__(self, path: str, hold_gap_s: float = 0.6) -> None:
        super().__init__(hold_gap_s)
        self.port = SerialPort(path, BAUDRATE)
        self._buf = bytearray()
        self._last_rx = 0.0

    def _sense(self, timeout_s: float) -> Card | None:
        if (card := self._decode()) is not None:
            return card
        try:
            data = self.port.read(min(timeout_s, FRAME_GAP_S))
        except PortError:
            self.counters["port"] += 1
            self._buf.clear()
            time.sleep(min(timeout_s, RETRY_S))
            return None
        now = time.monotonic()
        if data:
            self._buf += data
            self._last_rx = now
        elif self._buf and now - self._last_rx > FRAME_GAP_S:
            self.counters["partial"] += 1
            self._buf.clear()
        return self._decode()

    def _decode(self) -> Card | None:
        """Consume buffered frames up to the first good one; count the bad ones."""
        while True:
            start = self._buf.find(STX)
            skipped = len(self._buf) if start < 0 else start
            if skipped:
                self.counters["garbage_bytes"] += skipped
                del self._buf[:skipped]
            if len(self._buf) < FRAME_LEN:
                return None
            body = bytes(self._buf[1:13])
            if self._buf[13] != ETX or not HEX.issuperset(body):
                # the 02 may itself be noise: look for the next one inside this window
                self.counters["malformed"] += 1
                del self._buf[:1]
                continue
            del self._buf[:FRAME_LEN]
            uid = bytes.fromhex(body[:10].decode())
            if reduce(lambda a, b: a ^ b, uid) != int(body[10:], 16):
                self.counters["checksum"] += 1
                continue
            self.counters["frames"] += 1
            return Card("em4100", uid)

    def close(self) -> None:
        self.port.close()
