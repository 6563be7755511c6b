"""Card readers at real ports: an RDM6300 on a pty, FeliCa/MIFARE through nfcpy's own stack."""

from __future__ import annotations

import random
import threading
import time

import pytest

from edge.drivers.cards import open_reader
from edge.drivers.rdm6300 import frame
from sim.devices.nfc_card import NfcCardSim
from sim.devices.rdm6300 import Rdm6300Sim

# The RDM6300 datasheet's example frame: tag 62E3086CED, checksum 62^E3^08^6C^ED = 08.
DATASHEET_FRAME = bytes.fromhex("02") + b"62E3086CED08" + bytes.fromhex("03")
CARD_A = bytes.fromhex("62E3086CED")
CARD_B = bytes.fromhex("0A00B1C2D3")


@pytest.fixture
def rfid():
    sim = Rdm6300Sim(seed=1)
    reader = open_reader("rdm6300", sim.path, hold_gap_s=0.4)
    yield sim, reader
    reader.close()
    sim.close()
    assert not sim.errors


class Taps:
    """Reads taps on a thread, as the bus agent does, while the test presents cards."""

    def __init__(self, reader):
        self.reader, self.found, self._stop = reader, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            if (card := self.reader.tap(0.2)) is not None:
                self.found.append(card)

    def stop(self, after_s: float = 0.3) -> list:
        time.sleep(after_s)
        self._stop.set()
        self._thread.join(5)
        return self.found


def test_frame_layout_matches_the_datasheet():
    assert frame(CARD_A) == DATASHEET_FRAME
    assert len(DATASHEET_FRAME) == 14


def test_a_card_held_on_the_reader_is_one_tap(rfid):
    sim, reader = rfid
    reading = Taps(reader)
    sim.place(CARD_A)
    time.sleep(2.0)  # ~30 frames arrive meanwhile
    sim.remove()
    found = reading.stop()
    assert [(c.tech, c.uid) for c in found] == [("em4100", CARD_A)]
    assert reader.counters["frames"] > 10
    assert reader.counters["held"] == reader.counters["frames"] - 1


def test_two_riders_and_a_second_presentation_are_three_taps(rfid):
    sim, reader = rfid
    reading = Taps(reader)
    time.sleep(0.3)
    sim.present(CARD_A, 0.3)
    time.sleep(0.6)  # longer than hold_gap_s: the next presentation is a new tap
    sim.present(CARD_B, 0.3)
    time.sleep(0.6)
    sim.present(CARD_A, 0.3)
    assert [c.uid for c in reading.stop()] == [CARD_A, CARD_B, CARD_A]


def test_a_garbled_frame_is_no_tap_and_is_counted(rfid):
    sim, reader = rfid
    reader.tap(0.1)  # port open
    for _ in range(3):
        sim.garbled(CARD_A)
        time.sleep(0.05)
    assert reader.tap(0.8) is None
    assert reader.counters["checksum"] == 3
    assert reader.counters["taps"] == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_line_noise_and_cut_frames_never_make_a_phantom_tap(rfid, seed):
    sim, reader = rfid
    rng = random.Random(seed)
    reader.tap(0.1)
    for _ in range(20):
        good = frame(CARD_B)
        choice = rng.random()
        if choice < 0.4:
            sim.write(good[: rng.randrange(1, 13)])  # a frame cut short
            time.sleep(0.15)
        elif choice < 0.7:
            sim.inject_garbage(rng.randrange(1, 40))
        else:
            noisy = bytearray(good)
            noisy[rng.randrange(1, 13)] = rng.choice(b"GHXZ\x02\x03")
            sim.write(bytes(noisy))
        time.sleep(0.02)
    assert reader.tap(0.5) is None
    bad = sum(reader.counters[k] for k in ("checksum", "malformed", "partial", "garbage_bytes"))
    assert bad > 0 and reader.counters["taps"] == 0
    reading = Taps(reader)  # and a real card still reads after all that
    sim.present(CARD_B, 0.3)
    assert [c.uid for c in reading.stop()] == [CARD_B]


def test_an_unplugged_reader_is_counted_and_works_again_once_replugged(rfid):
    sim, reader = rfid
    reading = Taps(reader)
    time.sleep(0.3)
    sim.present(CARD_A, 0.3)
    time.sleep(0.3)
    sim.unplug()
    time.sleep(1.0)
    assert reader.counters["port"] >= 1
    sim.replug()
    time.sleep(1.0)  # the driver retries the path every 0.5 s
    sim.present(CARD_B, 0.3)
    assert [c.uid for c in reading.stop()] == [CARD_A, CARD_B]


@pytest.fixture
def nfc_card():
    card = NfcCardSim()
    yield card
    card.close()


@pytest.mark.parametrize(
    ("tech", "uid"),
    [("felica", bytes.fromhex("012E4CD3A1B2C3D4")), ("iso14443a", bytes.fromhex("04A1B2C3"))],
)
def test_nfcpy_reads_felica_idm_and_mifare_uid_as_one_tap(nfc_card, tech, uid):
    reader = open_reader("nfc", nfc_card.path, hold_gap_s=3.0)
    try:
        nfc_card.place(tech, uid)
        card = reader.tap(5.0)
        assert (card.tech, card.uid) == (tech, uid)
        assert reader.tap(1.5) is None  # still lying there: the same tap
        assert reader.counters["held"] >= 1
    finally:
        reader.close()


@pytest.mark.parametrize("path", ["usb:054c:06c1", "tty:machimori-absent:pn532"])
def test_a_missing_nfc_reader_is_counted_and_retried_never_a_tap(path):
    """No RC-S380 on the USB bus, no PN532 on that UART: counted, retried, never raised."""
    reader = open_reader("nfc", path)
    try:
        assert reader.tap(2.5) is None
        assert reader.counters["port"] >= 2  # it keeps trying to open the reader
        assert reader.counters["taps"] == 0
    finally:
        reader.close()


def test_a_card_pulled_away_mid_anticollision_is_no_tap(nfc_card):
    reader = open_reader("nfc", nfc_card.path)
    try:
        nfc_card.vanish_after_sens = True
        nfc_card.place("iso14443a", bytes.fromhex("04A1B2C3"))
        assert reader.tap(3.0) is None
        assert reader.counters["taps"] == 0
    finally:
        reader.close()
