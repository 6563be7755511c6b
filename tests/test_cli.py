"""The console script a technician meets first."""

from __future__ import annotations

import subprocess
import sys

import pytest


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "machimori", *args], capture_output=True, text=True, timeout=60
    )


def test_top_level_help_lists_commands():
    result = run("--help")
    assert result.returncode == 0
    for command in ("agent", "demo"):
        assert f"  {command} " in result.stdout


@pytest.mark.parametrize(
    "command",
    [["agent"], ["agent", "run"], ["agent", "check"], ["demo"], ["hil", "run"], ["sim", "city"]],
)
def test_every_command_has_help(command):
    result = run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: machimori" in result.stdout


def test_unknown_command_is_named():
    result = run("fly")
    assert result.returncode == 2
    assert "unknown command 'fly'" in result.stdout


def test_agent_command_does_not_import_gateway_or_opencv():
    code = (
        "import sys, edge.cli, edge.agents.river; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('gateway', 'sim', 'cv2')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "[]"
