"""A rejected message is logged by topic and field, never with the value (a coordinate)."""

from __future__ import annotations

import json

from gateway.services.tracker_service import TrackerService
from gateway.store.mqtt5 import Publish
from tests.tracker.tracker_rig import register, service_config


def test_a_rejected_position_is_counted_and_logged_without_its_coordinates(
    tmp_path, broker, caplog
):
    config = service_config(tmp_path, broker, 9, "http://127.0.0.1:9/", "logs")
    config.web.enabled = False
    service = TrackerService(config)  # not started: messages are handed to it directly
    try:
        register(service)
        bad = {
            "v": 1,
            "device": "tracker-1",
            "seq": 1,
            "ts": "2026-12-01T22:50:00.000Z",
            "type": "position",
            "data": {"lat": 91.23456, "lon": 140.03271},
        }
        good = bad | {"seq": 2, "data": {"lat": 38.10791, "lon": 140.03271, "acc": 5}}
        topic = "machimori/v1/tracker/tracker-1/telemetry"
        caplog.set_level("DEBUG")
        service._on_messages(
            [
                Publish(topic, json.dumps(bad).encode(), 1, 1),
                Publish(topic, b"{not json", 1, 2),
                Publish(topic, json.dumps(good).encode(), 1, 3),
            ],
            0,
        )
        assert service.pipeline.counters["invalid_position"] == 1
        assert service.pipeline.counters["rejected"] == 1
        assert len(service.db.positions_for("test", "hana", 0, 2**62, 0)) == 1
        text = "\n".join(r.getMessage() + str(getattr(r, "fields", "")) for r in caplog.records)
        assert "data.lat" in text and "payload" in text
        assert "91.2" not in text and "38.1" not in text and "140.0" not in text
    finally:
        service.outbox.close()
        service.db.close()
