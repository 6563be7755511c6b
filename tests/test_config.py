"""A config mistake names the file, the key and what was expected; the CLI exits 2, no trace."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.agents import AGENTS, load_agent
from edge.runtime.config import ConfigError
from edge.runtime.host import AgentFile

ROOT = Path(__file__).resolve().parents[1]
GOOD = """\
device: {id: river-01, kind: river}
agent: river
mqtt: {host: 127.0.0.1, port: 1883}
outbox: {path: /tmp/x.db}
river:
  sensor: {model: a02yyuw, port: /dev/ttyUSB0}
  interval_s: 600
"""


def write(tmp_path, text):
    path = tmp_path / "agent.yaml"
    path.write_text(text)
    return path


def test_good_file_loads(tmp_path):
    from edge.agents.river import RiverConfig

    file = AgentFile.load(write(tmp_path, GOOD), AGENTS)
    assert file.host.device.id == "river-01"
    assert file.host.mqtt.port == 1883
    assert file.agent_config(RiverConfig).sensor.port == "/dev/ttyUSB0"


@pytest.mark.parametrize(
    ("change", "key", "expected"),
    [
        (("port: 1883", "port: '1883'"), "mqtt.port", "an integer"),
        (("port: 1883", "prot: 1883"), "mqtt.prot", "one of the known keys"),
        (("kind: river", "kind: boat"), "device.kind", "one of 'river'"),
        (("id: river-01", "id: River 01"), "device", "device id"),
        (("device: {id: river-01, kind: river}\n", ""), "device", "required"),
        (("mqtt: {host: 127.0.0.1, port: 1883}", "mqtt: [1]"), "mqtt", "a mapping"),
        (("interval_s: 600", "interval_s: fast"), "river.interval_s", "a number"),
        (("interval_s: 600", "interval_s: -5"), "river", "interval_s must be > 0"),
    ],
)
def test_errors_name_file_key_and_expectation(tmp_path, change, key, expected):
    from edge.agents.river import RiverConfig

    path = write(tmp_path, GOOD.replace(*change))
    with pytest.raises(ConfigError) as err:
        AgentFile.load(path, AGENTS).agent_config(RiverConfig)
    assert err.value.file == str(path)
    assert err.value.key == key
    assert expected in str(err.value)


def test_yaml_syntax_error_gives_line(tmp_path):
    path = write(tmp_path, "device: {id: river-01\nagent: [")
    with pytest.raises(ConfigError, match=r"agent.yaml: \(top level\): expected valid YAML .*line"):
        AgentFile.load(path, AGENTS)


def test_cli_reports_config_error_and_exits_2(tmp_path):
    path = write(tmp_path, GOOD.replace("agent: river", "agent: submarine"))
    result = subprocess.run(
        [sys.executable, "-m", "machimori", "agent", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    expected = f"agent: expected one of {', '.join(AGENTS)}, got 'submarine'"
    assert f"config error: {path}: {expected}" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_check_accepts_good_file(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "machimori",
            "agent",
            "check",
            "--config",
            str(write(tmp_path, GOOD)),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    assert "river agent for river-01" in result.stdout


@pytest.mark.parametrize(
    "path",
    sorted(p for p in (ROOT / "configs").glob("*.yaml") if "agent:" in p.read_text()),
    ids=lambda p: p.name,
)
def test_example_configs_are_valid(path):
    file = AgentFile.load(path, AGENTS)
    file.agent_config(load_agent(file.host.agent).Config)
