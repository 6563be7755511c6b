"""Fixtures for the city store's tests: a real PostgreSQL server (a missing one fails the run), a
database of either backend, a running store on its own Mosquitto, an MQTT publisher, and one
headless Chromium per test process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from store_helpers import (
    BACKENDS,
    Publisher,
    Running,
    empty_database,
    seed,
    start,
    store_config,
)

from sim.broker import Mosquitto
from sim.postgres import Postgres


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Postgres]:
    with Postgres() as server:
        yield server


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database; every test using it runs once per backend."""
    return empty_database(request, tmp_path)


@pytest.fixture
def publisher(own_broker: Mosquitto) -> Iterator[Publisher]:
    pub = Publisher(own_broker)
    yield pub
    pub.close()


@pytest.fixture
def running_store(tmp_path: Path, db_url: str, own_broker: Mosquitto) -> Iterator[Running]:
    """Ingest + HTTP on a fresh database of each backend, on this test's own broker."""
    run = start(store_config(tmp_path, db_url, own_broker, refresh_s=2))
    yield run
    run.stop()


@pytest.fixture(scope="module", params=BACKENDS)
def api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Running]:
    """HTTP only (no broker) on each backend, with a week of data seeded directly; shared by a
    module's tests, which only read."""
    tmp_path = tmp_path_factory.mktemp("api")
    run = start(store_config(tmp_path, empty_database(request, tmp_path)))
    seed(run.store, run.service.images)
    yield run
    run.stop()
