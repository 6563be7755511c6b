"""Ultrasonic level-sensor drivers against simulated sensors on a real pty."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from edge.drivers.ultrasonic import A02YYUW, MB7389, Sample, UltrasonicSensor, open_sensor
from sim.devices.ultrasonic import UltrasonicSim
from sim.serial_pty import PtyDevice

MODELS = ["a02yyuw", "mb7389"]


class Level:
    """The distance the simulated sensor sees; a test moves the water by assigning ``mm``."""

    def __init__(self, mm: float | None) -> None:
        self.mm = mm

    def __call__(self) -> float | None:
        return self.mm


@pytest.fixture(params=MODELS)
def rig(request) -> Iterator[tuple[UltrasonicSim, UltrasonicSensor, Level]]:
    level = Level(1953)
    with UltrasonicSim(request.param, level) as sim, open_sensor(request.param, sim.path) as drv:
        yield sim, drv, level
        assert sim.errors == []


def raw_sensor(frames: list[bytes], period_s: float = 0.02) -> PtyDevice:
    """A device replaying exact wire bytes, so the drivers are checked against the datasheets
    rather than against our own simulator's encoder."""
    dev = PtyDevice()
    replay = iter(frames * 1000)
    dev.stream(period_s, lambda: next(replay))
    return dev


def read_after_change(drv: UltrasonicSensor, before: Sample) -> Sample:
    """The first frame measured after the sim changed: one frame may already be on its way."""
    sample = drv.read(1.0)
    return drv.read(1.0) if sample == before else sample


def wrong_readings(samples: list[Sample], expected: int) -> list[Sample]:
    return [s for s in samples if s.ok and s.distance_mm != expected or not s.ok and s.distance_mm]


@pytest.mark.parametrize(
    ("model", "frame", "expected"),
    [
        ("a02yyuw", b"\xff\x07\xa1\xa7", Sample(1953)),  # the DFRobot datasheet example
        ("a02yyuw", b"\xff\x00\x1e\x1d", Sample(30)),
        ("a02yyuw", b"\xff\x11\x94\xa4", Sample(4500)),
        ("a02yyuw", b"\xff\x00\x00\xff", Sample(error="no_echo")),
        ("a02yyuw", b"\xff\x00\x14\x13", Sample(error="no_echo")),  # 20 mm: blind zone
        ("a02yyuw", b"\xff\xff\xfe\xfc", Sample(error="no_echo")),
        ("mb7389", b"R1953\r", Sample(1953)),
        ("mb7389", b"R0300\r", Sample(300)),
        ("mb7389", b"R5000\r", Sample(error="no_echo")),
    ],
)
def test_datasheet_frames(model, frame, expected):
    with raw_sensor([frame]) as dev, open_sensor(model, dev.path) as drv:
        assert drv.read(1.0) == expected
        assert drv.counters["ok" if expected.ok else expected.error] >= 1


def test_sim_puts_the_datasheet_vector_on_the_wire():
    with UltrasonicSim("a02yyuw", lambda: 1953) as sim, open_sensor("a02yyuw", sim.path) as drv:
        drv.read(1.0)  # opens the port
        assert drv.port.read(0.5, max_bytes=4) == b"\xff\x07\xa1\xa7"


def test_reads_follow_the_water(rig):
    sim, drv, level = rig
    assert drv.read(1.0) == Sample(1953)
    level.mm = 812.4
    assert read_after_change(drv, Sample(1953)) == Sample(812)
    assert drv.counters["ok"] >= 2


def test_buffered_frames_are_stale_and_not_returned(rig):
    sim, drv, level = rig
    assert drv.read(1.0) == Sample(1953)
    time.sleep(0.5)  # frames of the old level pile up unread: 3 or more
    level.mm = 1000
    assert read_after_change(drv, Sample(1953)) == Sample(1000)


def test_corrupted_frames_are_counted_never_returned_as_readings(rig):
    sim, drv, _ = rig
    error = "checksum" if isinstance(drv, A02YYUW) else "malformed"
    drv.read(1.0)
    sim.corrupt_next(2)
    samples = drv.burst(4)
    assert drv.counters[error] == 2
    assert Sample(error=error) in samples
    assert set(samples) <= {Sample(1953), Sample(error=error)}
    assert samples[-1] == Sample(1953)


