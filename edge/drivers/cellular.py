"""LTE modems on a UART (SIMCom SIM7600, Quectel EC25/EG25): link health, power recovery, GNSS.

The tracker's data does not pass through here: the modem brings up a network interface (RNDIS,
ECM or QMI, set up once by the OS) and MQTT over TLS runs on it through the ordinary uplink and
outbox. On the AT port this driver asks what a technician would (3GPP TS 27.007):

* ``AT+CSQ`` — signal: ``+CSQ: <rssi>,<ber>``, rssi 0..31 is -113 + 2n dBm, 99 unknown (§8.5);
* ``AT+CEREG?`` (LTE, §10.1.22) then ``AT+CREG?`` (circuit-switched, §7.2):
  ``+CEREG: <n>,<stat>[,...]``, stat 1 home, 5 roaming, 2 searching, 3 denied, 0 not searching;
* ``AT+CPIN?`` — the SIM: ``+CPIN: READY``, ``SIM PIN``, ``SIM PUK``, or ``+CME ERROR: 10`` when
  no SIM is inserted (§8.3, §9.2).

A modem that stops answering (firmware hang, brown-out) is power-cycled through a gpiozero output
that switches its supply, and the cycle is counted: after ``hang_after`` commands in a row without
an answer, the supply goes off for ``power_off_s`` and the driver waits ``boot_s`` for the modem.

The GNSS inside the modem is read by AT command, behind the same ``Gnss`` interface as an NMEA
receiver (``edge.drivers.gnss``):

* SIM7600 ``AT+CGPSINFO`` (SIM7500/SIM7600 AT manual §21):
  ``+CGPSINFO: ddmm.mmmmmm,N,dddmm.mmmmmm,E,ddmmyy,hhmmss.s,alt,speed_knots,course``, all fields
  empty without a fix;
* Quectel ``AT+QGPSLOC=2`` (EC25/EG25 GNSS AT manual §2.3):
  ``+QGPSLOC: hhmmss.sss,lat,lon,hdop,alt,fix,cog,spkm,spkn,ddmmyy,nsat`` in decimal degrees, or
  ``+CME ERROR: 516`` ("not fixed now").
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from gpiozero import DigitalOutputDevice

from edge.drivers.closing import Closing
from edge.drivers.gnss import KNOT_MPS, Fix, Status, degrees_from_nmea
from edge.drivers.lorawan import ModemError
from edge.drivers.lorawan.at import AtChannel
from edge.drivers.serialport import SerialPort
from edge.protocol.tracker import Position

log = logging.getLogger(__name__)

Registration = Literal["home", "roaming", "searching", "denied", "not_registered", "unknown"]
SimState = Literal["ready", "pin", "puk", "absent", "error", "unknown"]
REGISTRATION: dict[str, Registration] = {
    "0": "not_registered",
    "1": "home",
    "2": "searching",
    "3": "denied",
    "4": "unknown",
    "5": "roaming",
}
# Lines a modem says on its own after power-up; they are not answers to anything.
BOOT_LINES = ("RDY", "SMS DONE", "PB DONE", "+QIND", "*ATREADY", "+CGEV")
CME = re.compile(r"^\+CME ERROR:\s*(\d+)$")
CME_NO_SIM = "10"
CME_NO_FIX = "516"
COUNTERS = ("commands", "no_answer", "errors", "power_cycles", "recovered")


@dataclass(frozen=True)
class LinkHealth:
    """What the modem says about the cellular link; None where it did not answer."""

    rssi_dbm: int | None
    registration: Registration
    sim: SimState
    answering: bool

    @property
    def registered(self) -> bool:
        return self.registration in ("home", "roaming")

    def data(self) -> dict[str, object]:
        """The fields a tracker reports (``rssi`` in dBm, ``reg``, ``sim``)."""
        return {"rssi": self.rssi_dbm, "reg": self.registration, "sim": self.sim}


@dataclass
class PowerConfig:
    """The GPIO that switches the modem's supply (through a load switch or a transistor)."""

    pin: int | str | None = None  # None: no power control; a hung modem is only reported
    active_high: bool = True
    power_off_s: float = 3.0  # long enough for the supply capacitors to drain
    boot_s: float = 15.0  # SIM7600 and EC25 answer AT within ~12 s of power-up
    hang_after: int = 3  # commands in a row without an answer before a power cycle


def _done(line: str) -> bool:
    return line in ("OK", "ERROR") or CME.match(line) is not None


