"""MQTT ingest through a real Mosquitto into each backend: everything checked, stored once, bad
input kept with its reason, and nothing lost when the store stops, restarts or is killed."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time

import yaml
from store_helpers import JPEG, Publisher, start, store_config, stored, wait_until

from edge.protocol import Topic
from gateway.store.config import IngestConfig
from gateway.store.db import Filter, open_store


def test_readings_events_status_and_images_arrive(running_store, publisher):
    for level in (0.8, 0.9, 1.1):
        publisher.level("river-01", level)
    publisher.status("river", "river-01", "online", {"outbox": {"last_seq": 2, "queued": 0}})
    event = publisher.envelope(
        "cam-01",
        "detection",
        {"event_id": "ev-17", "label": "bear", "harmful": True, "confidence": 0.93},
        kind="camera",
        channel="event",
    )
    publisher.raw(str(Topic("camera", "cam-01", "image", "ev-17")), JPEG)
    publisher.raw(str(Topic("river", "river-01", "cmd")), b"not for the store")
    store = running_store.store
    wait_until(lambda: store.image("cam-01", "ev-17"), what="the image")
    wait_until(lambda: stored(running_store, "river-01") == 3, what="three readings")
    wait_until(lambda: store.device("river-01").status_state == "online", what="status")
    (latest,) = store.latest(Filter(device="river-01"))
    assert latest.data["level_m"] == 1.1 and latest.seq == 2
    (stored_event,) = store.messages(Filter(channel="event"), 10)
    assert stored_event.data == event.data and stored_event.kind == "camera"
    image = store.image("cam-01", "ev-17")
    path = running_store.service.images.path(image.sha256)
    assert path.read_bytes() == JPEG and image.sha256 == hashlib.sha256(JPEG).hexdigest()
    assert store.rejection_counts() == {}  # the command was ignored, not rejected


def test_bad_messages_are_counted_kept_and_do_not_stop_ingest(running_store, publisher):
    publisher.raw("machimori/v1/river/river-01/telemetry", b"\x00\x01garbage")
    publisher.raw("machimori/v1/river/river-01/telemetry", b'{"v":1,"device":"river-01"}')
    publisher.raw(
        "machimori/v1/river/river-02/telemetry", publisher.level("river-01", 1.0).to_json()
    )
    publisher.raw("machimori/v1/camera/cam-01/image/ev-1", b"not a jpeg")
    publisher.raw("machimori/v1/bogus", b"{}")
    publisher.level("river-01", 1.5)  # a good one after all that
    store = running_store.store
    wait_until(lambda: stored(running_store, "river-01") == 2, what="good readings")
    counts = wait_until(lambda: len(store.rejection_counts()) == 5 and store.rejection_counts())
    assert {r: n for r, (n, _) in counts.items()} == {
        "bad_json": 1,
        "bad_envelope": 1,
        "device_mismatch": 1,
        "bad_image": 1,
        "bad_topic": 1,  # under machimori/v1/#, but not the contract's shape
    }
    kept = {r.reason: r for r in store.rejections(10)}
    assert kept["bad_json"].payload == b"\x00\x01garbage"
    assert "seq: missing" in kept["bad_envelope"].detail
    assert kept["bad_topic"].topic == "machimori/v1/bogus"
    assert running_store.service.ingest.stats.snapshot()["rejected"] == 5


def test_duplicates_are_ignored_and_gaps_show_as_loss(running_store, publisher):
    for seq in (0, 1, 1, 2, 5, 5, 6):
        publisher.level("river-01", 1.0, seq=seq)
    device = wait_until(
        lambda: (d := running_store.store.device("river-01")) and d.duplicates == 2 and d,
        what="duplicates counted",
    )
    assert (device.received, device.lost, device.max_seq) == (5, 2, 6)


def test_what_is_published_while_the_store_is_down_arrives_after_restart(
    tmp_path, db_url, own_broker, publisher
):
    config = store_config(tmp_path, db_url, own_broker)
    run = start(config)
    publisher.level("river-01", 1.0)
    wait_until(lambda: stored(run, "river-01") == 1)
    run.stop()
    for _ in range(50):  # the broker keeps these in the store's persistent session
        publisher.level("river-01", 1.2)
    run = start(config)
    try:
        wait_until(lambda: stored(run, "river-01") == 51, what="all 51 readings")
        assert run.store.device("river-01").lost == 0
    finally:
        run.stop()


def test_a_killed_store_loses_nothing(tmp_path, db_url, own_broker):
    """`kill -9` in the middle of a stream: whatever was not committed was not acknowledged, so
    the broker sends it again to the restarted store."""
    config = tmp_path / "store.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": db_url,
                "images_dir": str(tmp_path / "images"),
                "mqtt": {"host": own_broker.host, "port": own_broker.port},
                "ingest": {"client_id": "killed-store", "batch_max": 50},
                "http": {"enabled": False},
            }
        )
    )
    command = [sys.executable, "-m", "machimori", "store", "run", "--config", str(config)]
    store = open_store(db_url)

    def received() -> int:
        row = store.device("river-01")
        return row.received if row else 0

    publisher = Publisher(own_broker)
    proc = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while received() == 0:  # until the store has its session, nothing is kept for it
            assert time.monotonic() < deadline, "the store never subscribed"
            publisher.level("river-01", 1.0)
            time.sleep(0.05)
        first = store.device("river-01").min_seq
        while received() < 200:
            publisher.level("river-01", 1.0)
        os.kill(proc.pid, signal.SIGKILL)  # mid-stream, no chance to flush
        proc.wait()
        for _ in range(100):  # while it is dead
            publisher.level("river-01", 1.0)
        total = publisher.seqs["river-01"] + 1 - first
        assert received() < total, "the kill came too late to test anything"
        proc = subprocess.Popen(command, stderr=subprocess.DEVNULL)
        wait_until(lambda: received() >= total, timeout_s=40, what=f"all {total} readings")
        time.sleep(0.3)
        device = store.device("river-01")
        assert (device.received, device.lost) == (total, 0)
        assert device.max_seq == publisher.seqs["river-01"]
    finally:
        proc.terminate()
        proc.wait(20)
        publisher.close()
        store.close()


def test_workers_sharing_a_subscription_split_the_stream(tmp_path, db_url, own_broker, publisher):
    runs = []
    for n in range(2):
        config = store_config(tmp_path, db_url, own_broker)
        config.http.enabled = False
        config.ingest = IngestConfig(client_id=f"shared-{n}", shared_group="store", workers=2)
        runs.append(start(config, retention=False, worker=n + 1))  # each one worker, no spawns
    try:
        for i in range(200):
            publisher.level(f"river-0{i % 3 + 1}", 1.0)
        wait_until(
            lambda: sum(stored(runs[0], f"river-0{d}") for d in (1, 2, 3)) == 200,
            what="200 readings",
        )
        shares = [run.service.ingest.stats.snapshot().get("stored", 0) for run in runs]
        assert sum(shares) == 200 and all(share > 0 for share in shares)
        assert sum(runs[0].store.device(f"river-0{d}").duplicates for d in (1, 2, 3)) == 0
    finally:
        for run in runs:
            run.stop()
