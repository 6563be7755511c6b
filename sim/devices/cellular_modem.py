"""An LTE modem (SIMCom SIM7600 or Quectel EC25) on a pty: the AT set the tracker's driver uses.

It answers ``AT``, ``AT+CSQ``, ``AT+CEREG?``, ``AT+CREG?``, ``AT+CPIN?`` and its model's GNSS
commands (``AT+CGPS=1`` / ``AT+CGPSINFO`` or ``AT+QGPS=1`` / ``AT+QGPSLOC=2``) as the manuals
show, from state a test or the demo sets: ``rssi_dbm``, ``registration`` (CEREG's stat digit),
``sim`` (a ``+CPIN:`` answer, or None for no SIM), and ``position``, a callable that returns
``(lat, lon, utc)`` or None indoors.

Faults: ``hang()`` wedges it (nothing answered) until its supply is switched off: give it the
gpiozero ``MockFactory`` pin the driver drives (``power_pin``), and it goes dark while the pin is
low and boots (``RDY``, ``+CPIN: READY``, ``SMS DONE``) ``boot_s`` after it comes back high,
un-wedged, the way a brown-out modem recovers.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime

from gpiozero.pins.mock import MockPin

from sim.devices.gnss_receiver import ddmm
from sim.serial_pty import PtyDevice

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"
Position = Callable[[], tuple[float, float, datetime] | None]


def _answer(*lines: str) -> bytes:
    return b"".join(f"\r\n{line}\r\n".encode() for line in lines) + OK


class CellularModemSim(PtyDevice):
    def __init__(
        self,
        model: str = "sim7600",
        *,
        position: Position = lambda: None,
        power_pin: MockPin | None = None,
        boot_s: float = 0.3,
        name: str = "ttyUSB2",
        link_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        if model not in ("sim7600", "quectel"):
            raise ValueError(f"model {model!r}: sim7600 or quectel")
        self.model = model
        self.position = position
        self.power_pin = power_pin
        self.boot_s = boot_s
        self.rssi_dbm: int | None = -85
        self.registration = "1"
        self.sim: str | None = "READY"
        self.gnss_on = False
        self.hung = False
        self.received: list[str] = []
        self._powered = True
        super().__init__(name, link_dir=link_dir)
        if power_pin is not None:
            watcher = threading.Thread(target=self._watch_power, name=f"power-{name}", daemon=True)
            watcher.start()

    def hang(self) -> None:
        """Stop answering until the supply is cycled."""
        self.hung = True

    # -- the AT set ---------------------------------------------------------------------------
    def on_line(self, line: bytes) -> bytes | None:
        text = line.decode("ascii", "replace").strip().upper()
        self.received.append(text)
        if self.hung or not self._powered:
            return None
        return self._reply(text)

    def _reply(self, text: str) -> bytes:
        if text == "AT":
            return OK
        if text == "AT+CSQ":
            n = 99 if self.rssi_dbm is None else max(0, min(31, (self.rssi_dbm + 113) // 2))
            return _answer(f"+CSQ: {n},99")
        if text in ("AT+CEREG?", "AT+CREG?"):
            return _answer(f"{text[2:-1]}: 0,{self.registration}")
        if text == "AT+CPIN?":
            return _answer(f"+CPIN: {self.sim}") if self.sim else b"\r\n+CME ERROR: 10\r\n"
        if text in ("AT+CGPS=1", "AT+QGPS=1"):
            expected = "AT+CGPS=1" if self.model == "sim7600" else "AT+QGPS=1"
            if text != expected or self.gnss_on:
                # SIMCom answers ERROR to a second start; Quectel +CME ERROR: 504 (session
                # ongoing)
                return ERROR if self.model == "sim7600" else b"\r\n+CME ERROR: 504\r\n"
            self.gnss_on = True
            return OK
        if text == "AT+CGPSINFO" and self.model == "sim7600":
            return self._cgpsinfo()
        if text == "AT+QGPSLOC=2" and self.model == "quectel":
            return self._qgpsloc()
        return ERROR

    def _cgpsinfo(self) -> bytes:
        where = self.position() if self.gnss_on else None
        if where is None:
            return _answer("+CGPSINFO: ,,,,,,,,")
        lat, lon, moment = where
        at = moment.astimezone(UTC)
        return _answer(
            f"+CGPSINFO: {ddmm(lat, 2, 6)},{'N' if lat >= 0 else 'S'},"
            f"{ddmm(lon, 3, 6)},{'E' if lon >= 0 else 'W'},"
            f"{at:%d%m%y},{at:%H%M%S}.0,212.5,0.8,90.0"
        )

    def _qgpsloc(self) -> bytes:
        where = self.position() if self.gnss_on else None
        if where is None:
            return b"\r\n+CME ERROR: 516\r\n"
        lat, lon, moment = where
        at = moment.astimezone(UTC)
        return _answer(
            f"+QGPSLOC: {at:%H%M%S}.000,{lat:.5f},{lon:.5f},1.1,212.5,3,90.00,2.9,1.6,"
            f"{at:%d%m%y},08"
        )

    # -- power --------------------------------------------------------------------------------
    def _watch_power(self) -> None:
        assert self.power_pin is not None
        while not self._stop.is_set():
            on = bool(self.power_pin.state)
            if self._powered and not on:
                self._powered = False
                self.hung = self.gnss_on = False  # power off clears the wedge and the engine
            elif not self._powered and on:
                time.sleep(self.boot_s)
                self._powered = True
                self.write(b"\r\nRDY\r\n\r\n+CPIN: READY\r\n\r\nSMS DONE\r\n")
            time.sleep(0.02)
