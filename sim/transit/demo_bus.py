"""The demo's city bus: bus-01 on route M1 of the sample feed, in timetable time.

The bus agent runs as its own process (``machimori agent run``) with its clock started a minute
before the day's first trip (today's, or the last day with service), ``SPEED`` times faster, so
the demo shows the bus leaving the station, riders tapping passes on the simulated RDM6300, cash
riders entered on the tablet's API, and the bus's position in the city's GTFS-Realtime feed.
The card registry gets the riders' passes (children, adults, seniors, a lost and revoked one;
some cards are not registered at all).
"""

from __future__ import annotations

import secrets
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from edge.protocol.bus import card_hash
from edge.protocol.gtfs import Feed
from edge.runtime.clock import Clock
from gateway.services.cards import CardRegistry
from gateway.store.db import open_store
from sim.broker import free_port
from sim.devices.gnss_receiver import GnssReceiverSim
from sim.devices.rdm6300 import Rdm6300Sim
from sim.transit.bus_run import BusDrive, Riders

FEED = Path(__file__).parent / "feed"
DEVICE = "bus-01"
ROUTE = "M1"
SPEED = 20.0  # a 21-minute trip in about a minute; riders still have time to tap
PASSES = 30
CATEGORIES = ["adult"] * 10 + ["child"] * 8 + ["senior"] * 5 + ["disability"] * 2


def service_day(feed: Feed, now: datetime) -> datetime:
    """Today in the feed's time zone, or the last day before it with trips on the route."""
    local = now.astimezone(ZoneInfo(feed.agency_timezone))
    for back in range(8):
        day = local - timedelta(days=back)
        if feed.trips_on(ROUTE, day.date()):
            return day.replace(hour=12, minute=0, second=0, microsecond=0)
    raise RuntimeError("the sample feed has no service this week")


class DemoBus:
    def __init__(
        self,
        workdir: Path,
        seed: int = 7,
        *,
        device: str = DEVICE,
        trips: slice = slice(None),
        clock: Clock | None = None,
    ) -> None:
        """``trips``: which of the day's trips this bus runs (a city's buses share them out);
        ``clock``: a simulated city's, instead of the bus's own timetable clock."""
        self.workdir = workdir
        self.device = device
        self.feed = Feed.load(FEED)
        day = service_day(self.feed, clock.now() if clock else datetime.now(UTC))
        runs = self.feed.trips_on(ROUTE, day.date())[trips]
        midnight = day - timedelta(hours=12)
        self.start_at = midnight + timedelta(seconds=runs[0].start_s - 60)
        self.clock = clock or Clock(SPEED, self.start_at)
        self.drive = BusDrive(self.feed, [t.id for t in runs], day)
        devices = workdir / "dev"
        devices.mkdir(parents=True, exist_ok=True)
        suffix = "" if device == DEVICE else f"-{device}"
        self.reader = Rdm6300Sim(f"ttyRFID{suffix}", link_dir=str(devices), seed=seed)
        self.gnss = GnssReceiverSim(
            self.drive.sky,
            self.clock,
            period_s=1 / self.clock.speed,
            name=f"ttyGNSS{suffix}",
            link_dir=devices,
        )
        self.secret = secrets.token_bytes(32).hex().encode()
        self.passes = [bytes([0x3C, 0, seed, 0, i]) for i in range(PASSES)]
        self.tablet_port = free_port()
        self.seed = seed
        self.riders: Riders | None = None

    @property
    def tablet_url(self) -> str:
        return f"http://127.0.0.1:{self.tablet_port}/"

    def agent_config(self, rendered: dict[str, Any], secret_file: Path) -> dict[str, Any]:
        """The provisioned config, fitted to this machine: outbox, timetable clock, simulated
        ports, the tablet on loopback."""
        return rendered | {
            "outbox": {"path": str(self.workdir / "outbox" / f"{self.device}.db")},
            "clock_speed": self.clock.speed,
            "clock_start": self.start_at.isoformat(),
            "log_level": "info",
            "bus": rendered["bus"]
            | {
                "gtfs": str(FEED),
                "route_id": ROUTE,
                "card_secret_file": str(secret_file),
                "reader": {"model": "rdm6300", "port": self.reader.path},
                "gnss": {"port": self.gnss.path},
                "tablet": {"bind": "127.0.0.1", "port": self.tablet_port},
                "state_path": str(self.workdir / "outbox" / f"{self.device}-state.db"),
            },
        }

    def register_passes(self, database: str) -> None:
        """The counter issued passes for most riders; one was lost and revoked."""
        store = open_store(database)
        try:
            registry = CardRegistry(store)
            day = self.start_at.date()
            valid = (day - timedelta(days=180), day + timedelta(days=180))
            for uid, category in zip(self.passes, CATEGORIES, strict=False):
                registry.issue(
                    card_hash(self.secret, "em4100", uid), category, "commuter", valid, 0
                )
            registry.revoke(card_hash(self.secret, "em4100", self.passes[0]), 0)
        finally:
            store.close()

    def start_riders(self, timeout_s: float = 30.0) -> None:
        """Once the agent's tablet answers, riders start arriving at the stops."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(self.tablet_url + "api/state", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    raise RuntimeError("the bus agent's tablet did not answer") from None
                time.sleep(0.2)
        self.riders = Riders(
            self.drive, self.clock, self.reader, self.passes, self.seed, self.tablet_url
        ).start()

    def close(self) -> None:
        if self.riders is not None:
            self.riders.stop()
        self.gnss.close()
        self.reader.close()
