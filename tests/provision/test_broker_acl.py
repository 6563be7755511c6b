"""The broker's files from `machimori provision sync`, read by a real Mosquitto: each identity
may do what its kind needs and nothing else (issue #14, "Checked by")."""

from __future__ import annotations

import subprocess

from mqtt_client import Client, refused

from gateway.provision.mosquitto import hash_password, verify_password
from sim.broker import mosquitto_binary

P = "machimori/v1"


def login(city, broker, user):
    return Client(broker, user, city.secret(user, "mqtt.password"))


def test_password_file_is_mosquitto_passwd_format(city, tmp_path):
    """Our hashes verify as mosquitto_passwd's do, and mosquitto_passwd's verify with ours."""
    theirs = tmp_path / "theirs"
    for algorithm in ("sha512-pbkdf2", "sha512"):
        theirs.write_text("")
        subprocess.run(
            [mosquitto_binary("mosquitto_passwd"), "-H", algorithm, "-b", str(theirs), "u", "pw1"],
            check=True,
        )
        hashed = theirs.read_text().strip().split(":", 1)[1]
        assert verify_password("pw1", hashed)
        assert not verify_password("pw2", hashed)
    ours = hash_password("pw1")
    assert ours.startswith("$7$101$") and verify_password("pw1", ours)
    assert not verify_password("pw1", hash_password("pw2"))


def test_each_identity_gets_its_own_topics_only(city, provisioned_broker):
    broker = provisioned_broker
    store = login(city, broker, "city")
    store.subscribe(f"{P}/#")
    r1, gw, service = (login(city, broker, u) for u in ("river-01", "gw-01", "arrivals"))
    r1.subscribe(f"{P}/river/river-01/cmd", f"{P}/river/river-01/ack", f"{P}/river/river-02/cmd")
    gw.subscribe(f"{P}/+/+/cmd", f"{P}/+/+/ack")

    # A gauge publishes its own telemetry; not another's, not an alert, not a command.
    r1.publish(f"{P}/river/river-02/telemetry")
    r1.publish(f"{P}/alert/river-01/event")
    r1.publish(f"{P}/river/river-03/cmd")
    r1.publish(f"{P}/river/river-01/telemetry")
    seen = store.received_until(f"{P}/river/river-01/telemetry")
    assert seen == [f"{P}/river/river-01/telemetry"]

    # The gateway writes for its LoRaWAN gauge (river-03) only; a service writes only alerts.
    gw.publish(f"{P}/river/river-01/telemetry")
    gw.publish(f"{P}/river/river-03/telemetry")
    service.publish(f"{P}/river/river-01/event")
    service.publish(f"{P}/alert/school/arrival")
    seen = store.received_until(f"{P}/alert/school/arrival")
    assert sorted(seen) == [f"{P}/alert/school/arrival", f"{P}/river/river-03/telemetry"]

    # The store sends commands and acks; each reaches only the device (or its gateway).
    sent = ("river-02/cmd", "river-03/cmd", "river-03/ack", "river-01/ack", "river-01/cmd")
    for topic in sent:
        store.publish(f"{P}/river/{topic}")
    store.publish(f"{P}/gateway/gw-01/ack")  # the gateway's own messages are acked too
    assert r1.received_until(f"{P}/river/river-01/cmd") == [
        f"{P}/river/river-01/ack",
        f"{P}/river/river-01/cmd",
    ]
    assert gw.received_until(f"{P}/gateway/gw-01/ack") == [
        f"{P}/river/river-03/cmd",
        f"{P}/river/river-03/ack",
        f"{P}/gateway/gw-01/ack",
    ]
    # ...and a device may not write its own ack (only the store may).
    r1.publish(f"{P}/river/river-01/ack")
    r1.publish(f"{P}/river/river-01/event")
    own = [f"{P}/river/{t}" for t in sent] + [f"{P}/gateway/gw-01/ack"]  # it hears itself
    assert store.received_until(f"{P}/river/river-01/event") == [*own, f"{P}/river/river-01/event"]
    for c in (store, r1, gw, service):
        c.close()


def test_unknown_users_wrong_passwords_and_lorawan_devices_cannot_log_in(city, provisioned_broker):
    broker = provisioned_broker
    assert refused(broker, "river-01", city.secret("river-02", "mqtt.password"))
    assert refused(broker, "river-09", "anything")
    assert refused(broker, "river-01", None)
    # river-03 speaks LoRaWAN: it has an AppKey and no MQTT login at all
    assert not (city.home / "secrets" / "river-03" / "1" / "mqtt.password").exists()
    assert refused(broker, "river-03", city.secret("river-03", "app_key"))
    assert "user river-03\n" not in (city.broker_dir / "acl").read_text()
