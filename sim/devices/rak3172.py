"""A RAK3172 LoRaWAN modem (RUI3 AT firmware) on a pty, transmitting for real through a
simulated packet forwarder to the gateway's UDP port.

It answers the RUI3 AT set the driver uses (see ``edge/drivers/lorawan/rak3172.py`` for the
manual's syntax) the way the module does: a status line per command, the outcome of ``AT+JOIN``
and ``AT+SEND`` later as ``+EVT:`` lines, ``AT_BUSY_ERROR`` while the radio is busy,
``AT_NO_NETWORK_JOINED`` before a join, ``AT_PARAM_ERROR`` for a payload too long for the data
rate. ``legacy_events`` makes it speak like pre-3.2 firmware (``+EVT:JOIN FAILED``,
``+EVT:SEND CONFIRMED OK``, a downlink in three lines). Frames only reach the gateway when the
band is AS923-1 (``AT+BAND=8``), as a module on the wrong band is never heard.

Faults: ``hang()`` (the module stops answering), ``busy_next(n)`` (``AT_BUSY_ERROR`` for the next
``n`` sends, as while the stack waits for a duty-cycle slot), and the pty's own (unplug, garbage).
"""

from __future__ import annotations

import os
import re
import threading

from edge.protocol.airtime import max_payload
from sim.devices.lorawan_modem import ModemRadio
from sim.serial_pty import PtyDevice

OK = b"\r\nOK\r\n"
BOOT_BANNER = (
    b"\r\nRAKwireless RAK3172-E Example\r\n"
    b"------------------------------------------------------\r\n"
    b"Current Work Mode: LoRaWAN.\r\n"
)
BAND_AS923_1 = "8"
SETTING = re.compile(r"AT\+([A-Z0-9]+)=(.*)")
# (allowed values) of the plain settings this simulator keeps
CHOICES = {
    "NWM": ("0", "1", "2"),
    "BAND": tuple(str(b) for b in range(2, 10)),  # the high-frequency variant: RU864..AS923-2
    "NJM": ("0", "1"),
    "CLASS": ("A", "B", "C"),
    "ADR": ("0", "1"),
    "DR": ("2", "3", "4", "5"),  # AS923 under the dwell limit
    "CFM": ("0", "1"),
}
HEX_DIGITS = {"DEVEUI": 16, "APPEUI": 16, "APPKEY": 32}


def _status(name: str) -> bytes:
    return f"\r\n{name}\r\n".encode()


