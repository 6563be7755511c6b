"""A child's tracker on the bench: an NMEA GNSS receiver on a pty that sees a child's school day
(``sim/child_day.py``: home, the walk to school, indoors at school, multipath near buildings), on
the tracker's own clock started at 07:30 JST on a school day, and its battery as a sysfs folder.

Steps: ``fault: {gnss: unplug | replug}`` (the receiver's cable). Bench options: ``home`` (0..3,
one of the sample homes). On a real bench (``--port gnss=/dev/ttyAMA0``) the receiver must see the
sky and the route is walked by a person: positions are checked only where the scenario says.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from edge.runtime.clock import Clock
from sim.child_day import HOMES, JST, ChildDay
from sim.devices.gnss_receiver import GnssReceiverSim
from sim.hil.kinds import Outcome, Prompt, Setup


def school_morning(now: datetime) -> datetime:
    """07:30 JST on the last weekday up to ``now``: the walk to school starts at 07:35."""
    day = now.astimezone(JST).date()
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return datetime.combine(day, time(7, 30), tzinfo=JST)


class TrackerBench:
    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.real = setup.target == "real"
        self.in_process = False
        self.start = school_morning(datetime.now(JST))
        self.receiver: GnssReceiverSim | None = None
        self.battery = setup.workdir / "dev" / "battery"
        self.battery.mkdir(parents=True, exist_ok=True)
        for name, value in (("capacity", "87"), ("voltage_now", "3950000"), ("status", "")):
            (self.battery / name).write_text((value or "Discharging") + "\n")
        if not self.real:
            home = HOMES[int(setup.options.get("home", 0))]
            day = ChildDay(self.start.date(), home, seed=setup.seed)
            clock = Clock(setup.clock.speed, self.start)
            self.receiver = GnssReceiverSim(
                day.sky, clock, period_s=0.1, name="ttyGNSS", link_dir=setup.workdir / "dev"
            )

    def agent_config(self) -> dict[str, Any]:
        port = self.setup.ports.get("gnss", "/dev/ttyAMA0") if self.real else None
        return {
            "agent": "tracker",
            "clock_start": self.start.isoformat(),
            "tracker": {
                "gnss": {"port": port or self.receiver.path},  # type: ignore[union-attr]
                "modem": None,
                "sos_pin": None,
                "battery": str(self.battery),
            },
        }

    def act(self, action: str, value: Any) -> Outcome:
        part, what = next(iter(value.items()))
        if part != "gnss" or what not in ("unplug", "replug"):
            raise ValueError(f"unknown tracker fault {value!r}")
        if self.real:
            return Prompt(f"{what} the GNSS receiver's cable")
        assert self.receiver is not None
        self.receiver.unplug() if what == "unplug" else self.receiver.replug()
        return None

    def close(self) -> None:
        if self.receiver is not None:
            self.receiver.close()


class TrackerKind:
    name = "tracker"
    actions = frozenset({"fault"})
    port_names = ("gnss",)
    users = ()

    def open(self, setup: Setup) -> TrackerBench:
        return TrackerBench(setup)


KIND = TrackerKind()
