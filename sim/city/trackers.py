"""Many child trackers in one process (``machimori sim trackers``), so that a city's 1,200 fit
on a small machine: each tracker keeps its own identity end to end — its own MQTT user and
password, its own connection, its own durable outbox and ``seq`` — through the same
``AgentHost`` (outbox + MQTT uplink + the store's acknowledgements) a tracker agent runs on. Only
the hardware is left out: instead of a GNSS receiver and the reporting policy, each tracker sends
the positions its child's day gives (``sim/city_children.py``: a fix every ~50 m walked, every
15 min standing outdoors, the end of a walk once more), at their time on the city's clock.

A tracker that is off sends nothing: after a SIGKILL the process starts again from the city's
present, and positions whose time passed meanwhile were never measured (no ``seq`` is consumed
for them, so they are not losses). ``sim city`` runs a few of the city's children on real
tracker agents with a GNSS receiver on a pty, the rest here.
"""

from __future__ import annotations

import logging
import signal
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from edge.protocol.envelope import parse_timestamp
from edge.protocol.tracker import POSITION, Position
from edge.runtime import logs
from edge.runtime.clock import Clock
from edge.runtime.config import build, load_yaml
from edge.runtime.host import AgentHost, DeviceConfig, HostConfig, OutboxConfig
from edge.runtime.uplink import MqttConfig
from sim.city_children import City as Children
from sim.city_children import lat_lon

log = logging.getLogger(__name__)


def tracker_name(child: int) -> str:
    return f"tracker-{child:04d}"


@dataclass
class TrackerFleetConfig:
    """One fleet process's trackers: children ``first`` .. ``first + count - 1`` of the city's
    ``children`` (the same seeded day every process and the city side compute)."""

    children: int
    first: int
    count: int
    day: str  # the city's local day, YYYY-MM-DD
    clock_speed: float
    clock_start: str  # RFC 3339 UTC
    clock_epoch: str
    mqtt: dict[str, Any]  # host, port and timings; username and password_file per tracker
    secrets_dir: Path  # {device}.mqtt: each tracker's password, mode 0600
    outbox_dir: Path  # {device}.db
    seed: int = 1
    log_level: str = "warning"

    def __post_init__(self) -> None:
        if self.children < 1 or self.count < 1 or self.first + self.count > self.children:
            raise ValueError("first/count: not a slice of the city's children")
        date.fromisoformat(self.day)
        parse_timestamp(self.clock_start, "clock_start")
        parse_timestamp(self.clock_epoch, "clock_epoch")


def children_day(children: int, day: date, seed: int) -> Children:
    """The city's children on ``day``: no deviations (those are the routine bench's)."""
    return Children(children, day, 1, seed=seed)


class TrackerFleet:
    def __init__(self, config: TrackerFleetConfig) -> None:
        self.config = config
        start = parse_timestamp(config.clock_start, "clock_start")
        epoch = parse_timestamp(config.clock_epoch, "clock_epoch")
        self.clock = Clock(config.clock_speed, start, epoch=epoch)
        self.hosts = {
            i: AgentHost(self._host_config(i), self.clock)
            for i in range(config.first, config.first + config.count)
        }
        day = date.fromisoformat(config.day)
        now_ms = int(self.clock.now().timestamp() * 1000)
        mine = range(config.first, config.first + config.count)
        self.fixes = [
            f
            for f in children_day(config.children, day, config.seed).day(day)
            if f[1] in mine and f[0] >= now_ms  # what is past was never measured
        ]
        self.stop = threading.Event()

    def _host_config(self, child: int) -> HostConfig:
        c = self.config
        name = tracker_name(child)
        mqtt = build(
            MqttConfig,
            c.mqtt | {"username": name, "password_file": str(c.secrets_dir / f"{name}.mqtt")},
            file=c.secrets_dir,
            key="mqtt",
        )
        return HostConfig(
            device=DeviceConfig(name, "tracker"),
            agent="tracker",
            mqtt=mqtt,
            outbox=OutboxConfig(path=c.outbox_dir / f"{name}.db", sync="normal"),
            clock_speed=c.clock_speed,
            clock_start=c.clock_start,
            clock_epoch=c.clock_epoch,
        )

    def run(self) -> None:
        """Until SIGTERM/SIGINT; then every tracker flushes and closes its outbox."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop.set())
        for host in self.hosts.values():
            host.uplink.start()
        log.info("trackers up", extra={"fields": {"trackers": len(self.hosts)}})
        try:
            self._send()
            self.stop.wait()
        finally:
            self._close()

    def _send(self) -> None:
        for ts_ms, child, x, y, acc in self.fixes:
            at = datetime.fromtimestamp(ts_ms / 1000, UTC)
            wait = (at - self.clock.now()).total_seconds()
            if wait > 0 and self.stop.wait(self.clock.real_seconds(wait)):
                return
            lat, lon = lat_lon(x, y)
            data = Position(lat, lon, acc, src="gnss", why="moving").data()
            self.hosts[child].publish("telemetry", POSITION, data, at)

    def _close(self) -> None:
        """Each tracker's stop (flush, offline status, disconnect) at once, not one by one."""
        threads = []
        for host in self.hosts.values():

            def close(h: AgentHost = host) -> None:
                h.uplink.stop(h.config.flush_timeout_s)
                h.outbox.close()

            thread = threading.Thread(target=close, daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join(30)


def load_config(path: Path) -> TrackerFleetConfig:
    config = build(TrackerFleetConfig, load_yaml(path), file=path)
    config.secrets_dir, config.outbox_dir = Path(config.secrets_dir), Path(config.outbox_dir)
    return config


def main(config_path: Path) -> int:
    config = load_config(config_path)
    logs.setup(config.log_level)
    TrackerFleet(config).run()
    return 0
