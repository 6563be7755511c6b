"""Field agents: the behaviour of each kind of device, written against drivers.

Registered by name so the CLI imports only the agent a device runs.
"""

from __future__ import annotations

import importlib

AGENTS = {
    "river": "edge.agents.river:RiverAgent",
    "camera": "edge.agents.camera:CameraAgent",
    "bus": "edge.agents.bus:BusAgent",
    "tracker": "edge.agents.tracker:TrackerAgent",
}


def load_agent(name: str) -> type:
    if name not in AGENTS:
        raise KeyError(f"unknown agent {name!r}; known: {', '.join(AGENTS)}")
    module, cls = AGENTS[name].split(":")
    return getattr(importlib.import_module(module), cls)