class CellularModem(Closing):
    """An AT modem on a ``SerialPort``; ``power`` switches its supply (may be None)."""

    def __init__(
        self,
        port: SerialPort,
        power: DigitalOutputDevice | None = None,
        config: PowerConfig | None = None,
        *,
        command_timeout_s: float = 2.0,
    ) -> None:
        self.port = port
        self.power = power
        self.config = config or PowerConfig()
        self.command_timeout_s = command_timeout_s
        self.at = AtChannel(port, lambda line: line.startswith(BOOT_LINES))
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._silent_in_a_row = 0
        if power is not None:
            power.on()

    def command(self, command: str, timeout_s: float | None = None) -> list[str] | None:
        """The answer lines to ``command`` (the last is OK, ERROR or +CME ERROR), or None when
        the modem did not answer; enough of those in a row and it is power-cycled."""
        self.counters["commands"] += 1
        try:
            lines = self.at.exchange(command, _done, timeout_s or self.command_timeout_s)
        except ModemError as exc:
            self.counters["no_answer"] += 1
            self._silent_in_a_row += 1
            log.debug("modem: %s: %s", command, exc)
            if self._silent_in_a_row >= self.config.hang_after:
                self.power_cycle()
            return None
        if self._silent_in_a_row >= self.config.hang_after:
            self.counters["recovered"] += 1
        self._silent_in_a_row = 0
        if lines[-1] != "OK":
            self.counters["errors"] += 1
        return lines

    def health(self) -> LinkHealth:
        """Signal, registration and SIM, asked now."""
        csq = _field(self.command("AT+CSQ"), "+CSQ:")
        rssi = None
        if csq is not None and (n := csq.split(",")[0].strip()).isdigit() and int(n) <= 31:
            rssi = -113 + 2 * int(n)
        registration: Registration = "unknown"
        answering = csq is not None
        for query, prefix in (("AT+CEREG?", "+CEREG:"), ("AT+CREG?", "+CREG:")):
            answer = _field(self.command(query), prefix)
            if answer is None:
                continue
            answering = True
            parts = answer.split(",")
            registration = REGISTRATION.get(parts[1].strip() if len(parts) > 1 else "", "unknown")
            if registration in ("home", "roaming"):
                break
        return LinkHealth(rssi, registration, self._sim(), answering)

    def power_cycle(self) -> bool:
        """Switch the supply off and on and wait for the modem; True if it answers again."""
        if self.power is None:
            log.warning("modem not answering and no power pin configured")
            self._silent_in_a_row = 0
            return False
        self.counters["power_cycles"] += 1
        log.warning("modem not answering: power cycle", extra={"fields": self.counters})
        self.power.off()
        time.sleep(self.config.power_off_s)
        self.port.close()  # a USB modem's ttyUSB node goes away with its power
        self.at.clear()
        self.power.on()
        deadline = time.monotonic() + self.config.boot_s
        self._silent_in_a_row = 0
        while time.monotonic() < deadline:
            try:
                if self.at.exchange("AT", _done, 1.0)[-1] == "OK":
                    self.counters["recovered"] += 1
                    return True
            except ModemError:
                time.sleep(0.2)  # the port may not exist yet while the modem boots
        self._silent_in_a_row = self.config.hang_after - 1  # one more silence: cycle again
        return False

    def _sim(self) -> SimState:
        lines = self.command("AT+CPIN?")
        if lines is None:
            return "unknown"
        if (m := CME.match(lines[-1])) is not None:
            return "absent" if m.group(1) == CME_NO_SIM else "error"
        state = (_field(lines, "+CPIN:") or "").strip()
        return {"READY": "ready", "SIM PIN": "pin", "SIM PUK": "puk"}.get(state, "error")

    def close(self) -> None:
        self.port.close()
        if self.power is not None:
            self.power.close()


class ModemGnss(Closing):
    """The GNSS receiver inside a cellular modem, polled by AT command; see the module doc."""

    start_command: str
    query: str
    prefix: str
    source: str

    def __init__(self, modem: CellularModem) -> None:
        self.modem = modem
        self.status: Status = "timeout"
        self.counters: dict[str, int] = dict.fromkeys(
            ("fixes", "no_fix", "malformed", "timeout", "errors"), 0
        )
        self._started = False

    def read(self, timeout_s: float = 2.0) -> Fix | None:
        """Ask the modem for its position now; None with ``status`` saying why not."""
        if not self._started:
            # Starting an already running engine answers ERROR: either way it runs afterwards.
            self._started = self.modem.command(self.start_command, timeout_s) is not None
        lines = self.modem.command(self.query, timeout_s)
        if lines is None:
            self._started = False  # after a power cycle the engine is off again
            return self._none("timeout")
        if (m := CME.match(lines[-1])) is not None and m.group(1) == CME_NO_FIX:
            return self._none("no_fix")
        answer = _field(lines, self.prefix)
        if answer is None:
            self.counters["errors"] += 1
            return self._none("no_fix")
        try:
            fix = self._parse([part.strip() for part in answer.split(",")])
            if fix is not None:
                _sendable(fix)
        except (ValueError, IndexError) as exc:
            log.debug("%s: malformed %s answer: %s", self.source, self.query, exc)
            self.counters["malformed"] += 1
            return self._none("no_fix")
        if fix is None:
            return self._none("no_fix")
        self.counters["fixes"] += 1
        self.status = "fix"
        return fix

    def _parse(self, fields: list[str]) -> Fix | None:
        raise NotImplementedError

    def _none(self, status: Status) -> None:
        self.status = status
        self.counters[status] += 1

    def close(self) -> None:
        self.modem.close()


