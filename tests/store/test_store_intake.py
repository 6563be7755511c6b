"""What one MQTT message becomes: a reading, a status, an image, nothing (commands), or a
rejection whose reason a technician can act on."""

from __future__ import annotations

import json

import pytest
from store_helpers import JPEG

from edge.protocol.envelope import parse_timestamp
from gateway.store.intake import (
    Image,
    Message,
    Rejection,
    StatusUpdate,
    classify,
    iso_ms,
    to_ms,
)

TOPIC = "machimori/v1/river/river-01/telemetry"


def envelope(**fields) -> bytes:
    body = {"v": 1, "device": "river-01", "seq": 7, "ts": "2026-11-22T10:00:00.000Z"}
    body |= {"type": "level", "data": {"level_m": 1.234}} | fields
    return json.dumps(body).encode()


def test_a_reading_keeps_its_identity_time_and_data():
    record = classify(TOPIC, envelope(), 1000)
    assert record == Message(
        "river-01",
        7,
        "river",
        "telemetry",
        "level",
        to_ms(parse_timestamp("2026-11-22T10:00:00Z")),
        '{"level_m":1.234}',
    )
    assert iso_ms(record.ts_ms) == "2026-11-22T10:00:00.000Z"


@pytest.mark.parametrize(
    "topic, payload, reason, words",
    [
        ("machimori/v2/river/river-01/telemetry", envelope(), "bad_topic", "expected"),
        ("machimori/v1/boat/river-01/telemetry", envelope(), "bad_topic", "kind"),
        (TOPIC, b"\xff\xfe not json", "bad_json", "payload"),
        (TOPIC, b"[1, 2]", "bad_json", "JSON object"),
        (TOPIC, envelope().decode().encode("utf-16"), "bad_json", "UTF-8"),  # the contract: UTF-8
        (TOPIC, b"\xef\xbb\xbf" + envelope(), "bad_json", "BOM"),  # RFC 8259 section 8.1
        (TOPIC, envelope(seq="7"), "bad_envelope", "seq"),
        (TOPIC, envelope(ts="2026-11-22 10:00"), "bad_envelope", "ts"),
        (TOPIC, envelope(extra=1), "bad_envelope", "extra"),
        (TOPIC, envelope(device="river-02"), "device_mismatch", "river-02"),
        (TOPIC, envelope(data={"s": "a\u0000b"}), "bad_envelope", "NUL"),
        (TOPIC, envelope().replace(b"1.234", b"NaN"), "bad_envelope", "data"),
        (TOPIC, envelope().replace(b"1.234", b'"\\ud800"'), "bad_envelope", "data"),
        ("machimori/v1/river/river-01/status", b'{"v":1}', "bad_status", "device"),
        ("machimori/v1/camera/cam-01/image/ev-1", b"GIF89a", "bad_image", "JPEG"),
        ("machimori/v1/camera/cam-01/image/ev-1", JPEG + b"x" * 100, "image_too_large", "limit"),
    ],
)
def test_bad_input_is_rejected_with_its_reason_and_kept(topic, payload, reason, words):
    limit = len(JPEG) + 10
    record = classify(topic, payload, limit)
    assert isinstance(record, Rejection)
    assert record.reason == reason
    assert words in record.detail
    assert record.payload == payload  # kept as received, for inspection


def test_status_images_and_commands():
    status = classify(
        "machimori/v1/river/river-01/status",
        b'{"v":1,"device":"river-01","ts":"2026-11-22T10:00:00Z","state":"offline",'
        b'"health":{"outbox":{"last_seq":41}}}',
        1000,
    )
    assert isinstance(status, StatusUpdate) and status.state == "offline"
    assert json.loads(status.health) == {"outbox": {"last_seq": 41}}
    image = classify("machimori/v1/camera/cam-01/image/ev-9", JPEG, 10_000)
    assert isinstance(image, Image) and (image.device, image.event_id) == ("cam-01", "ev-9")
    assert len(image.sha256) == 64
    assert classify("machimori/v1/river/river-01/cmd", b"anything", 1000) is None


def test_a_kept_payload_is_bounded():
    record = classify(TOPIC, b"x" * 100_000, 1000, keep_bytes=4096)
    assert isinstance(record, Rejection) and len(record.payload) == 4096
