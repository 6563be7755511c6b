"""The gateway re-reads its registry when provisioning replaces it: a removed device's session
is dropped, and a registry that does not parse is counted and the one in use stays."""

from __future__ import annotations

import os

import yaml
from gateway_rig import OTAA_EUI, registry_data, write_config

from gateway.lorawan.config import GatewayConfig
from gateway.lorawan.service import GatewayService
from gateway.lorawan.sessions import Session


def service(tmp_path, broker, keys):
    return GatewayService(GatewayConfig.load(write_config(tmp_path, broker, keys)))


def test_a_device_removed_from_the_registry_loses_its_session(tmp_path, broker, keys):
    gw = service(tmp_path, broker, keys)
    eui = f"{OTAA_EUI:016x}"
    gw.store.save_session(Session(eui, 0x26011234, b"\1" * 16, b"\2" * 16, None, 7, "t"))
    gw.network.use_registry(gw.registry)  # as at start: the joined device's session is live
    assert gw.network.session(gw.registry.by_id["river-lora-01"]) is not None
    assert not gw.reload_registry()  # unchanged file: nothing to do

    data = registry_data(keys)
    data["devices"] = [d for d in data["devices"] if d["id"] != "river-lora-01"]
    registry = tmp_path / "devices.yaml"
    replacement = tmp_path / "devices.new"
    replacement.write_text(yaml.safe_dump(data))
    os.replace(replacement, registry)  # as `provision sync` writes it
    assert gw.reload_registry()
    assert "river-lora-01" not in gw.registry.by_id and "river-lora-02" in gw.registry.by_id
    assert eui not in {s.dev_eui for s in gw.store.sessions()}
    assert gw.stats.snapshot()["accepted"]["registry.reloads"] == 1
    gw.store.close()
    gw.outbox.close()


def test_a_broken_registry_is_counted_and_the_old_one_kept(tmp_path, broker, keys):
    gw = service(tmp_path, broker, keys)
    registry = tmp_path / "devices.yaml"
    text = registry.read_text()
    registry.write_text(text.replace(keys.app_key.hex(), "not-a-key"))
    assert not gw.reload_registry()
    assert gw.stats.snapshot()["rejected"]["registry.invalid"] == 1
    assert set(gw.registry.by_id) == {"river-lora-01", "river-lora-02"}
    assert "not-a-key" not in str(gw.health.snapshot())  # the error names the key, not a value
    gw.store.close()
    gw.outbox.close()
