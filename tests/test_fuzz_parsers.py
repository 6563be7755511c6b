"""Property-based fuzzing of the parsers a stranger can reach (sim/fuzz_targets.py): random and
mutated bytes are accepted or rejected with the parser's own error, never a crash. The serial
side (ultrasonic frames) runs through the real driver on a pty. Longer, coverage-guided runs:
``make fuzz`` (bench/fuzz.py)."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from edge.drivers.ultrasonic import open_sensor
from edge.protocol import Envelope
from sim.fuzz_targets import TARGETS, run_one
from sim.serial_pty import PtyDevice

VALID = Envelope("river-01", 7, "2026-11-22T10:00:00.000Z", "level", {"level_m": 1.2}).to_json()


def mutated(seed: bytes) -> st.SearchStrategy[bytes]:
    """``seed`` with bytes flipped, cut or inserted: near-valid input reaches deeper."""
    return st.builds(
        lambda at, cut, insert: seed[:at] + insert + seed[at + cut :],
        st.integers(0, len(seed)),
        st.integers(0, 8),
        st.binary(max_size=8),
    )


@pytest.mark.parametrize("name", sorted(TARGETS))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300) | mutated(VALID))
def test_a_parser_accepts_or_rejects_never_crashes(name, data):
    run_one(name, data)


def test_a_valid_envelope_is_accepted():
    """The fuzz target is the real parser: good input passes it."""
    assert run_one("envelope", VALID)
    assert not run_one("envelope", VALID[:-1])


FRAME_2000 = bytes((0xFF, 0x07, 0xD0, (0xFF + 0x07 + 0xD0) & 0xFF))


@pytest.fixture(scope="module")
def sensor_line():
    """A sensor streaming 2000 mm frames, as a real one streams, for noise to land between."""
    device = PtyDevice("ttyUSB-fuzz")
    device.stream(0.02, lambda: FRAME_2000)
    sensor = open_sensor("a02yyuw", device.path)
    yield device, sensor
    sensor.close()
    device.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(noise=st.binary(min_size=1, max_size=64))
def test_the_ultrasonic_driver_survives_any_bytes_and_still_reads(sensor_line, noise):
    device, sensor = sensor_line
    device.write(noise)
    sample = sensor.read(timeout_s=0.05)  # whatever the noise made of it, a Sample
    assert sample.ok or sample.error
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:  # the noise is behind it: good frames read again
        sample = sensor.read(timeout_s=0.2)
        if sample.ok:
            break
    assert sample.ok and sample.distance_mm == 2000, sample


class FuzzedModem(PtyDevice):
    """A RAK3172 that answers OK to every command and, after a send, puts ``noise`` event lines
    on the wire before the confirmation: what a modem's firmware or a noisy line might say."""

    noise: list[bytes] = []

    def on_line(self, line: bytes) -> bytes | None:
        if line.startswith(b"AT+SEND"):
            events = b"".join(b"+EVT:" + n + b"\r\n" for n in self.noise)
            return b"OK\r\n" + events + b"+EVT:SEND_CONFIRMED_OK\r\n"
        return b"OK\r\n"


@pytest.fixture(scope="module")
def modem_line():
    from edge.drivers.lorawan import ModemConfig
    from edge.drivers.lorawan.rak3172 import Rak3172

    device = FuzzedModem("ttyAT-fuzz")
    modem = Rak3172(ModemConfig(port=device.path, command_timeout_s=1.0, send_timeout_s=2.0))
    yield device, modem
    modem.close()
    device.close()


event_text = st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    noise=st.lists(
        event_text | st.builds(lambda t: b"RX_1:" + t, event_text) | st.just(b"UNICAST"),
        max_size=4,
    )
)
@example(noise=[b"RX_1:-70:8:UNICAST:-5:AB", b"RX_1:-70:8:UNICAST:300:AB"])  # no such fPort
def test_the_at_modem_driver_reads_any_event_lines_without_crashing(modem_line, noise):
    """Unknown, garbled and half-valid downlink events are skipped or read, the uplink's own
    confirmation still counts, and every downlink read is a well-formed one."""
    device, modem = modem_line
    device.noise = noise
    modem.downlinks.clear()
    modem.send(1, b"\x01\x02", confirmed=True)  # raises ModemError on failure, never else
    for downlink in modem.downlinks:
        assert 1 <= downlink.port <= 223 and isinstance(downlink.payload, bytes)


def test_nmea_fuzz_target_reads_a_real_fix():
    """The NMEA target is the bus's and the tracker's real parser: a good RMC+GGA epoch is a fix."""
    from edge.drivers.gnss import NmeaParser

    def sentence(body: str) -> bytes:
        checksum = 0
        for ch in body.encode():
            checksum ^= ch
        return f"${body}*{checksum:02X}\r\n".encode()

    parser = NmeaParser()
    fixes = parser.feed(
        sentence("GPRMC,081836,A,3751.65,S,14507.36,E,000.0,360.0,130998,011.3,E")
        + sentence("GPGGA,081836,3751.65,S,14507.36,E,1,05,1.5,280.2,M,-34.0,M,,")
        + sentence("GPRMC,081837,A,3751.65,S,14507.36,E,000.0,360.0,130998,011.3,E")
    )
    fix = (fixes or [parser.flush()])[0]
    assert fix is not None and abs(fix.lat + 37.8608) < 0.001 and abs(fix.lon - 145.1227) < 0.001


