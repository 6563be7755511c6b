"""The NMEA GNSS driver against published sentences, on a parser and through a real pty."""

from __future__ import annotations

import functools
import operator
import time
from datetime import UTC, date, datetime

import pytest

from edge.drivers.gnss import TALKERS, NmeaParser, open_receiver
from sim.serial_pty import PtyDevice

# The u-blox M8 receiver description's examples (UBX-13003221, "NMEA messages"): a receiver's
# own output, checksums included, so the driver is checked against the vendor, not our encoder.
UBLOX_RMC = b"$GPRMC,083559.00,A,4717.11437,N,00833.91522,E,0.004,77.52,091202,,,A*57"
UBLOX_GGA = b"$GPGGA,092725.00,4717.11399,N,00833.91590,E,1,08,1.01,499.6,M,48.0,M,,*5B"
UBLOX_GSA = b"$GPGSA,A,3,23,29,07,08,09,18,26,28,,,,,1.94,1.18,1.54*0D"
UBLOX_VTG = b"$GPVTG,77.52,T,,M,0.004,N,0.008,K,A*06"
UBLOX_GSV = b"$GPGSV,3,1,10,23,38,230,44,29,71,156,47,07,29,116,41,08,09,081,36*7F"
# The textbook pair from the NMEA FAQ (Dale DePriest, "NMEA data"): 48°07.038' N 11°31.000' E.
FAQ_RMC = b"$GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W*6A"
FAQ_GGA = b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47"


def sentence(body: str) -> bytes:
    """``$body*hh``: the checksum is the XOR of the bytes between ``$`` and ``*`` (§5.3.1)."""
    checksum = functools.reduce(operator.xor, body.encode(), 0)
    return f"${body}*{checksum:02X}".encode()


def test_checksum_helper_matches_the_published_sentences():
    for published in (UBLOX_RMC, UBLOX_GGA, UBLOX_GSA, UBLOX_VTG, UBLOX_GSV, FAQ_RMC, FAQ_GGA):
        assert sentence(published[1:-3].decode()) == published


def epoch(talker: str, hhmmss: str, *, fix: bool = True, quality: int = 1, hdop: str = "0.9"):
    """One second of a receiver's output, as a u-blox sends it: RMC VTG GGA GSA GSV."""
    status, qual = ("A", quality) if fix else ("V", 0)
    where = "3545.1234,N,14002.5678,E" if fix else ",,,"
    return [
        sentence(f"{talker}RMC,{hhmmss},{status},{where},1.5,90.0,011226,,,{status}"),
        sentence(f"{talker}VTG,90.0,T,,M,1.5,N,2.8,K,A"),
        sentence(f"{talker}GGA,{hhmmss},{where},{qual},07,{hdop},212.0,M,39.0,M,,"),
        sentence(f"{talker}GSA,A,{3 if fix else 1},01,02,03,04,05,06,07,,,,,,1.8,{hdop},1.5"),
        sentence("GPGSV,2,1,08,01,40,083,46,02,17,308,41,12,07,344,39,14,22,228,45"),
        sentence("GLGSV,1,1,03,65,40,083,46,66,17,308,41,67,07,344,39"),
    ]


def lines(sentences: list[bytes], end: bytes = b"\r\n") -> bytes:
    return b"".join(s + end for s in sentences)


def parse_all(data: bytes, parser: NmeaParser | None = None):
    parser = parser or NmeaParser()
    fixes = parser.feed(data)
    if (last := parser.flush()) is not None:
        fixes.append(last)
    return parser, fixes


def test_published_rmc_and_gga_become_one_fix_with_quality_kept():
    parser, fixes = parse_all(lines([FAQ_RMC, FAQ_GGA]))
    assert len(fixes) == 1
    fix = fixes[0]
    assert fix.ts == datetime(1994, 3, 23, 12, 35, 19, tzinfo=UTC)
    assert (fix.lat, fix.lon) == (pytest.approx(48.1173), pytest.approx(11.516667, abs=1e-6))
    assert (fix.hdop, fix.satellites, fix.quality) == (0.9, 8, 1)
    assert fix.accuracy_m == 4.5
    assert fix.altitude_m == 545.4
    assert fix.speed_mps == pytest.approx(22.4 * 1852 / 3600, abs=0.01)
    assert fix.course_deg == 84.4
    assert parser.counters["fixes"] == 1 and parser.counters["sentences"] == 2


