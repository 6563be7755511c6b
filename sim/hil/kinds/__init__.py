"""Device kinds the harness knows, each one small plug-in, imported only when a scenario needs it
(a gauge's bench never imports OpenCV).

A plug-in module has ``KIND``: a :class:`Kind`, whose ``open`` gives the :class:`Bench` of one run,
simulated or real. A bench makes the agent's config for its ports, and runs the kind's own steps:
it does what it can and returns ``None``, or a :class:`Prompt` for a person at a real bench, or a
:class:`Skip` with the reason the bench cannot do it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from edge.runtime.clock import Clock
    from sim.hil.city import CitySide
    from sim.processes import Processes

Target = Literal["sim", "real"]

KINDS = {
    "river": "sim.hil.kinds.river",
    "camera": "sim.hil.kinds.camera",
    "bus": "sim.hil.kinds.bus",
    "tracker": "sim.hil.kinds.tracker",
}


@dataclass(frozen=True)
class Prompt:
    """Something only a person at the bench can do; the step waits until they say it is done."""

    text: str


@dataclass(frozen=True)
class Skip:
    """What this bench cannot do, and why."""

    reason: str


Outcome = Prompt | Skip | None


@dataclass(frozen=True)
class Setup:
    """What a bench is given: where, on what clock, which ports (``--port NAME=PATH``)."""

    target: Target
    device: str
    workdir: Path
    clock: Clock
    seed: int
    ports: dict[str, str]
    options: dict[str, Any]  # the scenario's ``bench:`` section
    city: CitySide
    processes: Processes  # city-side processes the bench starts (a LoRaWAN gateway)


class Bench(Protocol):
    in_process: bool  # the agent must run in this process (its pins are mock pins)

    def agent_config(self) -> dict[str, Any]:
        """The agent's config less device, outbox and clock: agent, its section, the link."""
        ...

    def act(self, action: str, value: Any) -> Outcome: ...

    def close(self) -> None: ...


class Kind(Protocol):
    name: str
    actions: frozenset[str]
    port_names: tuple[str, ...]  # what --port may name, for --help and error messages
    users: tuple[str, ...]  # broker users this kind's bench needs besides the device

    def open(self, setup: Setup) -> Bench: ...


def load_kind(name: str) -> Kind:
    if name not in KINDS:
        raise KeyError(name)
    return importlib.import_module(KINDS[name]).KIND
