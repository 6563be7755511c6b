"""A river gauge as it runs on a device, for the tests that need one as its own process: the
config of a river agent on a simulated A02YYUW sensor, reporting every ``interval_s``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


def write_river_config(
    path: Path,
    device: str,
    broker: Any,
    sensor_port: str,
    outbox: dict[str, Any],
    *,
    interval_s: float,
    **mqtt: Any,
) -> Path:
    """``outbox``: the outbox section (path and options); ``mqtt``: settings beyond the broker's
    address and fast reconnects."""
    config = {
        "device": {"id": device, "kind": "river"},
        "agent": "river",
        "mqtt": {
            "host": broker.host,
            "port": broker.port,
            "reconnect_min_s": 0.2,
            "reconnect_max_s": 1.0,
            **mqtt,
        },
        "outbox": outbox,
        "river": {
            "sensor": {"port": sensor_port},
            "mount_height_m": 5.0,
            "interval_s": interval_s,
            "burst": 1,
            "min_valid": 1,
        },
    }
    path.write_text(yaml.safe_dump(config))
    return path