class Rak3172Sim(PtyDevice):
    def __init__(
        self,
        radio: ModemRadio,
        *,
        legacy_events: bool = False,
        name: str = "ttyRAK0",
        link_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.radio = radio
        self.legacy_events = legacy_events
        # Factory settings: EU868 (band 4), ADR on, DR0 -- the driver must set what it needs.
        # DR and ADR live in the device's MAC layer, where LinkADRReq moves the data rate.
        self.settings = {"NWM": "1", "BAND": "4", "NJM": "1", "CLASS": "A", "CFM": "0"}
        radio.device.mac.adr, radio.device.mac.dr = True, 0
        self.echo = False
        self.received: list[str] = []  # every command line, keys included (tests read it)
        self._busy = threading.Event()
        self._busy_sends = 0
        super().__init__(name, link_dir=link_dir)

    # -- faults -------------------------------------------------------------------------------
    def hang(self, on: bool = True) -> None:
        """The module stops answering (a brown-out that left it wedged) until ``hang(False)``."""
        self.silence(on)

    def busy_next(self, sends: int) -> None:
        self._busy_sends = sends

    # -- the AT set ---------------------------------------------------------------------------
    def on_line(self, line: bytes) -> bytes | None:
        text = line.decode("ascii", "replace").strip()
        self.received.append(text)
        if self.echo:
            self.write(text.encode() + b"\r\n")
        head, sep, value = text.partition("=")
        return self._reply(head.upper() + sep + value)  # the module ignores the command's case

    def _reply(self, text: str) -> bytes | None:
        if text == "AT":
            return OK
        if text == "ATE":
            self.echo = not self.echo
            return OK
        if text == "ATZ":
            self._reboot()
            return None
        if text in ("AT+JOIN", "AT+JOIN=1"):
            return self._join()
        if text.endswith("=?"):
            return self._query(text[3:-2])
        match = SETTING.fullmatch(text)
        if match is None:
            return _status("AT_ERROR")
        name, value = match.groups()
        if name == "JOIN":
            return self._join() if value.startswith("1") else OK
        if name == "SEND":
            return self._send(value)
        if name in HEX_DIGITS:
            return self._key(name, value)
        if value.upper() not in CHOICES.get(name, ()):
            return _status("AT_PARAM_ERROR" if name in CHOICES else "AT_ERROR")
        if name == "NWM" and value != self.settings["NWM"]:
            self.settings["NWM"] = value
            self._reboot()  # the module restarts to change its work mode
            return None
        mac = self.radio.device.mac
        if name == "DR":
            mac.dr = int(value)
        elif name == "ADR":
            mac.adr = value == "1"
        else:
            self.settings[name] = value.upper()
        return OK

    def _query(self, name: str) -> bytes:
        device = self.radio.device
        values = {
            **self.settings,
            "DR": str(device.mac.dr),
            "ADR": str(int(device.mac.adr)),
            "NJS": "1" if self.radio.joined else "0",
            "DEVEUI": f"{device.dev_eui:016x}",
            "APPEUI": f"{device.join_eui:016x}",
        }
        if name not in values:
            return _status("AT_ERROR")
        return f"AT+{name}={values[name]}".encode() + OK

    def _key(self, name: str, value: str) -> bytes:
        if len(value) != HEX_DIGITS[name] or not re.fullmatch(r"[0-9A-Fa-f]+", value):
            return _status("AT_PARAM_ERROR")
        device = self.radio.device
        if name == "APPKEY":
            device.app_key = bytes.fromhex(value)
        elif name == "DEVEUI":
            device.dev_eui = int(value, 16)
        else:
            device.join_eui = int(value, 16)
        return OK

    def _reboot(self) -> None:
        self._busy.clear()
        self.radio.forget_session()
        self.write(BOOT_BANNER)

    # -- radio operations, off the serial thread ------------------------------------------------
    def _join(self) -> bytes:
        if self._busy.is_set():
            return _status("AT_BUSY_ERROR")
        if self.settings["NJM"] != "1":
            return _status("AT_ERROR")
        self.answer_later(self._join_task, self._busy)
        return OK

    def _send(self, value: str) -> bytes:
        port_text, _, data = value.partition(":")
        if not self.radio.joined:
            return _status("AT_NO_NETWORK_JOINED")
        if self._busy.is_set() or self._busy_sends > 0:
            self._busy_sends = max(0, self._busy_sends - 1)
            return _status("AT_BUSY_ERROR")
        limit = max_payload(self.radio.device.mac.dr)
        if (
            not port_text.isdigit()
            or not 1 <= int(port_text) <= 223
            or len(data) % 2
            or not re.fullmatch(r"[0-9A-Fa-f]+", data)
            or limit is None
            or len(data) // 2 > limit.n
        ):
            return _status("AT_PARAM_ERROR")
        port, payload = int(port_text), bytes.fromhex(data)
        confirmed = self.settings["CFM"] == "1"
        self.answer_later(lambda: self._send_task(port, payload, confirmed), self._busy)
        return OK

    def _on_band(self) -> bool:
        return self.settings["BAND"] == BAND_AS923_1

    def _join_task(self) -> list[str]:
        if self._on_band() and self.radio.join():
            return ["+EVT:JOINED"]
        return ["+EVT:JOIN FAILED" if self.legacy_events else "+EVT:JOIN_FAILED_RX_TIMEOUT"]

    def _send_task(self, port: int, payload: bytes, confirmed: bool) -> list[str]:
        acked, downlink = False, None
        # a join the host started meanwhile (after giving up on this send) dropped the session:
        # the frame does not go out, as on the module
        if self._on_band() and self.radio.joined:
            acked, downlink = self.radio.send(port, payload, confirmed=confirmed)
        if not confirmed:
            lines = ["+EVT:TX_DONE"]
        elif self.legacy_events:
            lines = [f"+EVT:SEND CONFIRMED {'OK' if acked else 'FAILED'}"]
        else:
            lines = ["+EVT:SEND_CONFIRMED_OK" if acked else "+EVT:SEND_CONFIRMED_FAILED(4)"]
        if downlink is not None and downlink.fport and downlink.payload:
            rssi, snr, hex_ = (
                self.radio.rssi,
                round(self.radio.snr),
                downlink.payload.hex().upper(),
            )
            if self.legacy_events:
                lines += [f"+EVT:RX_1, RSSI {rssi}, SNR {snr}", "+EVT:UNICAST"]
                lines.append(f"+EVT:{downlink.fport}:{hex_}")
            else:
                lines.append(f"+EVT:RX_1:{rssi}:{snr}:UNICAST:{downlink.fport}:{hex_}")
        return lines