def test_published_ublox_sentences_each_parse():
    parser = NmeaParser()
    for published in (UBLOX_GSA, UBLOX_VTG, UBLOX_GSV):
        parser.feed(published + b"\r\n")
    assert parser.counters["sentences"] == 3
    _, fixes = parse_all(UBLOX_RMC + b"\r\n")
    assert fixes[0].lat == pytest.approx(47 + 17.11437 / 60)
    assert fixes[0].lon == pytest.approx(8 + 33.91522 / 60)
    assert fixes[0].ts == datetime(2002, 12, 9, 8, 35, 59, tzinfo=UTC)
    assert fixes[0].hdop is None  # RMC alone says nothing about accuracy: unknown, not good


@pytest.mark.parametrize("talker", ["GP", "GL", "GA", "GB", "GN"])
def test_every_talker_gives_a_fix_per_epoch(talker):
    data = lines(epoch(talker, "001000.00") + epoch(talker, "001001.00"))
    parser, fixes = parse_all(data)
    assert [f.ts.second for f in fixes] == [0, 1]
    fix = fixes[0]
    assert fix.talker == talker
    assert (fix.lat, fix.lon) == (pytest.approx(35 + 45.1234 / 60), pytest.approx(140.04278))
    assert (fix.satellites, fix.hdop, fix.mode) == (7, 0.9, "3d")
    assert fix.satellites_in_view == 11  # 8 GPS + 3 GLONASS from the GSV series
    assert fix.ts.date() == date(2026, 12, 1)
    assert sum(parser.counters[e] for e in ("checksum", "garbage", "malformed")) == 0
    assert talker in TALKERS


def test_no_fix_when_the_receiver_says_so():
    # RMC status V / GGA quality 0: a cold start or indoors. Positions in such sentences (some
    # receivers repeat the last one) must not be used.
    parser, fixes = parse_all(lines(epoch("GN", "001000.00", fix=False)))
    assert fixes == [] and parser.counters["no_fix"] == 1
    stale = [
        sentence("GPRMC,001001.00,V,3545.1234,N,14002.5678,E,0.0,0.0,011226,,,N"),
        sentence("GPGGA,001001.00,3545.1234,N,14002.5678,E,0,00,99.9,,M,,M,,"),
    ]
    parser, fixes = parse_all(lines(stale))
    assert fixes == [] and parser.counters["no_fix"] == 1


def test_one_sentence_saying_no_fix_wins_over_the_other():
    rmc_ok = sentence("GPRMC,001001.00,A,3545.1234,N,14002.5678,E,0.0,0.0,011226,,,A")
    gga_no = sentence("GPGGA,001001.00,3545.1234,N,14002.5678,E,0,04,9.9,,M,,M,,")
    assert parse_all(lines([rmc_ok, gga_no]))[1] == []
    rmc_mode_n = sentence("GPRMC,001001.00,A,3545.1234,N,14002.5678,E,0.0,0.0,011226,,,N")
    assert parse_all(lines([rmc_mode_n]))[1] == []


def test_gga_only_receiver_takes_the_date_from_the_clock_and_crosses_midnight():
    parser = NmeaParser(today=lambda: date(2026, 12, 1))
    gga = [
        sentence(f"GPGGA,{t},3545.1234,N,14002.5678,E,1,06,1.2,10.0,M,39.0,M,,")
        for t in ("235959.00", "000000.00")
    ]
    _, fixes = parse_all(lines(gga), parser)
    assert [f.ts for f in fixes] == [
        datetime(2026, 12, 1, 23, 59, 59, tzinfo=UTC),
        datetime(2026, 12, 2, 0, 0, 0, tzinfo=UTC),
    ]


