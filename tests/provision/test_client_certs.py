"""With client certificates on, the broker takes only TLS clients holding a certificate from the
city CA that the CLI made; a revoked certificate is refused too (the CRL sync writes)."""

from __future__ import annotations

import ssl
import time

import pytest
import yaml
from mqtt_client import Client, refused

from edge.runtime.uplink import TlsConfig
from sim.broker import Mosquitto

P = "machimori/v1"


def mode(path):
    return path.stat().st_mode & 0o777


@pytest.fixture
def tls_city(city):
    """The city with client certificates on, its broker run as configs/mosquitto/mosquitto.conf
    has it: the city CA's certificate as cafile, the broker's certificate and key from the
    same CA (all written by `provision sync`), plus require_certificate and the CRL."""
    broker_dir = city.out / "mosquitto"
    broker = Mosquitto(
        tls=(broker_dir / "ca.crt", broker_dir / "broker.crt", broker_dir / "broker.key"),
        password_file=broker_dir / "passwd",
        acl_file=broker_dir / "acl",
        settings=("require_certificate true", f"crlfile {broker_dir / 'crl.pem'}"),
    )
    city.init("--client-certs", "--broker-host", broker.host, "--broker-port", str(broker.port))
    for device in ("river-01", "river-02"):
        city.ok("add", device, "--kind", "river", "--levels", "1,2,3,4", "--mount-height", "5")
    city.ok("add", "city", "--kind", "store")
    yield city.serve(broker)
    broker.close()


def device_tls(city, device, with_cert=True):
    """The TLS settings the rendered config gives the device, from its files under card-*/."""
    card = city.root / f"card-{device}"
    city.ok("render", device, "--out", str(card))
    etc = card / "etc" / "machimori"
    ca = etc / "city-ca.crt"
    if not with_cert:
        return TlsConfig(ca_file=ca).context()
    return TlsConfig(
        ca_file=ca, cert_file=etc / f"{device}.crt", key_file=etc / f"{device}.key"
    ).context()


def test_a_device_needs_its_certificate(city, tls_city, pki):
    broker = tls_city
    password = city.secret("river-01", "mqtt.password")
    device = Client(broker, "river-01", password, tls=device_tls(city, "river-01"))
    device.close()
    assert refused(broker, "river-01", password, tls=device_tls(city, "river-01", False))
    # a certificate the city CA did not sign is refused as well
    _, other_cert, other_key = pki
    city_ca = city.root / "card-river-01/etc/machimori/city-ca.crt"
    foreign = ssl.create_default_context(cafile=str(city_ca))
    foreign.load_cert_chain(str(other_cert), str(other_key))
    assert refused(broker, "river-01", password, tls=foreign)
    # the broker's certificate is issued once, and again only for another host
    issued = (city.broker_dir / "broker.crt").read_bytes()
    city.ok("sync", "--no-reload")
    assert (city.broker_dir / "broker.crt").read_bytes() == issued
    assert mode(city.broker_dir / "broker.key") == 0o640


def test_the_rendered_config_names_the_certificate_files(city, tls_city):
    device_tls(city, "river-02")
    config = yaml.safe_load((city.root / "card-river-02/etc/machimori/river-02.yaml").read_text())
    assert config["mqtt"]["tls"] == {
        "ca_file": "/etc/machimori/city-ca.crt",
        "cert_file": "/etc/machimori/river-02.crt",
        "key_file": "/etc/machimori/river-02.key",
    }
    key = city.root / "card-river-02/etc/machimori/river-02.key"
    assert key.stat().st_mode & 0o777 == 0o600


def test_an_old_certificate_is_refused_once_rotation_is_confirmed(city, tls_city):
    """The CRL written by sync carries the old certificate's serial, and Mosquitto re-reads it
    on the reload: with the new password and the old certificate, the handshake is refused."""
    broker = tls_city
    old_tls = device_tls(city, "river-02")
    city.ok("rotate", "river-02")
    new_tls = device_tls(city, "river-02")
    city.ok("rotate", "river-02", "--confirm")
    new_password = city.secret("river-02", "mqtt.password", generation=2)
    Client(broker, "river-02", new_password, tls=new_tls).close()
    deadline = time.monotonic() + 5  # the reload (SIGHUP) is handled between client events
    while not refused(broker, "river-02", new_password, tls=old_tls):
        assert time.monotonic() < deadline, "the revoked certificate is still accepted"
        time.sleep(0.1)
    Client(broker, "river-02", new_password, tls=new_tls).close()