@pytest.mark.parametrize("model", MODELS)
def test_resync_after_garbage_that_looks_like_headers(model):
    # Stray 0xFF and "R" bytes make the parser lock onto false frames; it must find the real ones.
    garbage = b"\xff\x07R12\xff\xa1\rR9\x00\xffR\xfe"
    with UltrasonicSim(model, lambda: 1953) as sim, open_sensor(model, sim.path) as drv:
        drv.read(1.0)
        sim.inject_garbage(garbage)
        samples = drv.burst(6)  # the garbage costs each model at most three bad frames
        assert drv.counters["garbage_bytes"] > 0
        assert samples[-2:] == [Sample(1953)] * 2
        assert wrong_readings(samples, 1953) == []


def test_partial_frame_is_reported_then_reading_resumes(rig):
    sim, drv, _ = rig
    drv.read(1.0)
    sim.truncate_next()
    samples = drv.burst(3)
    assert samples[0] == Sample(error="partial")
    assert samples[1:] == [Sample(1953)] * 2
    assert drv.counters["partial"] == 1


def test_mb7389_frame_restarting_early_is_partial():
    with raw_sensor([b"R19R1953\r"]) as dev, open_sensor("mb7389", dev.path) as drv:
        # The cut frame and the whole one arrive together: the reading wins, the cut is counted.
        assert drv.burst(3) == [Sample(1953)] * 3
        assert drv.counters["partial"] >= 3


def test_no_echo_from_open_water_or_beyond_range(rig):
    sim, drv, level = rig
    level.mm = None
    assert read_after_change(drv, Sample(1953)) == Sample(error="no_echo")
    level.mm = 9000
    assert drv.read(1.0) == Sample(error="no_echo")
    assert drv.counters["no_echo"] >= 2
    level.mm = 1500
    assert read_after_change(drv, Sample(error="no_echo")) == Sample(1500)


def test_silent_sensor_times_out_then_recovers(rig):
    sim, drv, _ = rig
    drv.read(1.0)
    sim.silence()
    started = time.monotonic()
    assert drv.read(0.2) == Sample(error="timeout")
    assert 0.19 <= time.monotonic() - started < 0.5
    assert drv.counters["timeout"] == 1
    sim.silence(False)
    assert drv.read(1.0) == Sample(1953)


def test_unplug_reports_port_error_and_replug_recovers(rig):
    sim, drv, _ = rig
    assert drv.read(1.0) == Sample(1953)
    sim.unplug()
    started = time.monotonic()
    assert drv.read(1.0) == Sample(error="port")  # the open port fails
    assert drv.burst(3, 1.0) == [Sample(error="port")]  # the path is gone; burst gives up
    assert time.monotonic() - started < 0.5
    assert drv.counters["port"] == 2
    sim.replug()
    assert drv.read(1.0) == Sample(1953)


def test_sensor_absent_at_start_is_a_port_error_not_an_exception(tmp_path):
    with open_sensor("a02yyuw", str(tmp_path / "ttyUSB0")) as drv:
        assert drv.read(0.1) == Sample(error="port")
        with UltrasonicSim("a02yyuw", lambda: 700, link_dir=tmp_path):
            assert drv.read(1.0) == Sample(700)


def test_open_sensor_models_and_bad_name():
    assert isinstance(open_sensor("A02YYUW", "/dev/null"), A02YYUW)
    mb = open_sensor("mb7389", "/dev/null", baudrate=19200)
    assert isinstance(mb, MB7389) and mb.port.baudrate == 19200
    with pytest.raises(ValueError, match="a02yyuw, mb7389"):
        open_sensor("hc-sr04", "/dev/ttyUSB0")


def test_sim_noise_spreads_readings_around_the_distance():
    with (
        UltrasonicSim("a02yyuw", lambda: 2000, noise_mm=15, seed=3) as sim,
        open_sensor("a02yyuw", sim.path) as drv,
    ):
        readings = [s.distance_mm for s in drv.burst(4)]
    assert all(r is not None and 1900 < r < 2100 for r in readings)
    assert len(set(readings)) > 1


def test_sim_spikes_and_stuck_value():
    level = Level(1953)
    with UltrasonicSim("a02yyuw", level) as sim, open_sensor("a02yyuw", sim.path) as drv:
        sim.spikes(1.0, offset_mm=-1000)
        assert read_after_change(drv, Sample(1953)) == Sample(953)
        sim.spikes(0.0)
        assert read_after_change(drv, Sample(953)) == Sample(1953)
        sim.stuck()
        level.mm = 1200
        assert drv.burst(2) == [Sample(1953)] * 2
        sim.stuck(False)
        assert read_after_change(drv, Sample(1953)) == Sample(1200)


def test_sim_rejects_unknown_model():
    with pytest.raises(ValueError, match="a02yyuw, mb7389"):
        UltrasonicSim("srf05", lambda: 1000)
