"""The city bus on the bench: a GNSS receiver driving route M1 of the sample GTFS-JP feed in
timetable time, and the door's RDM6300 card reader, both on ptys (sim/transit/demo_bus.py).

Steps: ``tap: N`` (pass N of the sample riders' passes is held to the reader). The agent's clock
starts a minute before the day's first trip, at the scenario's ``clock_speed``. On a real bench
(``--port reader=/dev/ttyAMA0``, ``--port gnss=/dev/ttyUSB0``) a tap is a prompt, and the GNSS
must see the sky.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import yaml

from sim.hil.kinds import Outcome, Prompt, Setup
from sim.transit.demo_bus import FEED, ROUTE, DemoBus

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "bus-01.yaml"


class BusBench:
    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.real = setup.target == "real"
        self.in_process = False
        self.demo = None if self.real else DemoBus(setup.workdir / "bus", seed=setup.seed)
        self.secret = setup.workdir / "secrets" / "card-secret"
        self.secret.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.secret.write_text(secrets.token_hex(32))
        self.secret.chmod(0o600)

    def agent_config(self) -> dict[str, Any]:
        rendered = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
        section = rendered["bus"] | {
            "gtfs": str(FEED),
            "route_id": ROUTE,
            "card_secret_file": str(self.secret),
            "tablet": {"bind": "127.0.0.1", "port": 0},
            "state_path": str(self.setup.workdir / "outbox" / "bus-state.db"),
        }
        if self.real:
            ports = self.setup.ports
            section["reader"] = {"model": "rdm6300", "port": ports.get("reader", "/dev/ttyAMA0")}
            section["gnss"] = {"port": ports.get("gnss", "/dev/ttyUSB0")}
            return {"agent": "bus", "bus": section}
        assert self.demo is not None
        fitted = self.demo.agent_config({"bus": section}, self.secret)
        fitted["bus"]["tablet"] = {"bind": "127.0.0.1", "port": self.demo.tablet_port}
        return {"agent": "bus", "clock_start": fitted["clock_start"], "bus": fitted["bus"]}

    def act(self, action: str, value: Any) -> Outcome:
        if self.real:
            return Prompt(f"hold pass {value} to the door's reader")
        assert self.demo is not None
        self.demo.reader.present(self.demo.passes[int(value)])
        return None

    def close(self) -> None:
        if self.demo is not None:
            self.demo.close()


class BusKind:
    name = "bus"
    actions = frozenset({"tap"})
    port_names = ("reader", "gnss")
    users = ()

    def open(self, setup: Setup) -> BusBench:
        return BusBench(setup)


KIND = BusKind()
