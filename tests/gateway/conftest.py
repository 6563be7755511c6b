"""Fixtures of the gateway tests: a gateway in this process on a free UDP port, its config and
device registry, and simulated packet forwarders. Keys are random per test, so a test can look
for them in logs and outputs."""

from __future__ import annotations

import secrets
from contextlib import contextmanager

import pytest
from gateway_rig import GW_EUI, Keys, Net, Running, write_config

from sim.devices.packet_forwarder import PacketForwarderSim


@pytest.fixture
def keys():
    return Keys(*(secrets.token_bytes(16) for _ in range(3)))


@pytest.fixture
def make_config(tmp_path, keys):
    """Write registry and gateway config files; keyword arguments override config sections."""
    return lambda broker, **sections: write_config(tmp_path, broker, keys, **sections)


@pytest.fixture
def gateway():
    """``with gateway(config_path) as gw:`` runs a gateway; it is stopped on leaving."""
    running = []

    @contextmanager
    def start(config_path):
        gw = Running(config_path)
        running.append(gw)
        try:
            yield gw
        finally:
            if gw.thread.is_alive():
                gw.close()

    yield start
    for gw in running:
        if gw.thread.is_alive():
            gw.close()


@pytest.fixture
def forwarders():
    made = []

    def make(address, eui=GW_EUI, **kwargs):
        made.append(PacketForwarderSim(eui, address, **kwargs).start())
        return made[-1]

    yield make
    for pf in made:
        pf.close()


@pytest.fixture
def net(tmp_path, keys):
    made = []

    def make(**settings):
        made.append(Net(tmp_path, keys, **settings))
        return made[-1]

    yield make
    for n in made:
        n.close()
