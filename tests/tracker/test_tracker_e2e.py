"""End to end at real ports: a tracker reads its simulated receiver through a pty, its positions go
through the real broker, the school service sees the child arrive and tells the guardian by MQTT,
by e-mail (a real SMTP server) and by a signed webhook. Notices survive a restart and go once."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest

from edge.runtime.clock import Clock
from sim.child_day import HOMES, JST, ChildDay
from sim.devices.gnss_receiver import GnssReceiverSim
from tests.store.store_helpers import wait_until
from tests.tracker.tracker_rig import (
    Mailbox,
    Webhook,
    register,
    service_config,
    start_service,
    start_tracker,
)

DAY = date(2026, 12, 1)


@pytest.mark.slow
@pytest.mark.parametrize("seed", [5, 6])
def test_a_child_walks_to_school_and_the_guardian_is_told_three_ways(
    tmp_path, broker, watch, pins, seed, caplog
):
    caplog.set_level("DEBUG")
    clock = Clock(60.0, start=datetime(2026, 12, 1, 7, 34, tzinfo=JST))
    mailbox, hook = Mailbox().start(), Webhook()
    alerts = watch(broker, "machimori/v1/alert/#")
    service = start_service(service_config(tmp_path, broker, mailbox.port, hook.url), clock)
    register(service)
    child = ChildDay(DAY, HOMES[seed % len(HOMES)], seed=seed)
    with GnssReceiverSim(child.sky, clock, period_s=0.2, seed=seed) as receiver:
        host, runner = start_tracker(tmp_path, broker, clock, receiver.path, confirm="broker")
        try:
            seen = alerts.collect(lambda m: any(b"school_arrival" in x.payload for x in m), 60)
            arrival = next(json.loads(m.payload) for m in seen if b"school_arrival" in m.payload)
            assert arrival["data"]["child"] == "hana" and arrival["data"]["school"] == "nagai-chuo"
            assert "lat" not in arrival["data"]  # the alert says where the child is: at school
            wait_until(lambda: mailbox.messages and hook.told, 20, "e-mail and webhook")
        finally:
            host.stop.set()
            runner.join(10)
            service.stop()
            mailbox.stop()
            hook.close()
    (mail,) = mailbox.messages
    assert mail["To"] == "sato@example.jp"
    assert "登校しました" in mail["Subject"]
    assert "長井市立中央小学校" in mail.get_content()
    (call,) = hook.told
    assert call["kind"] == "school_arrival" and call["guardian"] == "sato"
    assert hook.bad == 0
    arrived = datetime.fromtimestamp(arrival_ms(call) / 1000, JST)
    assert 7 * 60 + 40 <= arrived.hour * 60 + arrived.minute <= 8 * 60 + 10
    assert receiver.errors == []
    # no position, name or e-mail address in any log line of the whole run
    ours = [r for r in caplog.records if r.name.split(".")[0] in ("edge", "gateway", "sim")]
    text = "\n".join(r.getMessage() + str(getattr(r, "fields", "")) for r in ours)
    assert "sato@example.jp" not in text and "38.1" not in text and "140.0" not in text


def arrival_ms(call: dict) -> int:
    return call["ts"]


def test_notices_wait_for_a_mail_server_and_survive_a_restart_then_go_once(tmp_path, broker):
    mailbox, hook = Mailbox(), Webhook()  # the SMTP server is down at first
    config = service_config(tmp_path, broker, mailbox.port, hook.url, "restart")
    service = start_service(config)
    register(service)
    alert = service.pipeline.raise_alert("hana", "sos", service.now_ms(), {"school": "nagai-chuo"})
    assert alert is not None
    wait_until(lambda: hook.told, 10, "the webhook")
    wait_until(lambda: service.db.notification_counts()["retried"] >= 1, 10, "a failed e-mail")
    service.stop()
    assert mailbox.messages == []
    mailbox.start()
    service = start_service(config)
    try:
        wait_until(lambda: mailbox.messages, 15, "the e-mail after the restart")
        wait_until(lambda: service.db.notification_counts()["pending"] == 0, 10, "all delivered")
        assert service.pipeline.raise_alert("hana", "sos", alert.ts_ms, {}, alert.day) is None
    finally:
        service.stop()
    service = start_service(config)  # and once more: nothing is sent again
    try:
        service.notifier.deliver_due()
    finally:
        service.stop()
        mailbox.stop()
        hook.close()
    assert len(mailbox.messages) == 1 and len(hook.told) == 1
    assert "SOS" in mailbox.messages[0]["Subject"]
