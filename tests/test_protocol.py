"""The contract: topics and envelopes round-trip, and every violation names its field."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.protocol import KINDS, Ack, Envelope, EnvelopeError, Status, Topic, TopicError
from edge.protocol.ack import seq_ranges
from edge.protocol.topics import CHANNELS, topic

device_ids = st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,62}\Z")
event_ids = st.from_regex(r"\A[A-Za-z0-9_-]{1,64}\Z")
moments = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@given(
    kind=st.sampled_from(KINDS),
    device=device_ids,
    channel=st.sampled_from([c for c in CHANNELS if c != "image"]),
)
def test_topic_round_trip(kind, device, channel):
    built = topic(kind, device, channel)
    assert built == f"machimori/v1/{kind}/{device}/{channel}"
    assert Topic.parse(built) == Topic(kind, device, channel)


@given(device=device_ids, event_id=event_ids)
def test_image_topic_round_trip(device, event_id):
    built = topic("camera", device, "image", event_id)
    assert Topic.parse(built).event_id == event_id


@given(
    device=device_ids,
    seq=st.integers(0, 2**63 - 1),
    moment=moments,
    type=st.from_regex(r"\A[a-z][a-z0-9_]{0,31}\Z"),
    data=st.dictionaries(st.text(max_size=10), json_values, max_size=5),
)
def test_envelope_round_trip(device, seq, moment, type, data):
    from edge.protocol import utc_timestamp

    env = Envelope(device, seq, utc_timestamp(moment), type, data)
    assert Envelope.from_json(env.to_json()) == env
    assert json.loads(env.to_json())["ts"].endswith("Z")


def test_design_example_parses():
    raw = (
        '{"v": 1, "device": "river-07", "seq": 1234, "ts": "2026-11-22T10:00:00Z",'
        ' "type": "level", "data": {"level_m": 1.23}}'
    )
    env = Envelope.from_json(raw)
    assert (env.device, env.seq, env.type, env.data) == (
        "river-07",
        1234,
        "level",
        {"level_m": 1.23},
    )


@pytest.mark.parametrize(
    ("payload", "field", "words"),
    [
        (b"\xff\xfe", "payload", "UTF-8 JSON"),
        (b"[1,2]", "payload", "JSON object"),
        (
            b'{"v":2,"device":"a","seq":1,"ts":"2026-11-22T10:00:00Z","type":"x","data":{}}',
            "v",
            "1",
        ),
        (
            b'{"v":1,"device":"A B","seq":1,"ts":"2026-11-22T10:00:00Z","type":"x","data":{}}',
            "device",
            "a-z",
        ),
        (
            b'{"v":1,"device":"a","seq":-1,"ts":"2026-11-22T10:00:00Z","type":"x","data":{}}',
            "seq",
            "0..2^63-1",
        ),
        (
            b'{"v":1,"device":"a","seq":"7","ts":"2026-11-22T10:00:00Z","type":"x","data":{}}',
            "seq",
            "integer",
        ),
        (
            b'{"v":1,"device":"a","seq":1,"ts":"2026-11-22 10:00","type":"x","data":{}}',
            "ts",
            "RFC 3339",
        ),
        (
            b'{"v":1,"device":"a","seq":1,"ts":"2026-02-30T10:00:00Z","type":"x","data":{}}',
            "ts",
            "real date",
        ),
        (
            b'{"v":1,"device":"a","seq":1,"ts":"2026-11-22T10:00:00Z","type":"Level","data":{}}',
            "type",
            "snake",
        ),
        (
            b'{"v":1,"device":"a","seq":1,"ts":"2026-11-22T10:00:00Z","type":"x","data":[]}',
            "data",
            "object",
        ),
        (b'{"v":1,"device":"a","seq":1,"ts":"2026-11-22T10:00:00Z","data":{}}', "type", "missing"),
        (
            b'{"v":1,"device":"a","seq":1,"ts":"2026-11-22T10:00:00Z","type":"x","data":{},"z":0}',
            "z",
            "unknown",
        ),
    ],
)
def test_envelope_errors_name_the_field(payload, field, words):
    with pytest.raises(EnvelopeError) as err:
        Envelope.from_json(payload)
    assert err.value.field == field
    assert words in str(err.value)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("machimori/v2/river/r1/telemetry", "expected machimori/v1"),
        ("machimori/v1/boat/r1/telemetry", "kind 'boat'"),
        ("machimori/v1/river/R1/telemetry", "device id 'R1'"),
        ("machimori/v1/river/r1/gossip", "channel 'gossip'"),
        ("machimori/v1/camera/c1/image", "needs an event id"),
        ("machimori/v1/camera/c1/event/x", "only image"),
    ],
)
def test_topic_errors_say_what_is_wrong(text, words):
    with pytest.raises(TopicError, match=words):
        Topic.parse(text)


def test_status_round_trip_and_qos():
    status = Status("river-07", "2026-11-22T10:00:00.000Z", "online", {"uptime_s": 3.0})
    assert Status.from_json(status.to_json()) == status
    t = Topic("river", "river-07", "status")
    assert (t.qos, t.retain) == (1, True)
    with pytest.raises(EnvelopeError, match="state"):
        Status.from_json(b'{"v":1,"device":"a","ts":"2026-11-22T10:00:00Z","state":"asleep"}')


def test_ack_round_trip_coverage_and_rejections():
    ack = Ack("river-07", 41, held=((43, 45), (50, 50)), images=("ev-1",), resend=True)
    assert Ack.from_json(ack.to_json()) == ack
    assert json.loads(ack.to_json()) == {
        "v": 1,
        "device": "river-07",
        "seq": 41,
        "held": [[43, 45], [50, 50]],
        "images": ["ev-1"],
        "resend": True,
    }
    assert [s for s in range(52) if ack.covers(s)] == [*range(42), 43, 44, 45, 50]
    assert Ack.from_json(b'{"v":1,"device":"river-07","seq":-1}').covers(0) is False
    for bad, field in (
        (b'{"v":1,"device":"river-07"}', "seq"),
        (b'{"v":1,"device":"river-07","seq":-2}', "seq"),
        (b'{"v":1,"device":"river-07","seq":3,"held":[[5,4]]}', "held"),
        (b'{"v":1,"device":"river-07","seq":3,"held":[5]}', "held"),
        (b'{"v":1,"device":"river-07","seq":3,"resend":1}', "resend"),
        (b'{"v":1,"device":"river-07","seq":3,"extra":1}', "extra"),
    ):
        with pytest.raises(EnvelopeError) as err:
            Ack.from_json(bad)
        assert err.value.field == field


def test_seq_ranges_merge_and_keep_the_newest():
    assert seq_ranges([5, 3, 4, 9, 2, 9], above=2) == ((3, 5), (9, 9))
    assert seq_ranges(list(range(0, 200, 2)), above=-1, limit=3) == (
        (194, 194),
        (196, 196),
        (198, 198),
    )