@pytest.fixture(scope="module")
def card_line():
    from edge.drivers.rdm6300 import RDM6300, frame

    device = PtyDevice("ttyRFID-fuzz")
    reader = RDM6300(device.path, hold_gap_s=0.0)
    reader.tap(timeout_s=0.3)  # the port opens on the first read: what comes before is not heard
    device.write(frame(b"\x01\x02\x03\x04\x05"))
    assert reader.tap(timeout_s=2) is not None
    yield device, reader
    reader.close()
    device.close()


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(noise=st.binary(min_size=1, max_size=40), uid=st.binary(min_size=5, max_size=5))
def test_the_rdm6300_driver_survives_any_bytes_and_reads_the_next_tap(card_line, noise, uid):
    from edge.drivers.rdm6300 import frame

    device, reader = card_line
    device.write(noise)
    time.sleep(0.12)  # longer than the module's gap between frames: the noise stands alone
    device.write(frame(uid))
    deadline = time.monotonic() + 2
    card = None
    while card is None and time.monotonic() < deadline:
        card = reader.tap(timeout_s=0.2)
        if card is not None and card.uid != uid:  # a tag id the noise happened to spell
            card = None
    assert card is not None and card.uid == uid


AT_PREFIXES = ("+CGPSINFO: ", "+QGPSLOC: ", "+CSQ: ", "+CEREG: ", "+CREG: ", "+CPIN: ")
weird = st.one_of(
    st.sampled_from(["nan", "inf", "-inf", "1e308", "", "-1", "-9900.0", "99", "1.5.5", "N"]),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.integers(-100_000, 100_000).map(str),
    st.text(alphabet="0123456789.-+eNSEW", max_size=10),
)


def answer(prefix: str, good: str) -> st.SearchStrategy[bytes]:
    """``good`` (a real answer's fields) with one or two fields made weird."""
    fields = good.split(",")

    def spoil(changes: list[tuple[int, str]]) -> bytes:
        spoiled = list(fields)
        for at, value in changes:
            spoiled[at] = value
        return (prefix + ",".join(spoiled)).encode()

    change = st.tuples(st.integers(0, len(fields) - 1), weird)
    return st.lists(change, min_size=1, max_size=2).map(spoil)


# the two GNSS answers, field by field, from real ones (SIM7600 AT+CGPSINFO, Quectel
# AT+QGPSLOC=2); link answers; anything else
gnss_answer = st.one_of(
    answer("+CGPSINFO: ", "3752.000000,N,14007.000000,E,011226,081836.0,10.0,1.0,0.0"),
    answer("+QGPSLOC: ", "081836.000,37.86667,140.11667,1.0,10.0,3,0.0,5.0,2.7,011226,07"),
)
at_answer = st.one_of(
    gnss_answer,
    answer("+CSQ: ", "20,99"),
    answer("+CEREG: ", "0,1"),
    st.builds(
        lambda prefix, fields: (prefix + ",".join(fields)).encode(),
        st.sampled_from(AT_PREFIXES),
        st.lists(weird, max_size=12),
    ),
)


@settings(max_examples=400, deadline=None)
@given(answer=at_answer | st.binary(max_size=80))
def test_the_tracker_modem_answers_any_at_response_with_a_sendable_fix_or_none(answer):
    """The AT target (sim/fuzz_targets.py): the tracker's modem driver reads link health and
    both GNSS answers from whatever the modem says; it never raises, and never hands the
    tracker a position the city would refuse (out of range, NaN, infinite)."""
    run_one("at_response", answer)


def test_the_at_target_reads_a_real_sim7600_fix():
    from edge.drivers.cellular import CellularModem, Sim7600Gnss
    from sim.fuzz_targets import AnsweringPort

    answer = b"+CGPSINFO: 3752.000000,N,14007.000000,E,011226,081836.0,10.0,1.0,0.0"
    fix = Sim7600Gnss(CellularModem(AnsweringPort(answer), command_timeout_s=0.1)).read(0.1)
    assert fix is not None and abs(fix.lat - 37.8667) < 0.001 and abs(fix.lon - 140.1167) < 0.001


class FuzzedLte(PtyDevice):
    """An LTE modem on a pty that answers every command with ``answer`` and OK."""

    answer = b""

    def on_line(self, line: bytes) -> bytes | None:
        return b"\r\n" + self.answer + b"\r\n\r\nOK\r\n"


@pytest.fixture(scope="module")
def lte_line():
    from edge.drivers.cellular import open_modem

    device = FuzzedLte("ttyLTE-fuzz")
    modem = open_modem(device.path)
    modem.command_timeout_s = 1.0
    yield device, modem
    modem.close()
    device.close()


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(answer=gnss_answer)
def test_the_tracker_modem_driver_on_a_pty_survives_any_answer(lte_line, answer):
    """The same through the real serial port: the driver's answers come over a pty, and after
    any of them the modem still answers link health."""
    from edge.drivers.cellular import QuectelGnss, Sim7600Gnss
    from sim.fuzz_targets import sendable

    device, modem = lte_line
    device.answer = answer.replace(b"\r", b"").replace(b"\n", b"")
    for gnss in (Sim7600Gnss(modem), QuectelGnss(modem)):
        sendable(gnss.read(1.0))
    device.answer = b"+CSQ: 20,99"
    assert modem.health().rssi_dbm == -73
