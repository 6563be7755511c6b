"""A FeliCa or MIFARE card in front of nfcpy's network reader (``udp:127.0.0.1:PORT``).

nfcpy ships a reader that speaks over UDP, one datagram per RF frame (``"212F <hex>"``), for
testing its own stack; this is a card at its far end. It answers the polling a tap reader sends:
FeliCa SENSF_REQ with a SENSF_RES carrying the card's IDm and PMm (JIS X 6319-4), and ISO 14443-3
type A with SENS_RES, one cascade level of anticollision (SDD_RES with its BCC) and a SEL_RES
(SAK 0x08, MIFARE Classic 1K). With no card on the reader nothing answers, as in the field.
"""

from __future__ import annotations

import functools
import operator
import socket
import threading

from edge.drivers.closing import Closing

PMM = bytes.fromhex("0120220427674EFF")  # a FeliCa Standard card's manufacture parameter


class NfcCardSim(Closing):
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.path = f"udp:127.0.0.1:{self.sock.getsockname()[1]}"
        self.card: tuple[str, bytes] | None = None  # ("felica", IDm) or ("iso14443a", UID)
        self.polls = 0
        self.vanish_after_sens = False  # a card pulled away in the middle of anticollision
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nfc-card", daemon=True)
        self._thread.start()

    def place(self, tech: str, uid: bytes) -> None:
        if tech == "felica" and len(uid) != 8 or tech == "iso14443a" and len(uid) != 4:
            raise ValueError("an IDm is 8 bytes; this simulator's type A UIDs are 4 bytes")
        self.card = (tech, uid)

    def remove(self) -> None:
        self.card = None

    def _run(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(1024)
            except (TimeoutError, OSError):
                continue
            if data.startswith(b"RFOFF"):
                continue
            brty, _, hexdata = data.partition(b" ")
            reply = self._answer(brty.decode(), bytes.fromhex(hexdata.decode()))
            if reply is not None:
                self.sock.sendto(brty + b" " + reply.hex().encode(), addr)

    def _answer(self, brty: str, frame: bytes) -> bytes | None:
        card = self.card
        if brty == "212F":
            self.polls += 1
        if card is None:
            return None
        tech, uid = card
        if brty == "212F" and tech == "felica" and frame[1:2] == b"\x00":
            body = b"\x01" + uid + PMM
            return bytes([len(body) + 1]) + body
        if brty != "106A" or tech != "iso14443a":
            return None
        if frame == b"\x26":  # SENS_REQ (REQA)
            if self.vanish_after_sens:
                self.card = None
            return b"\x04\x00"  # SENS_RES: single-size UID, bit frame anticollision
        if frame == b"\x93\x20":  # SDD_REQ, cascade level 1
            return uid + bytes([functools.reduce(operator.xor, uid)])
        if frame[:2] == b"\x93\x70":  # SEL_REQ
            return b"\x08"  # SAK: UID complete, MIFARE Classic 1K
        return None

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()
