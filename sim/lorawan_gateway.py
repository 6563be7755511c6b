"""The city's LoRaWAN gateway as the demo, the bench and the simulated city run it: its device
registry (AppKeys, so 0600) and its config written where a technician would put them, and
``machimori gateway run`` started on them, ready once its UDP socket is bound."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import yaml


def write_gateway_config(
    workdir: Path,
    gateway_id: str,
    registry_entries: list[dict[str, Any]],
    udp_port: int,
    mqtt: dict[str, Any],
    **settings: Any,
) -> Path:
    """The registry and the gateway's config under ``workdir``; returns the config's path.
    ``settings``: top-level keys beyond id, mode, registry, udp, mqtt, outbox and state."""
    registry = workdir / "configs" / "devices.yaml"
    registry.parent.mkdir(parents=True, exist_ok=True)
    registry.write_text(yaml.safe_dump({"devices": registry_entries}))
    registry.chmod(0o600)  # it holds the AppKeys
    config = {
        "gateway": {"id": gateway_id},
        "mode": "udp",
        "registry": str(registry),
        "udp": {"bind": "127.0.0.1", "port": udp_port},
        "mqtt": mqtt,
        "outbox": {"path": str(workdir / "gateway" / "outbox.db")},
        "state": {"path": str(workdir / "gateway" / "state.db")},
        "log_level": "info",
        **settings,
    }
    path = workdir / "configs" / f"{gateway_id}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def wait_for_udp_gateway(log: Path, proc: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """The gateway logs when its UDP socket is bound; the forwarder must not start before."""
    deadline = time.monotonic() + timeout_s
    while "listening for packet forwarders" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the gateway did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)
