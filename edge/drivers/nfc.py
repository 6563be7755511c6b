"""FeliCa and MIFARE (ISO 14443 A) cards through nfcpy: a Sony RC-S380 on USB, a PN532 on a UART.

nfcpy names the reader by a path: ``usb:054c:06c1`` (RC-S380), ``tty:AMA0:pn532`` or
``tty:serial0:pn532`` (a PN532 board wired to the Pi's UART), ``udp:host:port`` (nfcpy's own
network device, where the tests put a simulated card). The driver only *senses*: a FeliCa
polling (SENSF_REQ at 212 kbit/s) gives the card's IDm, a type A anticollision its UID; that id
is all a tap needs, so no card memory is read and nothing is written.

A reader that vanishes (USB pulled, UART dead) raises in nfcpy; it is counted ``port``, closed
and opened again on a later sense. An RF error mid-anticollision (a card pulled away half way)
is counted ``rf_error`` and is no tap.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from edge.drivers.cards import Card, CardReader

log = logging.getLogger(__name__)

RETRY_S = 1.0  # after the reader failed, how long before opening it again


class NfcReader(CardReader):
    def __init__(self, path: str, hold_gap_s: float = 0.6) -> None:
        super().__init__(hold_gap_s)
        self.path = path
        self._clf: Any = None

    def _open(self) -> Any:
        import nfc  # an optional dependency (extra ``bus``): only buses with such a reader need it

        if self._clf is None:
            clf = nfc.ContactlessFrontend()
            if not clf.open(self.path):
                raise OSError(f"no NFC reader at {self.path}")
            self._clf = clf
            log.info("nfc reader open", extra={"fields": {"path": self.path}})
        return self._clf

    def _sense(self, timeout_s: float) -> Card | None:
        import nfc.clf

        try:
            clf = self._open()
            target = clf.sense(
                nfc.clf.RemoteTarget("212F"), nfc.clf.RemoteTarget("106A"), iterations=1
            )
        except nfc.clf.CommunicationError as exc:
            self.counters["rf_error"] += 1
            log.debug("%s: rf error: %s", self.path, exc)
            return None
        except (OSError, nfc.clf.Error) as exc:
            self.counters["port"] += 1
            log.debug("%s: reader failed: %s", self.path, exc)
            self.close()
            time.sleep(min(timeout_s, RETRY_S))
            return None
        if target is None:
            return None
        if target.sensf_res is not None and len(target.sensf_res) >= 17:
            self.counters["frames"] += 1
            return Card("felica", bytes(target.sensf_res[1:9]))  # IDm
        if target.sdd_res is not None:
            self.counters["frames"] += 1
            return Card("iso14443a", bytes(target.sdd_res))
        self.counters["unsupported"] += 1  # a type A card that is not MIFARE-like, type 1, ...
        return None

    def close(self) -> None:
        clf, self._clf = self._clf, None
        if clf is not None:
            try:
                clf.close()
            except (OSError, AttributeError) as exc:  # closing a reader that is already gone
                log.debug("%s: close failed: %s", self.path, exc)