def test_damaged_input_is_counted_and_never_a_position():
    good = epoch("GP", "001000.00")
    bad_sum = good[0][:-2] + (b"00" if good[0][-2:] != b"00" else b"01")
    damaged = [
        bad_sum,  # checksum
        good[2][:-3],  # GGA without *hh: cut short
        good[0] + good[2],  # two sentences on one line (a lost CRLF)
        b"\x8a\x13 noise \xff\xfe",  # garbage
        b"GPGGA,001000.00,3545.1234,N",  # no $
        sentence("GPRMC,001000.00,A,9145.1234,N,14002.5678,E,0.0,0.0,011226,,,A"),  # 91 deg
        sentence("GPGLL,3545.1234,N,14002.5678,E,001000.00,A,A"),  # a type not used
    ]
    parser, fixes = parse_all(lines(damaged))
    assert fixes == []
    counted = {k: v for k, v in parser.counters.items() if v}
    assert counted == {
        "checksum": 1,
        "no_checksum": 1,
        "run_together": 1,
        "garbage": 2,
        "malformed": 1,
        "unsupported": 1,
        "sentences": 1,
    }
    # ...and the receiver keeps going: the next good epoch is a fix.
    _, fixes = parse_all(lines(epoch("GP", "001001.00")), parser)
    assert len(fixes) == 1 and fixes[0].ts.second == 1


def test_line_ends_cr_lf_or_crlf_and_a_torn_first_line():
    for end in (b"\r\n", b"\n", b"\r"):
        data = b"34.5,N,14002.5678,E,1,07*" + end + lines(epoch("GP", "001000.00"), end)
        parser, fixes = parse_all(data)
        assert len(fixes) == 1, end
        assert parser.counters["garbage"] == 1


def test_a_fix_needs_a_valid_time():
    bad_time = sentence("GPGGA,256000.00,3545.1234,N,14002.5678,E,1,06,1.2,10.0,M,39.0,M,,")
    parser, fixes = parse_all(lines([bad_time]))
    assert fixes == [] and parser.counters["malformed"] == 1


# -- through a real port ------------------------------------------------------------------------


class Replay(PtyDevice):
    """A receiver on a pty replaying exact wire bytes, one epoch per period."""

    def __init__(self, epochs: list[bytes], period_s: float = 0.1) -> None:
        super().__init__("ttyGNSS")
        self.epochs = iter(epochs)
        self.stream(period_s, lambda: next(self.epochs, None))


def test_receiver_reads_fixes_from_a_pty():
    epochs = [lines(epoch("GN", f"0010{s:02d}.00")) for s in range(60)]
    with Replay(epochs) as dev, open_receiver(dev.path) as rx:
        first = rx.read(2.0)
        second = rx.read(2.0)
        assert rx.status == "fix"
        assert first is not None and second is not None and second.ts > first.ts
        assert second.satellites == 7
        assert dev.errors == []


def test_receiver_reports_no_fix_and_silence_and_a_lost_port():
    epochs = [lines(epoch("GP", f"0010{s:02d}.00", fix=False)) for s in range(60)]
    with Replay(epochs) as dev, open_receiver(dev.path) as rx:
        assert rx.read(2.0) is None and rx.status == "no_fix"
        assert rx.satellites_in_view == 11  # the sky is visible even without a fix
        dev.silence()
        time.sleep(0.3)
        assert rx.read(0.5) is None and rx.status == "timeout"
        dev.unplug()
        assert rx.read(0.5) is None and rx.status == "port"
        dev.silence(False)
        dev.replug()
        assert rx.read(2.0) is None and rx.status == "no_fix"  # reopened by itself
        assert rx.counters["port"] >= 1 and rx.counters["timeout"] >= 1


def test_receiver_returns_a_fix_measured_after_the_call():
    """A tracker waking after a minute wants where the child is now, not the oldest buffered."""
    epochs = [lines(epoch("GP", f"0010{s:02d}.00")) for s in range(60)]
    with Replay(epochs, period_s=0.05) as dev, open_receiver(dev.path) as rx:
        rx.read(2.0)
        time.sleep(0.5)  # about ten epochs pile up in the port
        fix = rx.read(2.0)
        assert fix is not None
        assert rx.counters["fixes"] >= 8
        assert fix.ts.second >= rx.counters["fixes"] - 1
        assert dev.errors == []


def test_garbage_on_the_line_costs_no_position():
    epochs = [lines(epoch("GP", f"0010{s:02d}.00")) for s in range(40)]
    with Replay(epochs, period_s=0.1) as dev, open_receiver(dev.path) as rx:
        assert rx.read(2.0) is not None
        dev.inject_garbage(b"\x00\xff$GPRMC,00\r\n")
        good = 0
        for _ in range(5):
            fix = rx.read(2.0)
            assert fix is None or fix.lat == pytest.approx(35 + 45.1234 / 60)
            good += fix is not None
        assert good >= 4
        assert rx.counters["garbage"] + rx.counters["no_checksum"] >= 1
