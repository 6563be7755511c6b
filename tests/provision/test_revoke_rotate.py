"""Revocation and rotation take effect at the real broker, and other clients stay connected."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime

import yaml
from mqtt_client import Client, refused

from edge.protocol import Envelope, utc_timestamp
from gateway.store.launch import start_store

P = "machimori/v1"


def wait_until(condition, timeout_s=10.0):
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_revoked_device_is_dropped_and_refused_and_others_stay(city, provisioned_broker):
    broker = provisioned_broker
    password = city.secret("river-01", "mqtt.password")
    doomed = Client(broker, "river-01", password)
    other = Client(broker, "river-02", city.secret("river-02", "mqtt.password"))
    store = Client(broker, "city", city.secret("city", "mqtt.password"))
    store.subscribe(f"{P}/#")
    doomed.publish(f"{P}/river/river-01/telemetry")
    store.received_until(f"{P}/river/river-01/telemetry")

    started = time.monotonic()
    out = city.ok("revoke", "river-01")
    assert "broker reload: ok" in out
    wait_until(doomed.disconnected.is_set, timeout_s=5)
    assert time.monotonic() - started < 5
    assert refused(broker, "river-01", password)
    # Everyone else kept their connection through the reload, and still works.
    assert not other.disconnected.is_set() and not store.disconnected.is_set()
    other.publish(f"{P}/river/river-02/telemetry")
    assert store.received_until(f"{P}/river/river-02/telemetry")[-1].endswith("river-02/telemetry")

    # The catalogue keeps the device (its data keeps a name); its secrets are gone.
    catalogue = yaml.safe_load((city.home / "catalogue.yaml").read_text())
    entry = next(d for d in catalogue["devices"] if d["id"] == "river-01")
    assert entry["status"] == "revoked" and entry["revoked"]
    assert not (city.home / "secrets" / "river-01").exists()
    assert "river-01" not in (city.broker_dir / "passwd").read_text()
    assert "user river-01\n" not in (city.broker_dir / "acl").read_text()
    assert city.run("render", "river-01", "--out", str(city.root / "card")) != 0
    assert city.run("add", "river-01", "--kind", "river") == 2  # ids are never reused
    for c in (other, store):
        c.close()


def test_rotation_keeps_the_old_password_until_confirmed(city, provisioned_broker):
    broker = provisioned_broker
    old = city.secret("river-02", "mqtt.password")
    assert "new secrets (generation 2)" in city.ok("rotate", "river-02")
    new = city.secret("river-02", "mqtt.password", generation=2)
    assert new != old
    city.ok("sync")
    # The card now gets the new password; the broker still takes the old one.
    city.ok("render", "river-02", "--out", str(city.root / "card"))
    assert (city.root / "card/etc/machimori/river-02.mqtt").read_text() == new
    assert not refused(broker, "river-02", old)
    assert refused(broker, "river-02", new)

    city.ok("rotate", "river-02", "--confirm")
    assert refused(broker, "river-02", old)
    Client(broker, "river-02", new).close()
    assert not (city.home / "secrets" / "river-02" / "1").exists()
    assert city.run("rotate", "river-02", "--confirm") == 2  # nothing left to confirm


def test_a_revoked_devices_data_stays_in_the_store(city, provisioned_broker, tmp_path):
    """The store (its own process, logged in as the catalogue's `city`) keeps what a device
    sent before its revocation, and still serves it."""
    broker = provisioned_broker
    store = start_store(
        tmp_path / "store",
        broker.host,
        broker.port,
        "city",
        city.secret("city", "mqtt.password"),
        sites_file=city.out / "sites.yaml",
    )
    url = f"{store.url}api/v1/devices/river-01"

    def stored():
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return json.load(answer)
        except OSError:
            return None

    try:
        device = Client(broker, "river-01", city.secret("river-01", "mqtt.password"))
        data = {"level_m": 1.234, "distance_mm": 3966, "valid": 9, "samples": 9}
        for seq in range(3):
            ts = utc_timestamp(datetime.now(UTC))
            device.publish(
                f"{P}/river/river-01/telemetry",
                Envelope("river-01", seq, ts, "level", data).to_json(),
            )
        wait_until(lambda: (stored() or {}).get("last_seq") == 2)
        device.close()
        city.ok("revoke", "river-01")
        kept = stored()
        assert kept is not None and kept["last_seq"] == 2 and kept["lost"] == 0
    finally:
        store.stop()