class Sim7600Gnss(ModemGnss):
    start_command = "AT+CGPS=1"
    query = "AT+CGPSINFO"
    prefix = "+CGPSINFO:"
    source = "sim7600"

    def _parse(self, fields: list[str]) -> Fix | None:
        if not any(fields):
            return None  # "+CGPSINFO: ,,,,,,,,": no fix yet
        lat, ns, lon, ew, ddmmyy, hhmmss, alt, knots, course = fields[:9]
        return Fix(
            ts=_utc(ddmmyy, hhmmss),
            lat=degrees_from_nmea(lat, ns, 90),
            lon=degrees_from_nmea(lon, ew, 180),
            altitude_m=float(alt) if alt else None,
            speed_mps=round(float(knots) * KNOT_MPS, 2) if knots else None,
            course_deg=float(course) if course else None,
            talker="GN",
            source=self.source,
        )


class QuectelGnss(ModemGnss):
    start_command = "AT+QGPS=1"
    query = "AT+QGPSLOC=2"
    prefix = "+QGPSLOC:"
    source = "quectel"

    def _parse(self, fields: list[str]) -> Fix | None:
        hhmmss, lat, lon, hdop, alt, fix, cog, spkm, _spkn, ddmmyy, nsat = fields[:11]
        if fix not in ("2", "3"):
            return None
        latitude, longitude = float(lat), float(lon)
        if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
            raise ValueError(f"position out of range: {lat},{lon}")
        return Fix(
            ts=_utc(ddmmyy, hhmmss),
            lat=latitude,
            lon=longitude,
            hdop=float(hdop),
            satellites=int(nsat),
            altitude_m=float(alt),
            speed_mps=round(float(spkm) / 3.6, 2),
            course_deg=float(cog),
            mode="3d" if fix == "3" else "2d",
            talker="GN",
            source=self.source,
        )


MODEMS: dict[str, type[ModemGnss]] = {"sim7600": Sim7600Gnss, "quectel": QuectelGnss}


def open_modem(
    port: str, baudrate: int = 115200, power: PowerConfig | None = None
) -> CellularModem:
    """A modem on the serial device at ``port``; its supply on ``power.pin`` if one is given."""
    power = power or PowerConfig()
    output = None
    if power.pin is not None:
        output = DigitalOutputDevice(power.pin, active_high=power.active_high, initial_value=True)
    return CellularModem(SerialPort(port, baudrate), output, power)


def _sendable(fix: Fix) -> None:
    """A garbled answer can parse into numbers no position has (a latitude of -99°, a NaN or
    negative speed, -7 satellites: found by fuzzing, sim/fuzz_targets.py). Such a fix is a
    malformed answer (``ValueError``), never a position the city would refuse and the tracker
    would have sent in vain."""
    Position.from_data(
        Position(
            fix.lat, fix.lon, fix.accuracy_m, fix.speed_mps, hdop=fix.hdop, sats=fix.satellites
        ).data()
    )


def _field(lines: list[str] | None, prefix: str) -> str | None:
    """The text after ``prefix`` on the answer line that has it."""
    for line in lines or ():
        if line.startswith(prefix):
            return line[len(prefix) :].strip()
    return None


def _utc(ddmmyy: str, hhmmss: str) -> datetime:
    if not (re.fullmatch(r"\d{6}", ddmmyy) and re.fullmatch(r"\d{6}(\.\d+)?", hhmmss)):
        raise ValueError(f"not a date and time: {ddmmyy!r} {hhmmss!r}")
    whole = datetime.strptime(ddmmyy + hhmmss[:6], "%d%m%y%H%M%S")
    return whole.replace(microsecond=round(float("0" + hhmmss[6:]) * 1e6), tzinfo=UTC)
