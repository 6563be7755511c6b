"""``machimori hil run`` over every scenario in scenarios/ against the simulators, as CI runs it,
and the harness's own behaviour: a scenario whose device does not do what it expects fails, a
real bench without a person skips what needs one (with the reason), a bad file exits 2."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))


def hil(*args: str, timeout: float = 400) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "machimori", "hil", "run", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=ROOT,
    )


@pytest.mark.timeout(600)
@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.stem for s in SCENARIOS])
def test_every_scenario_passes_against_the_simulators(scenario, tmp_path):
    junit = tmp_path / "results.xml"
    done = hil(str(scenario), "--target", "sim", "--junit", str(junit))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    suites = ET.parse(junit).getroot().findall("testsuite")
    assert suites, "no test suite in the JUnit XML"
    for suite in suites:
        assert suite.get("failures") == "0" and suite.get("skipped") == "0"
        assert len(suite.findall("testcase")) == int(suite.get("tests"))
    assert "FAIL" not in done.stdout
    assert len(suites) >= 1 and all("seed" in s.get("name") for s in suites)


def test_a_device_that_does_not_do_what_is_expected_fails_the_step(tmp_path):
    scenario = tmp_path / "wrong.yaml"
    scenario.write_text(
        """
name: a calm river expected to flood
kind: river
device: river-hil-09
clock_speed: 600
bench: {link: mqtt, start_m: 0.5}
steps:
  - start: agent
  - name: a crossing that cannot happen
    expect: {channel: event, type: level_crossing, within_s: 600}
  - stop: agent
"""
    )
    junit = tmp_path / "r.xml"
    done = hil(str(scenario), "--junit", str(junit), timeout=120)
    assert done.returncode == 1, done.stdout
    assert "FAIL a crossing that cannot happen" in done.stdout
    failures = ET.parse(junit).getroot().findall(".//failure")
    assert len(failures) == 1 and "0 of 1 within 600 s" in failures[0].get("message")


def test_a_real_bench_without_a_person_skips_with_reasons(tmp_path):
    """No device on the port and nobody at the terminal: the stimulus steps are skipped with the
    reason, so are the expectations that follow them; the agent itself still starts."""
    scenario = tmp_path / "bench.yaml"
    scenario.write_text(
        """
name: a gauge on the bench
kind: river
device: river-hil-08
bench: {link: mqtt}
steps:
  - start: agent
  - level: 2.0
  - expect: {channel: event, type: level_crossing, within_s: 5}
  - fault: {sensor: garbage}
  - stop: agent
"""
    )
    port = tmp_path / "ttyUSB0"  # nothing there: the agent keeps retrying the port
    done = hil(str(scenario), "--target", "real", "--port", f"sensor={port}", timeout=120)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "skip level 2.0" in out and "needs a person at the bench" in out
    assert "its stimulus was skipped" in out
    assert "cannot be made to send 'garbage' frames" in out


def test_a_bad_scenario_file_exits_2_naming_file_and_step(tmp_path):
    scenario = tmp_path / "bad.yaml"
    scenario.write_text("name: x\nkind: river\ndevice: river-x\nsteps:\n  - jump: high\n")
    done = hil(str(scenario), timeout=60)
    assert done.returncode == 2
    assert f"{scenario}: steps[0]: expected exactly one action of:" in done.stderr
    done = hil(str(scenario), "--port", "nonsense", timeout=60)
    assert done.returncode == 2 and "expected NAME=PATH" in done.stderr
