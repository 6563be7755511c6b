"""``machimori gateway`` as a technician uses it, and the gateway as a real process: killed with
SIGKILL mid-stream and started again, its devices carry on without a re-join."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from gateway_rig import GW_EUI, envelopes, join, level, otaa_device, statuses

from sim.devices.packet_forwarder import PacketForwarderSim

ROOT = Path(__file__).resolve().parents[2]


def machimori(*args):
    return subprocess.run(
        [sys.executable, "-m", "machimori", "gateway", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


@pytest.mark.parametrize("action", [[], ["run"], ["check"], ["sessions"], ["forget"]])
def test_every_action_has_help(action):
    result = machimori(*action, "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: machimori gateway" in result.stdout


def test_check_summarises_the_example_config_without_keys():
    result = machimori("check", "--config", "configs/gateway.yaml")
    assert result.returncode == 0, result.stderr
    assert "3 devices (2 OTAA, 1 ABP)" in result.stdout
    registry = yaml.safe_load((ROOT / "configs/devices.yaml").read_text())
    for device in registry["devices"]:
        for section in ("otaa", "abp"):
            for name, value in (device.get(section) or {}).items():
                if name.endswith("key"):
                    assert value not in result.stdout + result.stderr


def test_a_bad_registry_is_named_without_echoing_the_key(tmp_path):
    registry = yaml.safe_load((ROOT / "configs/devices.yaml").read_text())
    registry["devices"][1]["otaa"]["app_key"] = "0123456789abcdef0123456789abcdeX"
    (tmp_path / "devices.yaml").write_text(yaml.safe_dump(registry))
    config = yaml.safe_load((ROOT / "configs/gateway.yaml").read_text())
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(config))
    result = machimori("check", "--config", str(tmp_path / "gateway.yaml"))
    assert result.returncode == 2
    assert "devices.yaml: devices[1].otaa: expected app_key to be an AES-128 key" in result.stderr
    assert "0123456789abcdef" not in result.stderr


def test_bad_config_key_exits_2_naming_it(tmp_path):
    config = yaml.safe_load((ROOT / "configs/gateway.yaml").read_text())
    config["lorawan"]["rx_window"] = "rx3"
    config["registry"] = str(ROOT / "configs/devices.yaml")
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(config))
    result = machimori("check", "--config", str(tmp_path / "gateway.yaml"))
    assert result.returncode == 2
    assert "gateway.yaml: lorawan.rx_window: expected one of 'rx1', 'rx2', 'auto'" in result.stderr


def test_a_channel_outside_as923_1_exits_2_naming_it(tmp_path):
    config = yaml.safe_load((ROOT / "configs/gateway.yaml").read_text())
    config["lorawan"]["channels_mhz"] = [922.0, 868.3]
    config["registry"] = str(ROOT / "configs/devices.yaml")
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(config))
    result = machimori("check", "--config", str(tmp_path / "gateway.yaml"))
    assert result.returncode == 2
    assert "gateway.yaml: lorawan" in result.stderr and "868.3 MHz is not in" in result.stderr
    config["lorawan"]["channels_mhz"] = [922.0, 922.2]
    (tmp_path / "gateway.yaml").write_text(yaml.safe_dump(config))
    result = machimori("check", "--config", str(tmp_path / "gateway.yaml"))
    assert "channels  923.2, 923.4, 922, 922.2 MHz" in result.stdout


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def reachable(pf, timeout_s=20.0):
    """Wait until the gateway process answers PUSH_DATA (it is up and bound)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            pf.push()
            return
        except TimeoutError:
            assert time.monotonic() < deadline, "gateway did not come up"


def test_gateway_process_survives_sigkill_without_rejoin_or_replay(
    broker, make_config, watch, keys, tmp_path
):
    port = free_udp_port()
    config = make_config(broker, udp={"port": port})
    watcher = watch(broker)
    log = tmp_path / "gateway.log"

    def start():
        with open(log, "ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "machimori", "gateway", "run", "--config", str(config)],
                stdout=out,
                stderr=out,
                cwd=ROOT,
            )

    proc = start()
    pf = PacketForwarderSim(GW_EUI, ("127.0.0.1", port), keepalive_s=0.5, ack_timeout_s=0.5)
    try:
        pf.start(timeout_s=20)  # PULL_DATA until the new process answers
        device = otaa_device(keys)
        join(device, pf)
        captured = level(device, 0)
        pf.uplink(captured)
        pf.uplink(level(device, 1))
        watcher.collect(lambda s: len(envelopes(s)) >= 2)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(20) == -signal.SIGKILL
        proc = start()
        reachable(pf)
        pf.uplink(captured)  # replayed after the restart
        pf.uplink(level(device, 2))
        watcher.collect(lambda s: len(envelopes(s)) >= 3)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()
    finally:
        pf.close()
        if proc.poll() is None:
            proc.kill()
    seen = watcher.collect(lambda s: statuses(s) and statuses(s)[-1].state == "offline")
    seqs = [e.seq for e in envelopes(seen)]  # at least once: a killed outbox may send again
    assert list(dict.fromkeys(seqs)) == [0, 1, 2]
    lorawan = statuses(seen)[-1].health["lorawan"]
    assert lorawan["rejected"] == {"frame.fcnt_replay": 1}
    assert "joins" not in lorawan["accepted"]  # the restarted process needed no join
    sessions = machimori("sessions", "--config", str(config))
    row = next(line for line in sessions.stdout.splitlines() if line.startswith("river-lora-01"))
    assert row.split()[2:7] == ["otaa", f"{device.dev_addr:08x}", "2", "0", "2"]
    forgotten = machimori("forget", "--config", str(config), "river-lora-01")
    assert "must join again" in forgotten.stdout
    assert "not activated" in machimori("sessions", "--config", str(config)).stdout
