"""Fixtures of the river tests: a LoRaWAN network per test (see river_rig.LoraNetwork)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from river_rig import LoraNetwork

from edge.runtime.clock import Clock


@pytest.fixture
def lora_network(tmp_path, broker) -> Iterator:
    """``lora_network(["river-a", "river-b"])``: a gateway that knows these devices."""
    made: list[LoraNetwork] = []

    def make(devices: list[str], clock: Clock | None = None) -> LoraNetwork:
        made.append(LoraNetwork(tmp_path, broker, devices, clock))
        return made[-1]

    yield make
    for network in made:
        network.close()
