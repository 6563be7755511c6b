"""A burst of samples becomes a level the city can trust, or 欠測 with the reason."""

from __future__ import annotations

from collections import Counter

import pytest

from edge.agents.river.config import RiverConfig, TemperatureConfig
from edge.agents.river.measurement import Measurement, Thermometer, speed_of_sound
from edge.drivers.ultrasonic import Sample


def measure(config: RiverConfig, *bursts: list[Sample]):
    counts: Counter[str] = Counter()
    m = Measurement(config, Thermometer(config.temperature), lambda k, n: counts.update({k: n}))
    readings = [m.reading(b) for b in bursts]
    return readings, counts


def mm(*values: int) -> list[Sample]:
    return [Sample(v) for v in values]


def test_level_is_mount_height_minus_median_distance():
    [r], _ = measure(RiverConfig(mount_height_m=5.0, min_valid=3), mm(3966, 3970, 3962, 3968, 3964))
    assert (r.level_m, r.distance_mm, r.valid, r.samples) == (1.034, 3966, 5, 5)
    assert r.data() == {"level_m": 1.034, "distance_mm": 3966, "valid": 5, "samples": 5}


def test_spikes_are_rejected_and_counted():
    burst = mm(2000, 2003, 1100, 1998, 2001, 2002, 1999, 1050, 2000)  # two echoes off a branch
    [r], counts = measure(RiverConfig(mount_height_m=5.0), burst)
    assert r.distance_mm == 2000 and r.valid == 7
    assert counts["sensor_outlier"] == 2


def test_a_burst_that_disagrees_with_itself_is_unstable():
    burst = mm(2000, 2001, 2000, 1999, 2000, 1000, 3000, 500, 3800)  # four wild echoes of nine
    [r], _ = measure(RiverConfig(min_valid=7), burst)
    assert r.data() == {"missing": "unstable", "valid": 5, "samples": 9}


@pytest.mark.parametrize(
    ("errors", "reason"),
    [
        (["no_echo"] * 6, "no_echo"),
        (["checksum"] * 4 + ["partial"] * 2, "checksum"),
        (["timeout"] * 9, "timeout"),
    ],
)
def test_too_few_valid_samples_is_missing_with_the_commonest_error(errors, reason):
    burst = [Sample(error=e) for e in errors] + mm(2000) * (9 - len(errors))
    [r], counts = measure(RiverConfig(), burst)
    assert r.missing == reason and r.level_m is None
    assert counts[f"sensor_{reason}"] == errors.count(reason)


def test_a_failed_port_ends_the_burst_and_says_so():
    [r], _ = measure(RiverConfig(), mm(2000, 2001) + [Sample(error="port")])
    assert r.data() == {"missing": "port", "valid": 2, "samples": 3}


def test_no_samples_at_all():
    [r], _ = measure(RiverConfig(min_valid=1, burst=1), [])
    assert r.missing == "no_samples"


def test_temperature_corrects_the_speed_of_sound():
    # At -10 °C sound is slower than the 20 °C the sensor assumes: the echo comes late and the
    # sensor overstates the distance by c(20)/c(-10).
    true_mm = 3000
    reported = round(true_mm * speed_of_sound(20) / speed_of_sound(-10))
    assert reported > 3150  # ~5 %: 15 cm of water level, more than the sensor's accuracy
    cold = TemperatureConfig(source="fixed", celsius=-10.0)
    [r], _ = measure(RiverConfig(mount_height_m=5.0, temperature=cold), mm(reported) * 9)
    assert r.distance_mm == pytest.approx(true_mm, abs=1)
    assert r.level_m == pytest.approx(2.0, abs=0.001)


def test_temperature_from_a_ds18b20_file_and_its_fallback(tmp_path):
    sensor = tmp_path / "temperature"
    sensor.write_text("-10000\n")  # the kernel's w1_therm: millidegrees
    config = TemperatureConfig(source="file", path=sensor, scale=0.001, celsius=20.0)
    thermometer = Thermometer(config)
    assert thermometer.celsius() == pytest.approx(-10.0)
    assert not thermometer.failed
    for broken in ("", "85000\n", "garbage"):  # empty, the DS18B20's power-on 85 °C, noise
        sensor.write_text(broken)
        assert thermometer.celsius() == 20.0 and thermometer.failed
    sensor.unlink()
    assert thermometer.celsius() == 20.0 and thermometer.failed


def test_an_unreadable_thermometer_is_counted_not_fatal(tmp_path):
    temp = TemperatureConfig(source="file", path=tmp_path / "gone", celsius=20.0)
    [r], counts = measure(RiverConfig(mount_height_m=5.0, temperature=temp), mm(3000) * 9)
    assert r.level_m == 2.0
    assert counts["temperature_error"] == 1


def test_a_level_outside_the_site_range_is_out_of_range():
    config = RiverConfig(mount_height_m=5.0, min_level_m=0.0, max_level_m=4.5)
    [dry, under_sensor], counts = measure(config, mm(5200) * 9, mm(300) * 9)
    assert dry.missing == under_sensor.missing == "out_of_range"
    assert counts["out_of_range"] == 2


def test_one_exact_value_for_several_cycles_is_a_stuck_sensor():
    config = RiverConfig(stuck_cycles=3)
    rippling = [mm(2000, 2001, 1999, 2000, 2002, 2000, 1998, 2001, 2000)] * 3
    stuck = [mm(2000) * 9] * 4
    readings, counts = measure(config, *rippling, *stuck, rippling[0])
    assert [r.missing for r in readings] == [None] * 3 + [None, None, "stuck", "stuck", None]
    assert counts["sensor_stuck"] == 2


def test_the_stuck_check_can_be_switched_off_for_a_dry_concrete_bed():
    readings, _ = measure(RiverConfig(stuck_cycles=0), *([mm(2000) * 9] * 10))
    assert all(r.ok for r in readings)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"min_valid": 10, "burst": 9}, "min_valid"),
        ({"min_level_m": 3.0, "max_level_m": 2.0}, "below"),
        ({"max_level_m": 6.0, "mount_height_m": 5.0}, "above the sensor"),
        ({"outlier_k": 0}, "outlier_k"),
    ],
)
def test_config_mistakes_are_named(change, message):
    with pytest.raises(ValueError, match=message):
        RiverConfig(**change)
