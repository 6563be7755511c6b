"""The LTE modem driver and the modems' built-in GNSS, against simulated modems on a pty."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge.drivers.cellular import PowerConfig, QuectelGnss, Sim7600Gnss, open_modem
from sim.devices.cellular_modem import CellularModemSim
from sim.serial_pty import PtyDevice

AT = datetime(2026, 12, 1, 23, 5, 7, tzinfo=UTC)
SCHOOL = (38.10412, 140.03565)


def test_link_health_signal_registration_and_sim():
    with CellularModemSim() as sim, open_modem(sim.path) as modem:
        health = modem.health()
        assert (health.rssi_dbm, health.registration, health.sim) == (-85, "home", "ready")
        assert health.registered and health.answering
        sim.registration = "2"  # lost: searching
        sim.rssi_dbm = None
        health = modem.health()
        assert (health.rssi_dbm, health.registration) == (None, "searching")
        assert not health.registered
        sim.registration = "5"  # regained, roaming
        assert modem.health().registration == "roaming"
        sim.sim = None
        assert modem.health().sim == "absent"
        sim.sim = "SIM PIN"
        assert modem.health().sim == "pin"
        assert sim.errors == []


def test_published_answer_lines_parse():
    """Answer lines exactly as the 3GPP and vendor manuals print them."""
    answers = {
        "AT+CSQ": "\r\n+CSQ: 20,99\r\n\r\nOK\r\n",
        "AT+CEREG?": '\r\n+CEREG: 2,5,"1A2B","01A2B3C4",7\r\n\r\nOK\r\n',
        "AT+CREG?": "\r\n+CREG: 0,1\r\n\r\nOK\r\n",
        "AT+CPIN?": "\r\n+CPIN: READY\r\n\r\nOK\r\n",
        "AT+CGPS=1": "\r\nOK\r\n",
        "AT+CGPSINFO": "\r\n+CGPSINFO: 3113.343286,N,12121.234064,E,250311,072809.3,44.1,0.0,0\r\n"
        "\r\nOK\r\n",
    }
    reply = lambda line: answers.get(line.decode(), "").encode()  # noqa: E731
    with PtyDevice(on_line=reply) as dev, open_modem(dev.path) as modem:
        health = modem.health()
        assert (health.rssi_dbm, health.registration, health.sim) == (-73, "roaming", "ready")
        fix = Sim7600Gnss(modem).read()
        assert fix is not None and fix.source == "sim7600"
        assert fix.lat == pytest.approx(31 + 13.343286 / 60)
        assert fix.lon == pytest.approx(121 + 21.234064 / 60)
        assert fix.ts == datetime(2011, 3, 25, 7, 28, 9, 300000, tzinfo=UTC)
        assert fix.altitude_m == 44.1 and fix.hdop is None


def test_quectel_published_answer_and_no_fix_516():
    answers = {
        "AT+QGPS=1": "\r\nOK\r\n",
        "AT+QGPSLOC=2": "\r\n+QGPSLOC: 061951.000,31.16617,121.38223,1.0,7.8,3,0.00,0.0,0.0,110513,"
        "09\r\n\r\nOK\r\n",
    }
    reply = lambda line: answers.get(line.decode(), "").encode()  # noqa: E731
    with PtyDevice(on_line=reply) as dev, open_modem(dev.path) as modem:
        fix = QuectelGnss(modem).read()
        assert fix is not None
        assert (fix.lat, fix.lon, fix.hdop, fix.satellites) == (31.16617, 121.38223, 1.0, 9)
        assert fix.ts == datetime(2013, 5, 11, 6, 19, 51, tzinfo=UTC)
        answers["AT+QGPSLOC=2"] = "\r\n+CME ERROR: 516\r\n"
        gnss = QuectelGnss(modem)
        assert gnss.read() is None and gnss.status == "no_fix"


@pytest.mark.parametrize(("model", "cls"), [("sim7600", Sim7600Gnss), ("quectel", QuectelGnss)])
def test_modem_gnss_fix_and_no_fix_from_the_simulator(model, cls):
    where = {"now": None}
    with CellularModemSim(model, position=lambda: where["now"]) as sim:
        with open_modem(sim.path) as modem:
            gnss = cls(modem)
            assert gnss.read() is None and gnss.status == "no_fix"  # indoors
            where["now"] = (*SCHOOL, AT)
            fix = gnss.read()
            assert fix is not None and gnss.status == "fix"
            assert (fix.lat, fix.lon) == (pytest.approx(SCHOOL[0]), pytest.approx(SCHOOL[1]))
            assert fix.ts == AT
            assert gnss.counters["fixes"] == 1 and gnss.counters["no_fix"] == 1
        assert sim.errors == []


def test_a_hung_modem_is_power_cycled_and_counted(pins):
    power = PowerConfig(pin=17, power_off_s=0.1, boot_s=3.0, hang_after=2)
    pin = pins.pin(17)
    with CellularModemSim(power_pin=pin, boot_s=0.2) as sim:
        with open_modem(sim.path, power=power) as modem:
            modem.command_timeout_s = 0.3
            assert modem.health().registered
            sim.hang()
            first = modem.health()  # CSQ and CEREG go unanswered: the second silence cycles
            assert modem.counters["power_cycles"] == 1
            assert first.registered and first.sim == "ready"  # the rest of the check got answers
            assert [s.state for s in pin.states][-2:] == [False, True]  # off, then on again
            assert modem.counters["recovered"] >= 1
            assert not sim.hung
            health = modem.health()
            assert health.registered and health.answering
        assert sim.errors == []


def test_without_a_power_pin_a_hung_modem_is_reported_not_cycled():
    with CellularModemSim() as sim, open_modem(sim.path) as modem:
        modem.command_timeout_s = 0.2
        sim.hang()
        health = modem.health()
        assert not health.answering and health.registration == "unknown"
        assert modem.counters["power_cycles"] == 0 and modem.counters["no_answer"] >= 3
