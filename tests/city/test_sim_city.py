"""``machimori sim city --chaos``: a small city for a few hours of river time while every part is
broken once (broker restarted and crashed without persistence, gateway, store and agents
SIGKILLed, a gauge's network cut in its namespace, a gauge's disk filled). The report must show
nothing lost, nothing stored twice, and every fault recovered from."""

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
        if line.startswith("river/") or line.startswith("camera/"):
            assert "lost 0," in line and "stored twice 0," in line, line
            assert "held 0," in line, f"not everything reached the store by the end: {line}"
    assert "river/mqtt: 3 devices" in out and "river/lorawan: 2 devices" in out
