"""Faults, one after another, while the city runs: the broker restarted and crashed (SIGKILL,
persistence lost), the gateway, the store, the tracker service and one agent of each kind (for
the trackers, a fleet process: 120 trackers at once) SIGKILLed and started again, one gauge's
network cut in its namespace, one gauge's disk filled. After each, the time until the store holds
everything every device had issued when the fault ended: the time to recover."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

from sim.city import school
from sim.city.fleet import City
from sim.city.report import issued_and_held, store_rows
from sim.hil.city import GATEWAY


@dataclass
class FaultResult:
    name: str
    recovered_s: float | None  # None: not within the limit
    detail: str = ""


class Chaos:
    def __init__(self, city: City, seed: int, hold_s: float = 4.0) -> None:
        self.city, self.rng, self.hold_s = city, random.Random(seed), hold_s
        self.results: list[FaultResult] = []

    def faults(self) -> list[tuple[str, Callable[[], str]]]:
        city = self.city
        groups: dict[tuple[str, str, bool], list[str]] = {}
        for d in city.devices:  # agents of each kind and link; processes of many trackers apart
            if not d.netns and not d.disk:
                groups.setdefault((d.kind, d.link, d.process != d.name), []).append(d.process)
        plan: list[tuple[str, Callable[[], str]]] = [
            ("broker restarted", self._broker_restart),
            ("broker SIGKILL, persistence lost", self._broker_crash),
        ]
        if GATEWAY in city.processes.running:
            plan.append(("gateway SIGKILL", lambda: self._kill(GATEWAY)))
        plan.append(("store SIGKILL", self._store_kill))
        if school.SERVICE in city.processes.running:
            plan.append(("tracker service SIGKILL", lambda: self._kill(school.SERVICE)))
        for (kind, link, shared), processes in sorted(groups.items()):
            victim = self.rng.choice(sorted(set(processes)))
            what = f"{kind} fleet process" if shared else f"{kind} agent"
            plan.append((f"{what} SIGKILL ({link})", lambda v=victim: self._kill(v)))
        partitioned = [d for d in city.devices if d.netns is not None]
        if partitioned:
            plan.append(("network partition", lambda: self._partition(partitioned[0])))
        full = [d for d in city.devices if d.disk is not None]
        if full:
            plan.append(("agent's disk full", lambda: self._disk_full(full[0])))
        return plan

    def _broker_restart(self) -> str:
        self.city.broker.stop()
        time.sleep(self.hold_s / 2)
        self._broker_up()
        return ""

    def _broker_crash(self) -> str:
        self.city.broker.kill()
        self.city.broker.forget()
        time.sleep(self.hold_s / 2)
        self._broker_up()
        return ""

    def _broker_up(self) -> None:
        b = self.city.broker
        b.start()
        self.city.processes.adopt("broker", b.proc, b.log_path)

    def _kill(self, name: str) -> str:
        self.city.processes.kill(name)
        time.sleep(self.hold_s / 4)
        self.city.processes.restart(name)
        return name

    def _store_kill(self) -> str:
        store = self.city.store
        assert store is not None
        self.city.processes.kill("store")
        time.sleep(self.hold_s / 4)
        self.city.start_store()
        return ""

    def _partition(self, device) -> str:  # noqa: ANN001 - a fleet Device
        device.netns.cut()
        time.sleep(self.hold_s * 2)
        device.netns.heal()
        return device.name

    def _disk_full(self, device) -> str:  # noqa: ANN001
        device.disk.fill()
        time.sleep(self.hold_s)
        device.disk.free()
        return device.name

    def issued(self) -> dict[str, int]:
        return {d.name: issued_and_held(d.outbox)[0] for d in self.city.devices}

    def caught_up(self, targets: dict[str, int]) -> bool:
        """Whether the store holds every seq below each device's target; a device found caught
        up is taken out of ``targets``, so a city of 1,200 trackers is read once, then only the
        devices still behind."""
        assert self.city.store is not None
        db = self.city.store.workdir / "store.db"
        for name, issued in list(targets.items()):
            seqs = {row[0] for row in store_rows(db, name)[0]}
            if any(s not in seqs for s in range(issued)):
                return False
            del targets[name]
        return True

    def _service_target(self) -> int | None:
        """The positions the store holds now: the tracker service holds as many once it has
        caught up (None: no tracker service in this city)."""
        if self.city.school_config is None or self.city.store is None:
            return None
        return school.stored_positions(self.city.store.workdir / "store.db")

    def _service_caught_up(self, target: int | None) -> bool:
        if target is None or self.city.school_config is None:
            return True
        try:
            return school.service_state(self.city.school_config)[0] >= target
        except sqlite3.Error:  # the service is starting again and holds its database
            return False

    def run(self, between_s: float, limit_s: float, tick: Callable[[], None]) -> None:
        for name, fault in self.faults():
            waited = time.monotonic() + between_s
            while time.monotonic() < waited:
                tick()
                time.sleep(0.5)
            detail = fault()
            ended = time.monotonic()
            targets = self.issued()
            service = self._service_target()
            recovered: float | None = None
            while time.monotonic() - ended < limit_s:
                tick()
                if self.caught_up(targets) and self._service_caught_up(service):
                    recovered = time.monotonic() - ended
                    break
                time.sleep(0.5)
            self.results.append(FaultResult(name, recovered, detail))
            state = f"recovered in {recovered:.1f} s" if recovered is not None else "NOT recovered"
            print(f"  chaos: {name} {detail} — {state}", flush=True)
