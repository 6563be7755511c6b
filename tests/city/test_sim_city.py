"""``machimori sim city --chaos``: a small city (a few devices of every fleet: gauges on MQTT and
LoRaWAN, a camera, buses, child trackers both as agents on a pty and in a fleet process) through a
school morning while every part is broken once (broker restarted and crashed without persistence,
gateway, store, tracker service and one agent of each kind SIGKILLed, a gauge's network cut in
its namespace, a gauge's disk filled). The report must show nothing lost, nothing stored twice,
every fault recovered from, and the tracker service's day intact: every position held, the same
school arrivals as a replay of them, every guardian told once."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_sim_city_under_chaos_loses_nothing(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "machimori",
            "sim",
            "city",
            "--chaos",
            "--mqtt-gauges",
            "3",
            "--lora-gauges",
            "2",
            "--cameras",
            "1",
            "--buses",
            "2",
            "--trackers",
            "20",
            "--real-trackers",
            "2",
            "--speed",
            "60",
            "--duration",
            "150",
            "--workdir",
            str(tmp_path / "city"),
        ],
        capture_output=True,
        text=True,
        timeout=850,
    )
    out = done.stdout
    assert done.returncode == 0, out[-5000:] + done.stderr[-2000:]
    assert "NOT recovered" not in out and "FAILED" not in out
    for line in out.splitlines():
        if line.startswith(("river/", "camera/", "bus/", "tracker/")):
            assert "lost 0," in line and "stored twice 0," in line, line
            assert "held 0," in line, f"not everything reached the store by the end: {line}"
    assert "river/mqtt: 3 devices" in out and "river/lorawan: 2 devices" in out
    assert "bus/mqtt: 2 devices" in out and "tracker/mqtt: 20 devices" in out
    for fault in (
        "tracker service SIGKILL",
        "bus agent SIGKILL",
        "tracker agent SIGKILL",
        "tracker fleet process SIGKILL",
    ):
        assert f"chaos: {fault}" in out, fault
    school = next(line for line in out.splitlines() if line.startswith("tracker service:"))
    assert " 0 the store holds and it does not" in school and "differing 0" in school, school
    arrivals = int(school.split("school arrivals ")[1].split()[0])
    assert arrivals > 0, school  # the morning's walk reached the schools
    told = next(line for line in out.splitlines() if "guardians told" in line)
    assert "twice 0, not told 0, still queued 0" in told, told
    gtfs = next(line for line in out.splitlines() if line.startswith("GTFS-Realtime"))
    assert "vehicles 0..0" not in gtfs, gtfs
