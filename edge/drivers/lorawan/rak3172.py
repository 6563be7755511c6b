"""RAKwireless RAK3172 (RUI3 firmware) LoRaWAN modem on a UART, 115200 8N1.

The command set is RAKwireless' "RUI3 AT Command Manual" (docs.rakwireless.com, RUI3 > Serial
Operating Modes > AT Command Manual): every command ends in a status line, ``OK`` or
``AT_ERROR``, ``AT_PARAM_ERROR``, ``AT_BUSY_ERROR``, ``AT_NO_NETWORK_JOINED`` ...; ``AT+JOIN`` and
``AT+SEND`` answer ``OK`` at once and report the outcome later as ``+EVT:`` lines. Used here:

=================== ======================================================================
``AT+NWM=1``        LoRaWAN, not P2P (the module restarts when this changes)
``AT+BAND=8``       AS923-1 (0 EU433, 1 CN470, 2 RU864, 3 IN865, 4 EU868, 5 US915, 6 AU915,
                    7 KR920, 8 AS923-1, 9 AS923-2)
``AT+NJM=1``        OTAA; ``AT+CLASS=A``
``AT+DEVEUI=``,     keys, MSB first, hex
``AT+APPEUI=``,
``AT+APPKEY=``
``AT+ADR=0|1``,     adaptive data rate; data rate (AS923: DR2..DR5)
``AT+DR=n``
``AT+CFM=0|1``      unconfirmed or confirmed uplinks
``AT+JOIN=1:0:8:1`` join now, no auto-join, 8 s between attempts, one attempt (our own retry)
``AT+SEND=p:hex``   one uplink on fPort p
``ATZ``             restart (no status line; the banner ends "Current Work Mode: LoRaWAN.")
=================== ======================================================================

Events, in both spellings: firmware since RUI3 3.2 writes ``+EVT:JOINED``,
``+EVT:JOIN_FAILED_RX_TIMEOUT``, ``+EVT:TX_DONE``, ``+EVT:SEND_CONFIRMED_OK``,
``+EVT:SEND_CONFIRMED_FAILED(4)``, ``+EVT:RX_1:-70:8:UNICAST:10:ABCD`` (window, RSSI, SNR, kind,
fPort, payload); earlier firmware wrote ``+EVT:JOIN FAILED``, ``+EVT:SEND CONFIRMED OK`` and a
downlink as three lines, ``+EVT:RX_1, RSSI -70, SNR 8`` / ``+EVT:UNICAST`` / ``+EVT:10:ABCD``.
"""

from __future__ import annotations

import logging
import re
import time

from edge.drivers.lorawan import Downlink, ModemConfig, ModemError, Reason
from edge.drivers.lorawan.at import AtChannel, redact
from edge.drivers.serialport import SerialPort

log = logging.getLogger(__name__)

BAUDRATE = 115200
BAND_AS923_1 = 8
EVENT = "+EVT:"
STATUS_REASONS: dict[str, Reason] = {
    "AT_BUSY_ERROR": "busy",
    "AT_NO_NETWORK_JOINED": "not_joined",
    "AT_DUTYCYLE_RESTRICTED": "busy",  # sic, as the firmware spells it
}
JOIN_RESULTS = ("JOINED", "JOIN_FAILED")
SEND_RESULTS = ("TX_DONE", "SEND_CONFIRMED_OK", "SEND_CONFIRMED_FAILED")
EVENT_NAME = re.compile(r"\s*([A-Za-z0-9_ ]+?)\s*(?=[:(,]|$)")
OLD_RX = re.compile(r"RSSI\s*(-?\d+).*SNR\s*(-?[\d.]+)")
BOOT_WAIT_S = 1.0


def event_name(line: str) -> str:
    """``+EVT:SEND CONFIRMED OK`` and ``+EVT:SEND_CONFIRMED_OK`` are both SEND_CONFIRMED_OK."""
    match = EVENT_NAME.match(line[len(EVENT) :]) if line.startswith(EVENT) else None
    return match.group(1).replace(" ", "_").upper() if match else ""


def is_status(line: str) -> bool:
    return line == "OK" or line.startswith("AT_")


