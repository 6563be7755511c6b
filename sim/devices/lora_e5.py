"""A Seeed LoRa-E5 modem (Seeed AT firmware) on a pty, transmitting for real through a simulated
packet forwarder to the gateway's UDP port.

It answers the part of Seeed's AT set the driver uses (``edge/drivers/lorawan/lora_e5.py`` lists
it): every answer repeats the command's name (``+MODE: LWOTAA``), ``AT+JOIN`` and
``AT+MSGHEX``/``AT+CMSGHEX`` print ``Start`` ... ``Done`` around what happened on the air, and an
error is ``+NAME: ERROR(-n)``. ``AT+DR`` and ``AT+ADR`` set the device's MAC layer, where the
network's LinkADRReq moves the data rate when ADR is on (``AT+DR`` then reports the new one).
"""

from __future__ import annotations

import os
import re
import threading

from edge.protocol.airtime import max_payload
from sim.devices.lorawan_modem import ModemRadio
from sim.serial_pty import PtyDevice

COMMAND = re.compile(r"AT\+([A-Z]+)(?:=(.*))?", re.IGNORECASE)
QUOTED_HEX = re.compile(r'"?([0-9A-Fa-f]*)"?')


def _lines(*lines: str) -> bytes:
    return "".join(f"{line}\r\n" for line in lines).encode()


