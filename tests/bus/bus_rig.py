"""A bus at real ports, for the end-to-end tests: the bus agent on a thread with its outbox and
MQTT link, a simulated RDM6300 and GNSS receiver on ptys, the city store on the same broker with
the sample GTFS-JP feed, and the card registry. The GNSS position is set by the test (a stop by
id) or driven along the timetable by ``sim.transit.bus_run``."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml
from store_helpers import Running, start, store_config, wait_until

from edge.agents.bus import BusAgent
from edge.cli import load
from edge.protocol.bus import card_hash
from edge.protocol.gtfs import Feed
from edge.runtime.clock import Clock
from edge.runtime.host import AgentHost
from gateway.store.config import TransitConfig
from gateway.store.db import Filter
from sim.broker import Mosquitto
from sim.child_day import Sky
from sim.devices.gnss_receiver import GnssReceiverSim
from sim.devices.rdm6300 import Rdm6300Sim

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sim" / "transit" / "feed"
JST = ZoneInfo("Asia/Tokyo")
SECRET = b"machimori-test-card-secret-0001"
DEVICE = "bus-01"


class BusRig:
    def __init__(self, tmp_path: Path, broker: Mosquitto) -> None:
        self.tmp_path = tmp_path
        self.broker = broker
        self.feed = Feed.load(SAMPLE)
        config = store_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", broker)
        config.transit = TransitConfig(gtfs=SAMPLE, stale_after_s=86400)
        self.store: Running = start(config)
        self.secret_file = tmp_path / "card-secret"
        self.secret_file.write_bytes(SECRET)
        self.reader = Rdm6300Sim()
        self.position: tuple[float, float] | None = None  # None: no fix

        def where(_at: datetime) -> Sky:
            if self.position is None:
                return Sky(0.0, 0.0, False, 99.0, 0)
            return Sky(*self.position, True, 0.9, 9)

        self.where = where
        self.gnss: GnssReceiverSim | None = None
        self.clock: Clock | None = None
        self.host: AgentHost | None = None
        self.agent: BusAgent | None = None
        self._thread: threading.Thread | None = None
        self.tablet_port = 0

    # -- the bus ---------------------------------------------------------------------------
    def config_file(self, **bus: Any) -> Path:
        config = {
            "device": {"id": DEVICE, "kind": "bus"},
            "agent": "bus",
            "mqtt": {"host": self.broker.host, "port": self.broker.port, "reconnect_min_s": 0.2},
            "outbox": {"path": str(self.tmp_path / "outbox.db"), "sync": "normal"},
            "bus": {
                "gtfs": str(SAMPLE),
                "route_id": "M1",
                "card_secret_file": str(self.secret_file),
                "reader": {"model": "rdm6300", "port": self.reader.path, "hold_gap_s": 0.4},
                "gnss": {"port": self.gnss.path if self.gnss else "/dev/null"},
                "tablet": {"bind": "127.0.0.1", "port": self.tablet_port},
                "state_path": str(self.tmp_path / "bus-state.db"),
                "position_interval_s": 2.0,
                "idle_interval_s": 10.0,
                **bus,
            },
        }
        path = self.tmp_path / "bus-01.yaml"
        path.write_text(yaml.safe_dump(config), encoding="utf-8")
        return path

    def start_bus(
        self,
        at: datetime,
        speed: float = 1.0,
        where: Any = None,
        gnss_period_s: float = 1.0,
        **bus: Any,
    ) -> None:
        """Start the agent with its clock at ``at``; the GNSS reports ``where(now)``."""
        if self.clock is None:
            self.clock = Clock(speed, at)
            self.gnss = GnssReceiverSim(
                where or (lambda now: self.where(now)),
                self.clock,
                period_s=self.clock.real_seconds(gnss_period_s),
                name="ttyGNSS",
                link_dir=self.tmp_path,
            )
        file, agent_cls, agent_config = load(self.config_file(**bus))
        self.host = AgentHost(file.host, clock=self.clock)
        self.agent = agent_cls(self.host, agent_config)
        if self.agent.tablet is not None:
            self.tablet_port = self.agent.tablet.port  # a restart keeps the page's address
        self._thread = threading.Thread(target=self.host.run, args=(self.agent,), daemon=True)
        self._thread.start()
        reader = self.agent.reader
        wait_until(lambda: reader.port.is_open, 15, "the bus agent's card reader open")

    def stop_bus(self) -> None:
        assert self.host is not None and self._thread is not None
        self.host.stop.set()
        self._thread.join(20)
        assert not self._thread.is_alive(), "bus agent did not stop"

    @property
    def tablet_url(self) -> str:
        return f"http://127.0.0.1:{self.tablet_port}/"

    def at_stop(self, stop_id: str) -> None:
        """Put the bus at a stop (the GNSS reports it from its next epoch)."""
        stop = self.feed.stops[stop_id]
        self.position = (stop.lat, stop.lon)

    def wait_matched(self, stop_id: str | None, timeout_s: float = 15.0) -> None:
        assert self.agent is not None
        agent = self.agent

        def matched() -> bool:
            m = agent.match
            return (m.stop_id, m.status) == (stop_id, "STOPPED_AT") or (
                stop_id is None and m.trip_id is None and agent.fix is not None
            )

        wait_until(matched, timeout_s, f"the bus matched at {stop_id}")

    def card(self, uid: bytes) -> str:
        return card_hash(SECRET, "em4100", uid)

    # -- the city --------------------------------------------------------------------------
    def messages(self, type: str) -> list[Any]:
        return self.store.store.messages(Filter(kinds=["bus"], type=type), 10_000)

    def wait_messages(self, type: str, n: int, timeout_s: float = 20.0) -> list[Any]:
        wait_until(lambda: len(self.messages(type)) >= n, timeout_s, f"{n} {type} messages")
        time.sleep(0.3)  # any extra one would arrive now
        return self.messages(type)

    def post_entries(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        import urllib.request

        request = urllib.request.Request(
            self.tablet_url + "api/entries",
            json.dumps({"entries": entries}).encode(),
            {"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read())

    def close(self) -> None:
        if self.host is not None and self._thread is not None and self._thread.is_alive():
            self.stop_bus()
        if self.gnss is not None:
            self.gnss.close()
        self.reader.close()
        self.store.stop()


def jst(hour: int, minute: int, second: int = 0, day: int = 1) -> datetime:
    return datetime(2026, 12, day, hour, minute, second, tzinfo=JST)
