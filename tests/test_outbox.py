"""The outbox: order, acknowledgement, bounds with their stated policy, and a seq that survives."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest

from edge.protocol import Ack, Envelope, EnvelopeError, Topic
from edge.runtime.outbox import Outbox, OutboxFull, OutboxMismatch

TS = "2026-11-22T10:00:00.000Z"
TELEMETRY = Topic("river", "river-01", "telemetry")
EVENT = Topic("river", "river-01", "event")


def test_replays_in_order_and_forgets_only_acknowledged(tmp_path):
    box = Outbox(tmp_path / "o.db", "river-01")
    for i in range(10):
        box.add(TELEMETRY, "level", {"i": i}, TS)
    pending = box.pending(limit=100)
    assert [p.seq for p in pending] == list(range(10))
    box.ack([pending[0].id, pending[3].id])
    assert [p.seq for p in box.pending()] == [1, 2, 4, 5, 6, 7, 8, 9]
    assert [p.seq for p in box.pending(after_id=pending[5].id)] == [6, 7, 8, 9]
    assert box.depth == 8


def test_seq_and_queue_survive_reopen(tmp_path):
    box = Outbox(tmp_path / "o.db", "river-01")
    for i in range(3):
        box.add(TELEMETRY, "level", {"i": i}, TS)
    box.ack([box.pending()[0].id])
    box.close()
    box = Outbox(tmp_path / "o.db", "river-01")
    assert [p.seq for p in box.pending()] == [1, 2]
    assert box.add(TELEMETRY, "level", {}, TS).seq == 3


def test_invalid_message_writes_nothing_and_takes_no_seq(tmp_path):
    box = Outbox(tmp_path / "o.db", "river-01")
    with pytest.raises(EnvelopeError, match="type"):
        box.add(TELEMETRY, "Bad Type", {}, TS)
    with pytest.raises(EnvelopeError, match="data"):
        box.add(TELEMETRY, "level", {"x": object()}, TS)
    assert box.depth == 0
    assert box.add(TELEMETRY, "level", {}, TS).seq == 0


def test_full_drop_oldest_keeps_events_and_counts(tmp_path):
    box = Outbox(tmp_path / "o.db", "river-01", max_messages=5)
    box.add(EVENT, "crossing", {"level": "氾濫注意"}, TS)
    for i in range(9):
        box.add(TELEMETRY, "level", {"i": i}, TS)
    kept = box.pending()
    assert [p.seq for p in kept] == [0, 6, 7, 8, 9]  # the event and the 4 newest readings
    counters = box.counters()
    assert counters["dropped_full"] == 5
    assert counters["last_seq"] == 9
    # dropped messages leave gaps in seq: the store sees 1..5 as measured loss
    box.close()
    assert Outbox(tmp_path / "o.db", "river-01").counters()["dropped_full"] == 5


def test_a_dropped_message_that_was_on_its_way_and_arrived_is_not_counted_lost(tmp_path):
    box = Outbox(tmp_path / "o.db", "river-01", max_messages=2)
    for i in range(2):
        box.add(TELEMETRY, "level", {"i": i}, TS)
    in_flight = box.pending()[0]  # handed to the network, not yet acknowledged
    box.add(TELEMETRY, "level", {"i": 2}, TS)  # full: the oldest, the one in flight, is dropped
    assert box.counters()["dropped_full"] == 1
    box.ack([in_flight.id])  # ... and then the broker acknowledges it
    assert box.counters()["dropped_full"] == 0 and box.depth == 2
    box.close()
    assert Outbox(tmp_path / "o.db", "river-01").counters()["dropped_full"] == 0


def test_full_refuse_new_keeps_queue_and_counts(tmp_path):
    box = Outbox(tmp_path / "o.db", "river-01", max_messages=3, when_full="refuse_new")
    for i in range(3):
        box.add(TELEMETRY, "level", {"i": i}, TS)
    for _ in range(2):
        with pytest.raises(OutboxFull, match="refused"):
            box.add(TELEMETRY, "level", {}, TS)
    assert [p.seq for p in box.pending()] == [0, 1, 2]
    assert box.counters()["refused_full"] == 2
    box.ack([box.pending()[0].id])
    assert box.add(TELEMETRY, "level", {}, TS).seq == 5  # refused ones consumed seq 3 and 4


def test_byte_bound(tmp_path):
    box = Outbox(tmp_path / "o.db", "camera-01", max_bytes=25_000)
    image = Topic("camera", "camera-01", "image", "ev1")
    for _ in range(4):
        box.add_raw(image, b"\xff" * 10_000)
    assert box.depth == 2
    assert box.size_bytes == 20_000
    with pytest.raises(OutboxFull, match="cannot fit"):
        box.add_raw(image, b"\xff" * 30_000)


def test_outbox_of_another_device_is_refused(tmp_path):
    Outbox(tmp_path / "o.db", "river-01").close()
    with pytest.raises(OutboxMismatch, match="river-01"):
        Outbox(tmp_path / "o.db", "river-02")


def test_batch_stores_all_or_nothing(tmp_path):
    box = Outbox(tmp_path / "o.db", "gw-01")
    forwarded = Topic("river", "river-07", "telemetry")
    with box.batch():
        box.add_raw(forwarded, b'{"seq": 1}')
        box.add(Topic("gateway", "gw-01", "event"), "uplink_error", {}, TS)
    assert box.depth == 2
    with pytest.raises(RuntimeError, match="state file"), box.batch():
        box.add_raw(forwarded, b'{"seq": 2}')
        box.add(Topic("gateway", "gw-01", "event"), "uplink_error", {}, TS)
        raise RuntimeError("state file failed")
    assert box.depth == 2
    assert box.counters()["last_seq"] == 0  # the rolled-back add gave its seq back
    box.close()
    box = Outbox(tmp_path / "o.db", "gw-01")
    assert [p.payload for p in box.pending()][0] == b'{"seq": 1}'
    assert box.add(Topic("gateway", "gw-01", "event"), "x", {}, TS).seq == 1


def test_refusal_inside_batch_keeps_the_rest(tmp_path):
    box = Outbox(tmp_path / "o.db", "gw-01", max_messages=2, when_full="refuse_new")
    forwarded = Topic("river", "river-07", "telemetry")
    with box.batch():
        for n in range(3):
            try:
                box.add_raw(forwarded, b"%d" % n)
            except OutboxFull:
                pass
    assert [p.payload for p in box.pending()] == [b"0", b"1"]
    assert box.counters()["refused_full"] == 1


def test_forwarded_events_are_kept_when_full(tmp_path):
    box = Outbox(tmp_path / "o.db", "gw-01", max_messages=2)
    box.add_raw(Topic("river", "river-07", "event"), b"crossing")
    for n in range(3):
        box.add_raw(Topic("river", "river-07", "telemetry"), b"%d" % n)
    assert [p.payload for p in box.pending()] == [b"crossing", b"2"]


def test_kept_after_puback_until_the_store_confirms(tmp_path):
    box = Outbox(tmp_path / "o.db", "river-01", max_messages=6)
    for i in range(5):
        box.add(TELEMETRY, "level", {"i": i}, TS)
    box.add_raw(Topic("river", "river-01", "image", "ev-1"), b"\xff\xd8\xff jpeg")
    ids = [p.id for p in box.pending()]
    box.mark_sent(ids, at_ms=1_000)
    assert box.unconfirmed() == (6, 1_000)
    counters = box.counters(now_ms=4_000)
    assert (counters["queued"], counters["unconfirmed"], counters["oldest_unconfirmed_s"]) == (
        6,
        6,
        3.0,
    )
    assert all(p.sent for p in box.pending())
    # sent-but-unconfirmed messages count toward the bound: the full policy applies to them
    box.add(TELEMETRY, "level", {"i": 5}, TS)
    assert box.counters()["dropped_full"] == 1 and box.depth == 6
    # seq 0 was dropped; 1, 2, 4 and the image are covered
    assert box.confirm("river", Ack("river-01", 2, held=((4, 4),), images=("ev-1",))) == 4
    assert [p.seq for p in box.pending()] == [3, 5]
    assert box.floor() == 3
    # seq 0 was dropped after it was sent, and the store has it after all: it was not lost
    assert box.counters()["dropped_full"] == 0
    # an acknowledgement of another device deletes nothing of this one
    assert box.confirm("river", Ack("river-02", 100)) == 0


def test_forwarded_envelopes_are_confirmed_per_device(tmp_path):
    box = Outbox(tmp_path / "o.db", "gw-01")
    for device, seq in (("river-02", 7), ("river-04", 7), ("river-02", 8)):
        envelope = Envelope(device, seq, TS, "level", {"level_m": 1.0})
        box.add_raw(Topic("river", device, "telemetry"), envelope.to_json(), seq=seq)
    assert box.confirm("river", Ack("river-02", 8)) == 2
    assert [(p.topic, p.seq) for p in box.pending()] == [
        ("machimori/v1/river/river-04/telemetry", 7)
    ]


def test_an_outbox_from_before_acknowledgements_is_upgraded(tmp_path):
    path = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(
            "CREATE TABLE message (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
            "payload BLOB NOT NULL, qos INTEGER NOT NULL, retain INTEGER NOT NULL, "
            "droppable INTEGER NOT NULL, seq INTEGER);"
            "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        )
        envelope = Envelope("river-02", 41, TS, "level", {"level_m": 1.0})
        db.execute(
            "INSERT INTO message(topic, payload, qos, retain, droppable, seq) "
            "VALUES (?, ?, 1, 0, 1, NULL)",
            ("machimori/v1/river/river-02/telemetry", envelope.to_json()),
        )
        db.execute("INSERT INTO meta VALUES ('device', '\"gw-01\"')")
        db.commit()
    box = Outbox(path, "gw-01")
    assert [p.seq for p in box.pending()] == [41]
    assert box.confirm("river", Ack("river-02", 41)) == 1


def test_a_dropped_message_handed_to_the_network_that_the_store_got_is_not_counted_lost(
    tmp_path,
):
    """Confirmation by the store: a reading published (no PUBACK yet) and then dropped by the
    full outbox may still reach the store; when the store's acknowledgement covers it, it no
    longer counts as lost. One never handed over stays lost."""
    box = Outbox(tmp_path / "o.db", "river-01", max_messages=2)
    for i in range(2):
        box.add(TELEMETRY, "level", {"i": i}, TS)
    on_its_way = box.pending()[0]
    box.handed([on_its_way.id])  # published; the broker went away before its PUBACK
    for i in range(2, 4):  # full: seq 0 (on its way) and seq 1 (never handed) are dropped
        box.add(TELEMETRY, "level", {"i": i}, TS)
    assert box.counters()["dropped_full"] == 2
    box.mark_sent([on_its_way.id], at_ms=1)  # the PUBACK after the reconnect: nothing to mark
    box.confirm("river", Ack("river-01", 0, held=((2, 3),)))  # the store holds 0, 2 and 3
    assert box.counters()["dropped_full"] == 1 and box.depth == 0