class LoraE5Sim(PtyDevice):
    def __init__(
        self,
        radio: ModemRadio,
        *,
        name: str = "ttyE5",
        link_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        self.radio = radio
        self.mode = "LWABP"  # factory settings; the driver must set what it needs
        self.band = "EU868"
        radio.device.mac.adr, radio.device.mac.dr = True, 0
        self.port = 8
        self.received: list[str] = []
        self._busy = threading.Event()
        super().__init__(name, link_dir=link_dir)

    def on_line(self, line: bytes) -> bytes | None:
        text = line.decode("ascii", "replace").strip()
        self.received.append(text)
        if text.upper() == "AT":
            return _lines("+AT: OK")
        match = COMMAND.fullmatch(text)
        if match is None:
            return _lines("+AT: ERROR(-1)")
        name, value = match.group(1).upper(), match.group(2)
        handler = getattr(self, f"_cmd_{name.lower()}", None)
        if handler is None:
            return _lines(f"+{name}: ERROR(-1)")
        return handler(value)

    # -- settings -----------------------------------------------------------------------------
    def _cmd_mode(self, value: str | None) -> bytes:
        if value is not None:
            if value.upper() not in ("LWOTAA", "LWABP", "TEST"):
                return _lines("+MODE: ERROR(-1)")
            self.mode = value.upper()
        return _lines(f"+MODE: {self.mode}")

    @property
    def dr(self) -> int:
        return self.radio.device.mac.dr

    def _cmd_dr(self, value: str | None) -> bytes:
        if value is None:
            return _lines(f"+DR: DR{self.dr}", f"+DR: {self.band} DR{self.dr}")
        if value.isdigit() and 0 <= int(value) <= 7:
            self.radio.device.mac.dr = int(value)
            return _lines(f"+DR: DR{self.dr}")
        if value.upper() in ("EU868", "US915", "AS923", "KR920", "IN865", "AU915"):
            self.band = value.upper()
            return _lines(f"+DR: {self.band}")
        return _lines("+DR: ERROR(-1)")

    def _cmd_class(self, value: str | None) -> bytes:
        return _lines(f"+CLASS: {(value or 'A').upper()}")

    def _cmd_adr(self, value: str | None) -> bytes:
        mac = self.radio.device.mac
        if value is not None:
            if value.upper() not in ("ON", "OFF"):
                return _lines("+ADR: ERROR(-1)")
            mac.adr = value.upper() == "ON"
        return _lines(f"+ADR: {'ON' if mac.adr else 'OFF'}")

    def _cmd_port(self, value: str | None) -> bytes:
        if value is not None:
            if not value.isdigit() or not 1 <= int(value) <= 223:
                return _lines("+PORT: ERROR(-1)")
            self.port = int(value)
        return _lines(f"+PORT: {self.port}")

    def _cmd_id(self, value: str | None) -> bytes:
        device = self.radio.device
        if value is not None:
            field, _, raw = value.partition(",")
            digits = QUOTED_HEX.fullmatch(raw.strip())
            if digits is None or len(digits.group(1)) != 16 or field not in ("DevEui", "AppEui"):
                return _lines("+ID: ERROR(-1)")
            setattr(
                device, "dev_eui" if field == "DevEui" else "join_eui", int(digits.group(1), 16)
            )
        return _lines(
            f"+ID: DevEui, {_colons(device.dev_eui)}", f"+ID: AppEui, {_colons(device.join_eui)}"
        )

    def _cmd_key(self, value: str | None) -> bytes:
        field, _, raw = (value or "").partition(",")
        digits = QUOTED_HEX.fullmatch(raw.strip())
        if field.upper() != "APPKEY" or digits is None or len(digits.group(1)) != 32:
            return _lines("+KEY: ERROR(-1)")
        self.radio.device.app_key = bytes.fromhex(digits.group(1))
        return _lines(f"+KEY: APPKEY {digits.group(1).upper()}")

    def _cmd_reset(self, _value: str | None) -> bytes:
        self.radio.forget_session()
        self._busy.clear()
        return _lines("+RESET: OK")

    # -- the air --------------------------------------------------------------------------------
    def _cmd_join(self, _value: str | None) -> bytes:
        if self._busy.is_set():
            return _lines("+JOIN: LoRaWAN modem is busy")
        if self.mode != "LWOTAA":
            return _lines("+JOIN: ERROR(-1)")
        self.answer_later(self._join_task, self._busy)
        return _lines("+JOIN: Start", "+JOIN: NORMAL")

    def _cmd_msghex(self, value: str | None) -> bytes:
        return self._send("MSGHEX", value, confirmed=False)

    def _cmd_cmsghex(self, value: str | None) -> bytes:
        return self._send("CMSGHEX", value, confirmed=True)

    def _send(self, name: str, value: str | None, *, confirmed: bool) -> bytes:
        digits = QUOTED_HEX.fullmatch((value or "").replace(" ", ""))
        if digits is None or len(digits.group(1)) % 2:
            return _lines(f"+{name}: ERROR(-1)")
        if not self.radio.joined:
            return _lines(f"+{name}: Please join network first")
        if self._busy.is_set():
            return _lines(f"+{name}: LoRaWAN modem is busy")
        payload = bytes.fromhex(digits.group(1))
        limit = max_payload(self.dr)
        if limit is None or len(payload) > limit.n:
            return _lines(f"+{name}: Length error {len(payload)}")
        port = self.port
        self.answer_later(lambda: self._send_task(name, port, payload, confirmed), self._busy)
        return _lines(f"+{name}: Start") + (_lines(f"+{name}: Wait ACK") if confirmed else b"")

    def _join_task(self) -> list[str]:
        if self.band == "AS923" and self.radio.join():
            addr = self.radio.device.dev_addr or 0
            net = "000000"
            return [
                "+JOIN: Network joined",
                f"+JOIN: NetID {net} DevAddr {_colons(addr, 4)}",
                "+JOIN: Done",
            ]
        return ["+JOIN: Join failed", "+JOIN: Done"]

    def _send_task(self, name: str, port: int, payload: bytes, confirmed: bool) -> list[str]:
        acked, downlink = False, None
        if self.band == "AS923" and self.radio.joined:  # a join meanwhile dropped the session
            acked, downlink = self.radio.send(port, payload, confirmed=confirmed)
        lines = []
        if acked:
            lines.append(f"+{name}: ACK Received")
        if downlink is not None and downlink.fport and downlink.payload:
            lines.append(f'+{name}: PORT: {downlink.fport}; RX: "{downlink.payload.hex().upper()}"')
        if downlink is not None:
            lines.append(f"+{name}: RXWIN1, RSSI {self.radio.rssi}, SNR {self.radio.snr:.1f}")
        return [*lines, f"+{name}: Done"]


def _colons(value: int, octets: int = 8) -> str:
    """How the LoRa-E5 prints an EUI or DevAddr: ``2C:F7:F1:20:24:90:01:38``."""
    return ":".join(f"{b:02X}" for b in value.to_bytes(octets, "big"))
