"""The bus config: `agent check` on good and broken files, as a technician would run it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sim" / "transit" / "feed"


def write(tmp_path: Path, **bus) -> Path:
    secret = tmp_path / "card-secret"
    if not secret.exists():
        secret.write_text("a-city-secret-of-enough-bytes\n")
    config = yaml.safe_load((ROOT / "configs" / "bus-01.yaml").read_text())
    config["bus"].update(
        {"gtfs": str(SAMPLE), "card_secret_file": str(secret), "tablet": {"port": 8080}} | bus
    )
    path = tmp_path / "bus.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "machimori", "agent", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_good_bus_config_checks_ok(tmp_path):
    result = check(write(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "bus agent for bus-01" in result.stdout


def test_broken_bus_configs_exit_2_naming_file_key_and_problem(tmp_path):
    cases = {
        "missing secret": ({"card_secret_file": str(tmp_path / "nope")}, "card_secret_file"),
        "unknown route": ({"route_id": "Z9"}, "route_id 'Z9' is not in"),
        "bad radius": ({"stop_radius_m": 2}, "stop_radius_m must be 5..500"),
        "bad reader": ({"reader": {"model": "hid"}}, "bus.reader.model: expected one of"),
        "broken feed": ({"gtfs": str(tmp_path)}, "missing agency.txt"),
    }
    for name, (change, expected) in cases.items():
        result = check(write(tmp_path, **change))
        assert result.returncode == 2, name
        assert str(tmp_path / "bus.yaml") in result.stderr and expected in result.stderr, name
    short = tmp_path / "short-secret"
    short.write_text("tiny")
    result = check(write(tmp_path, card_secret_file=str(short)))
    assert result.returncode == 2 and "at least 16 bytes" in result.stderr
    assert "tiny" not in result.stderr  # the secret is never printed