class Rak3172:
    def __init__(self, config: ModemConfig) -> None:
        self.config = config
        self.at = AtChannel(
            SerialPort(config.port, config.baudrate or BAUDRATE), lambda s: s.startswith(EVENT)
        )
        self.downlinks: list[Downlink] = []
        self._confirm: bool | None = None  # AT+CFM as last set, to set it only on change
        self._rx_meta: tuple[int | None, float | None] = (None, None)  # old three-line RX

    # -- the Modem interface ----------------------------------------------------------------
    def configure(self) -> None:
        cfg = self.config
        self._command("AT")
        if self._query("NWM") != "1":
            self._restart("AT+NWM=1")
        self._command(f"AT+BAND={BAND_AS923_1}")
        self._command("AT+NJM=1")
        self._command("AT+CLASS=A")
        for command, value in (
            ("AT+DEVEUI", cfg.dev_eui),
            ("AT+APPEUI", cfg.join_eui),
            ("AT+APPKEY", cfg.app_key()),
        ):
            if value is not None:
                self._command(f"{command}={value.upper()}")
        self._command(f"AT+ADR={int(cfg.adr)}")
        self._command(f"AT+DR={cfg.data_rate}")
        self._set_confirm(False)

    def join(self) -> bool:
        self.at.discard(lambda s: event_name(s).startswith(JOIN_RESULTS))
        self._command("AT+JOIN=1:0:8:1")
        wait_s = self.config.join_timeout_s
        line = self.at.wait(lambda s: event_name(s).startswith(JOIN_RESULTS), wait_s)
        if line is None:
            raise ModemError("timeout", f"no join result in {wait_s:g} s")
        return event_name(line) == "JOINED"

    def send(self, port: int, payload: bytes, *, confirmed: bool) -> None:
        self._set_confirm(confirmed)
        self.at.discard(lambda s: event_name(s) in SEND_RESULTS)
        self._command(f"AT+SEND={port}:{payload.hex().upper()}")
        wanted = SEND_RESULTS[1:] if confirmed else SEND_RESULTS[:1]
        line = self.at.wait(lambda s: event_name(s) in wanted, self.config.send_timeout_s)
        self.at.drain()  # a downlink's +EVT:RX_1 follows the outcome at once
        self._collect_downlinks()
        if line is None:
            waited = self.config.send_timeout_s
            raise ModemError("timeout", f"no {' or '.join(wanted)} in {waited:g} s")
        if event_name(line) == "SEND_CONFIRMED_FAILED":
            raise ModemError("no_ack", "the network did not acknowledge the confirmed uplink")

    def data_rate(self) -> int:
        if not self.config.adr:
            return self.config.data_rate
        return int(self._query("DR"))

    def reset(self) -> None:
        self._restart("ATZ")

    def close(self) -> None:
        self.at.port.close()

    # -- internals ----------------------------------------------------------------------------
    def _command(self, command: str) -> list[str]:
        """Run ``command``; its value lines. A status other than OK raises ModemError."""
        lines = self.at.exchange(command, is_status, self.config.command_timeout_s)
        status = lines.pop()
        if status != "OK":
            raise ModemError(STATUS_REASONS.get(status, "rejected"), f"{redact(command)}: {status}")
        return lines

    def _query(self, name: str) -> str:
        """``AT+NAME=?``; newer firmware answers ``AT+NAME=value``, older just ``value``."""
        lines = self._command(f"AT+{name}=?")
        if not lines:
            raise ModemError("rejected", f"AT+{name}=? gave no value")
        return lines[-1].removeprefix(f"AT+{name}=").strip()

    def _set_confirm(self, confirmed: bool) -> None:
        if self._confirm is not confirmed:
            self._command(f"AT+CFM={int(confirmed)}")
            self._confirm = confirmed

    def _restart(self, command: str) -> None:
        """A command after which the module reboots without a status line; wait until it
        answers ``AT`` again."""
        self.at.write(command)
        time.sleep(BOOT_WAIT_S)
        self.at.clear()
        self._confirm = None
        deadline = time.monotonic() + self.config.command_timeout_s * 3
        while True:
            try:
                self._command("AT")
                return
            except ModemError:
                if time.monotonic() > deadline:
                    raise
            self.at.clear()

    def _collect_downlinks(self) -> None:
        for line in list(self.at.events):
            name = event_name(line)
            if not (name.startswith("RX_") or name.isdigit() or name == "UNICAST"):
                continue
            self.at.events.remove(line)
            downlink = self._downlink(name, line[len(EVENT) :])
            if downlink is not None:
                self.downlinks.append(downlink)

    def _downlink(self, name: str, body: str) -> Downlink | None:
        """One downlink event line; None for the parts of the old three-line form that carry no
        payload, and for a downlink that carried none (an ACK, MAC commands on fPort 0)."""
        try:
            if name.isdigit():  # old form, third line: "10:ABCD"
                port, _, data = body.partition(":")
                rssi, snr = self._rx_meta
            elif name.startswith("RX_") and body.count(":") >= 5:  # RX_1:-70:8:UNICAST:10:ABCD
                _, rssi_text, snr_text, _, port, data = body.split(":", 5)
                rssi, snr = int(rssi_text), float(snr_text)
            else:  # old form, first line "RX_1, RSSI -70, SNR 8", or "UNICAST"
                if meta := OLD_RX.search(body):
                    self._rx_meta = (int(meta.group(1)), float(meta.group(2)))
                return None
            if int(port) == 0 or not data:
                return None
            if not 1 <= int(port) <= 223:  # LoRaWAN 1.0.4 §4.3.2: application FPorts
                raise ValueError(f"FPort {port}")
            return Downlink(int(port), bytes.fromhex(data), rssi, snr)
        except ValueError:
            log.warning("unreadable downlink event", extra={"fields": {"line": body[:60]}})
            return None
