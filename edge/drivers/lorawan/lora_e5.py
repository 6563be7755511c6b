"""Seeed LoRa-E5 (STM32WLE5, Seeed's AT firmware) LoRaWAN modem on a UART, 9600 8N1.

Seeed's "LoRa-E5 AT Command Specification" answers every command with lines that repeat its
name, ``+NAME: ...``; an error is ``+NAME: ERROR(-n)``. Sending is synchronous: ``AT+MSGHEX``
(unconfirmed) and ``AT+CMSGHEX`` (confirmed) print ``Start``, what happened, and ``Done``. Used:

========================== ================================================================
``AT+MODE=LWOTAA``         OTAA
``AT+DR=AS923``            the band plan; ``AT+DR=2`` the data rate
``AT+CLASS=A``,            Class A, adaptive data rate on or off
``AT+ADR=ON|OFF``
``AT+ID=DevEui,"…"``,      identity and key
``AT+ID=AppEui,"…"``,
``AT+KEY=APPKEY,"…"``
``AT+JOIN``                ``+JOIN: Network joined`` / ``+JOIN: NetID … DevAddr …`` then
                           ``+JOIN: Done``; ``+JOIN: Join failed``; ``+JOIN: LoRaWAN modem is busy``
``AT+PORT=p``              the fPort of the following uplinks
``AT+MSGHEX="…"``,         ``+MSGHEX: Done`` ends it; ``+CMSGHEX: ACK Received`` before it
``AT+CMSGHEX="…"``         confirms; a downlink is ``+MSGHEX: PORT: 10; RX: "ABCD"``; errors
                           ``Please join network first``, ``LoRaWAN modem is busy``,
                           ``No band in 1234ms`` (duty cycle), ``Length error 12``
``AT+RESET``               ``+RESET: OK``, then the module restarts
========================== ================================================================
"""

from __future__ import annotations

import logging
import re
import time

from edge.drivers.lorawan import Downlink, ModemConfig, ModemError
from edge.drivers.lorawan.at import AtChannel, Match, redact
from edge.drivers.serialport import SerialPort

log = logging.getLogger(__name__)

BAUDRATE = 9600
DOWNLINK = re.compile(r'PORT:\s*(\d+);\s*RX:\s*"([0-9A-Fa-f ]*)"')
RX_META = re.compile(r"RSSI\s*(-?\d+),\s*SNR\s*(-?[\d.]+)")
BUSY = ("LoRaWAN modem is busy", "No band", "No free channel")  # the last two: duty cycle
SEND_OUTCOMES = ("Done", "Please join", "Length error", "ERROR(", *BUSY)
BOOT_WAIT_S = 1.0


def _name(command: str) -> str:
    """``AT+CMSGHEX="01"`` answers as ``+CMSGHEX:``."""
    return command[3:].split("=", 1)[0] if command.startswith("AT+") else "AT"


class LoraE5:
    def __init__(self, config: ModemConfig) -> None:
        self.config = config
        self.at = AtChannel(SerialPort(config.port, config.baudrate or BAUDRATE), lambda s: False)
        self.downlinks: list[Downlink] = []
        self._port: int | None = None  # AT+PORT as last set

    # -- the Modem interface ----------------------------------------------------------------
    def configure(self) -> None:
        cfg = self.config
        self._command("AT")
        self._command("AT+MODE=LWOTAA")
        self._command("AT+DR=AS923")
        self._command("AT+CLASS=A")
        for command, value in (
            ("AT+ID=DevEui", cfg.dev_eui),
            ("AT+ID=AppEui", cfg.join_eui),
            ("AT+KEY=APPKEY", cfg.app_key()),
        ):
            if value is not None:
                self._command(f'{command},"{value.upper()}"')
        self._command(f"AT+ADR={'ON' if cfg.adr else 'OFF'}")
        self._command(f"AT+DR={cfg.data_rate}")
        self._port = None

    def join(self) -> bool:
        lines = self._run(
            "AT+JOIN",
            lambda s: s.endswith(("Done", "Join failed", "busy", "Joined already")),
            self.config.join_timeout_s,
        )
        return any(("joined" in s or "NetID" in s) for s in lines)

    def send(self, port: int, payload: bytes, *, confirmed: bool) -> None:
        if self._port != port:
            self._command(f"AT+PORT={port}")
            self._port = port
        command = f'AT+{"CMSGHEX" if confirmed else "MSGHEX"}="{payload.hex().upper()}"'
        prefix = f"+{_name(command)}: "
        answer = self.at.exchange(
            command,
            lambda s: s.startswith(prefix) and s[len(prefix) :].startswith(SEND_OUTCOMES),
            self.config.send_timeout_s,
        )
        lines = [s.removeprefix(prefix) for s in answer]
        self._collect_downlinks(lines)
        outcome = lines[-1]
        if outcome.startswith("Please join"):
            raise ModemError("not_joined", outcome)
        if outcome.startswith(BUSY):
            raise ModemError("busy", outcome)
        if outcome != "Done":
            raise ModemError("rejected", outcome)
        if confirmed and "ACK Received" not in lines:
            raise ModemError("no_ack", "the network did not acknowledge the confirmed uplink")

    def data_rate(self) -> int:
        if not self.config.adr:
            return self.config.data_rate
        answer = self._command("AT+DR")  # "+DR: DR2" (then the band line, on some firmware)
        for line in answer:
            if match := re.search(r"\bDR(\d)\b", line):
                return int(match.group(1))
        raise ModemError("rejected", f"AT+DR gave no data rate: {answer}")

    def reset(self) -> None:
        self._command("AT+RESET")
        time.sleep(BOOT_WAIT_S)
        self.at.clear()
        self._port = None
        self._command("AT")

    def close(self) -> None:
        self.at.port.close()

    # -- internals ----------------------------------------------------------------------------
    def _command(self, command: str) -> list[str]:
        """A one-answer command: its ``+NAME:`` line. ``ERROR(-n)`` raises ModemError."""
        prefix = f"+{_name(command)}:"
        return self._run(command, lambda s: s.startswith(prefix), self.config.command_timeout_s)

    def _run(self, command: str, done: Match, timeout_s: float) -> list[str]:
        lines = self.at.exchange(command, done, timeout_s)
        if "ERROR(" in lines[-1]:
            raise ModemError("rejected", f"{redact(command)}: {lines[-1]}")
        if lines[-1].endswith("busy"):
            raise ModemError("busy", lines[-1])
        return lines

    def _collect_downlinks(self, lines: list[str]) -> None:
        meta = next((m for s in lines if (m := RX_META.search(s))), None)
        rssi, snr = (int(meta.group(1)), float(meta.group(2))) if meta else (None, None)
        for line in lines:
            match = DOWNLINK.search(line)
            if match is None:
                continue
            try:
                data = bytes.fromhex(match.group(2).replace(" ", ""))
            except ValueError:
                log.warning("unreadable downlink", extra={"fields": {"line": line[:60]}})
                continue
            port = int(match.group(1))
            if port > 223:  # LoRaWAN 1.0.4 §4.3.2: application FPorts are 1..223
                log.warning("downlink on no FPort", extra={"fields": {"line": line[:60]}})
            elif port and data:
                self.downlinks.append(Downlink(port, data, rssi, snr))
