"""A field agent's uplink over TLS to a broker with the city's own CA: the outbox empties only when
the broker acknowledged over TLS, and a broker with a certificate from another CA gets nothing."""

from __future__ import annotations

import time

from edge.protocol import Topic, utc_timestamp
from edge.runtime.clock import Clock
from edge.runtime.health import Health
from edge.runtime.outbox import Outbox
from edge.runtime.uplink import MqttConfig, MqttUplink, TlsConfig
from sim.broker import Mosquitto


def uplink(tmp_path, broker: Mosquitto, ca) -> tuple[MqttUplink, Outbox]:
    clock = Clock()
    outbox = Outbox(tmp_path / "outbox.db", "river-01")
    outbox.add(
        Topic("river", "river-01", "telemetry"),
        "level",
        {"level_m": 1.0},
        utc_timestamp(clock.now()),
    )
    config = MqttConfig(
        host=broker.host,
        port=broker.port,
        tls=TlsConfig(ca_file=ca),
        reconnect_min_s=0.2,
        reconnect_max_s=0.5,
        confirm="broker",  # the broker's PUBACK over TLS is what this test looks for
    )
    return MqttUplink(config, "river", "river-01", outbox, Health(clock), clock), outbox


def wait_for(check, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return False


def test_a_reading_goes_over_tls(tmp_path, pki):
    with Mosquitto(tls=pki) as broker:
        link, outbox = uplink(tmp_path, broker, pki[0])
        link.start()
        try:
            assert wait_for(lambda: outbox.depth == 0), "the broker never acknowledged over TLS"
        finally:
            link.stop()


def test_a_broker_from_another_ca_gets_nothing(tmp_path, pki, pki_maker):
    other_ca = pki_maker(tmp_path / "other")[0]
    with Mosquitto(tls=pki) as broker:
        link, outbox = uplink(tmp_path, broker, other_ca)
        link.start()
        try:
            assert wait_for(lambda: "CERTIFICATE_VERIFY_FAILED" in (link.health.last_error or ""))
            assert outbox.depth == 1  # kept for when the right CA is configured
        finally:
            link.stop()
