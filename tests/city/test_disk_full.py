"""An outbox whose disk fills up: a reading that cannot be stored is refused with OutboxFull (the
agent counts it and goes on), no seq is consumed or skipped, and once space is back the outbox
stores and sends as before. The disk is a real tmpfs of its own (mounting needs root, as CI is)."""

from __future__ import annotations

import os

import pytest

from edge.protocol import Topic
from edge.runtime.outbox import Outbox, OutboxFull
from sim.city.diskfull import SmallDisk

TS = "2026-11-22T10:00:00.000Z"


@pytest.fixture
def disk(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("mounting the small disk needs root (CI and the dev machines run as root)")
    small = SmallDisk(tmp_path / "disk", size_mb=2)
    yield small
    small.close()


def test_a_full_disk_refuses_a_reading_without_a_gap_and_recovers(disk):
    outbox = Outbox(disk.path / "outbox.db", "river-df", sync="full")
    topic = Topic("river", "river-df", "telemetry")
    for i in range(5):
        outbox.add(topic, "level", {"level_m": 1.0 + i}, TS)
    disk.fill()
    refused = 0
    for _ in range(20):
        try:
            outbox.add(topic, "level", {"level_m": 2.0, "pad": "x" * 2000}, TS)
        except OutboxFull as exc:
            assert "disk is full" in str(exc)
            refused += 1
    assert refused > 0, "the disk never filled"
    disk.free()
    envelope = outbox.add(topic, "level", {"level_m": 3.0}, TS)
    stored = [p.seq for p in outbox.pending(limit=1000)]
    assert stored == list(range(envelope.seq + 1)), "a seq skipped or reused"
    assert envelope.seq == 5 + (20 - refused)
    outbox.close()
    reopened = Outbox(disk.path / "outbox.db", "river-df")
    assert [p.seq for p in reopened.pending(limit=1000)] == stored
    reopened.close()
