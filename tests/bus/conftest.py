"""Fixtures of the bus tests: a bus (agent, simulated RDM6300 and GNSS receiver) against a real
Mosquitto and city store, and one headless Chromium for the tablet page."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))

from bus_rig import BusRig  # noqa: E402
from store_helpers import Publisher  # noqa: E402

from sim.broker import Mosquitto  # noqa: E402
from sim.chromium import Chromium  # noqa: E402


@pytest.fixture
def bus_rig(tmp_path: Path, own_broker: Mosquitto) -> Iterator[BusRig]:
    rig = BusRig(tmp_path, own_broker)
    yield rig
    rig.close()


@pytest.fixture
def publisher(own_broker: Mosquitto) -> Iterator[Publisher]:
    pub = Publisher(own_broker)
    yield pub
    pub.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Chromium]:
    with Chromium() as running:
        yield running
