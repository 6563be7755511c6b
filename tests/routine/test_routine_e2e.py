"""End to end at real ports: four weeks of a child's positions are in the tracker service's
database; on a school afternoon her tracker (a simulated receiver on a pty, read by the tracker
agent through pyserial) walks off her usual way home. The guardian gets the alert on the MQTT
alert topic and by e-mail (a real SMTP server) within the configured delay, the reason in
Japanese, and no position in any log line."""

from __future__ import annotations

import json
import math
from datetime import UTC, date, datetime, timedelta

import pytest

from edge.runtime.clock import Clock
from gateway.services.tracker_service import TrackerService
from sim.child_day import Sky
from sim.city_children import JST, lat_lon
from sim.devices.gnss_receiver import GnssReceiverSim
from tests.routine.tracks import SCHOOL, history
from tests.store.store_helpers import wait_until
from tests.tracker.tracker_rig import Mailbox, Webhook, register, service_config, start_tracker

DAY = date(2026, 12, 1)  # a Tuesday
LEAVE = datetime(2026, 12, 1, 15, 0, tzinfo=JST)
OFF_AT = (150.0, 1000.0)  # 150 m along her usual way to the club, then north instead
DRIFT_TO = (150.0, 1700.0)


def drifting(seed: int):
    """Where the receiver is: at school until 15:02, then east, then off to the north."""
    legs = [(SCHOOL, OFF_AT), (OFF_AT, DRIFT_TO)]
    jitter = (seed % 3) * 2.0

    def sky(moment: datetime) -> Sky:
        walked = max(0.0, ((moment - LEAVE).total_seconds() - 120) * 1.1)
        for a, b in legs:
            length = math.dist(a, b)
            if walked <= length:
                f = walked / length
                x, y = a[0] + (b[0] - a[0]) * f + jitter, a[1] + (b[1] - a[1]) * f
                return Sky(*lat_lon(x, y), True, 0.9, 9)
            walked -= length
        return Sky(*lat_lon(*DRIFT_TO), True, 0.9, 9)

    return sky


@pytest.mark.slow
@pytest.mark.parametrize("seed", [3, 4])
def test_a_child_drifts_off_her_way_and_the_guardian_is_told(
    tmp_path, broker, watch, pins, seed, caplog
):
    caplog.set_level("DEBUG")
    clock = Clock(30.0, start=LEAVE)
    mailbox, hook = Mailbox().start(), Webhook()
    alerts = watch(broker, "machimori/v1/alert/#")
    config = service_config(tmp_path, broker, mailbox.port, hook.url, f"routine{seed}")
    config.routine.late_parts = []  # this test is about her way; "late" has its own tests
    service = TrackerService(config, clock)
    register(service)
    history(service.db, DAY, "tracker-1")
    service.start()
    assert service.subscriber.subscribed.wait(10)
    assert service.routines is not None
    learned, needed = service.routines.status("hana")
    assert learned >= needed == config.routine.min_days  # past the cold start
    with GnssReceiverSim(drifting(seed), clock, period_s=0.2, seed=seed) as receiver:
        host, runner = start_tracker(tmp_path, broker, clock, receiver.path, confirm="broker")
        try:
            seen = alerts.collect(lambda m: any(b"routine_route" in x.payload for x in m), 90)
            wait_until(lambda: mailbox.messages, 30, "the e-mail")
        finally:
            host.stop.set()
            runner.join(10)
            service.stop()
            mailbox.stop()
            hook.close()
    published = [json.loads(m.payload) for m in seen if b"routine_" in m.payload]
    assert [p["type"] for p in published] == ["routine_route"], published  # once, nothing else
    alert = published[0]
    assert alert["data"]["child"] == "hana"
    assert "いつもの道" in alert["data"]["reason"]["ja"]
    assert "lat" not in alert["data"] and "lon" not in alert["data"]
    # within the configured delay of leaving her way (200 m north of it, at 1.1 m/s)
    left_way = LEAVE + timedelta(seconds=120 + 150 / 1.1 + 100 / 1.1)
    told = datetime.fromisoformat(alert["ts"].replace("Z", "+00:00")).astimezone(UTC)
    # the configured delay, plus the tracker's pace and the service's look (a loaded machine)
    slack = timedelta(seconds=config.routine.route_off_s + 300)
    assert left_way <= told <= left_way + slack, (told, left_way)
    mail = next(m for m in mailbox.messages if "いつもの道" in m["Subject"])
    assert mail["To"] == "sato@example.jp"
    assert "いつもの道" in mail.get_content() and "km" in mail.get_content()
    assert receiver.errors == []
    audit = service_audit(tmp_path)
    assert ("service:routine", "hana") in audit  # the history read for learning was audited
    ours = [r for r in caplog.records if r.name.split(".")[0] in ("edge", "gateway", "sim")]
    text = "\n".join(r.getMessage() + str(getattr(r, "fields", "")) for r in ours)
    assert "sato@example.jp" not in text and "38.1" not in text and "140.0" not in text


def service_audit(tmp_path) -> set[tuple[str, str]]:
    from gateway.services.tracker_db import TrackerDb

    db = TrackerDb(tmp_path / "tracker.db")
    try:
        return {(viewer, child) for _, viewer, child, _ in db.audit()}
    finally:
        db.close()
