"""The store's tables and queries, the same on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import json
import threading

import pytest
from store_helpers import JPEG

from gateway.store.config import RetentionConfig
from gateway.store.db import Filter, open_store
from gateway.store.images import ImageFiles
from gateway.store.intake import Batch, Message, classify, iso_ms
from gateway.store.retention import purge

T0 = 1_795_341_600_000  # 2026-11-22T10:00:00Z
MIN = 60_000
DAY = 86_400_000


def reading(device: str, seq: int, ts_ms: int, kind: str = "river", **data) -> Message:
    data = data or {"level_m": 1.0 + seq / 100}
    return Message(device, seq, kind, "telemetry", "level", ts_ms, json.dumps(data))


def batch(*records, at: int = T0) -> Batch:
    out = Batch(received_ms=at)
    for record in records:
        out.add(record)
    return out


@pytest.fixture
def store(db_url):
    opened = open_store(db_url)
    yield opened
    opened.close()


def test_a_message_is_stored_once_and_gaps_are_measured_loss(store):
    first = store.write(batch(*(reading("river-01", s, T0 + s * MIN) for s in (0, 1, 2, 5, 5))))
    assert (first.stored, first.duplicates) == (4, 1)  # the second seq 5 in the same batch
    again = store.write(batch(reading("river-01", 2, T0), reading("river-01", 6, T0 + 6 * MIN)))
    assert (again.stored, again.duplicates) == (1, 1)
    device = store.device("river-01")
    assert (device.received, device.duplicates, device.min_seq, device.max_seq) == (5, 2, 0, 6)
    assert device.lost == 2  # seqs 3 and 4 never arrived
    rows = store.messages(Filter(device="river-01"), 100)
    assert [r.seq for r in rows] == [0, 1, 2, 5, 6]
    assert rows[1].data == {"level_m": 1.01}


def test_latest_is_the_newest_measurement_not_the_last_arrival(store):
    store.write(batch(reading("river-01", 10, T0 + 10 * MIN)))
    store.write(batch(reading("river-01", 3, T0 + 3 * MIN)))  # a late copy from an outbox
    (latest,) = store.latest(Filter(type="level"))
    assert (latest.seq, latest.ts_ms, latest.data) == (10, T0 + 10 * MIN, {"level_m": 1.1})


def test_series_every_reading_and_downsampled_with_gaps_for_missing(store):
    rows = [reading("river-01", s, T0 + s * 10 * MIN, level_m=float(s)) for s in range(12)]
    rows[4] = reading("river-01", 4, T0 + 40 * MIN, missing="timeout")  # 欠測
    store.write(batch(*rows))
    raw = store.series("river-01", "level", "level_m", T0, T0 + 120 * MIN, None, 100)
    assert [p.avg for p in raw] == [0, 1, 2, 3, None, 5, 6, 7, 8, 9, 10, 11]
    hourly = store.series("river-01", "level", "level_m", T0, T0 + 120 * MIN, 60 * MIN, 100)
    assert [(p.start_ms, p.min, p.max, p.count) for p in hourly] == [
        (T0, 0, 5, 5),
        (T0 + 60 * MIN, 6, 11, 6),
    ]
    assert hourly[0].avg == pytest.approx((0 + 1 + 2 + 3 + 5) / 5)
    window = store.series("river-01", "level", "level_m", T0 + 20 * MIN, T0 + 50 * MIN, None, 100)
    assert [p.avg for p in window] == [2, 3, None]  # from inclusive, to exclusive
    assert store.series("river-01", "level", "nope", T0, T0 + DAY, None, 10)[0].avg is None


def test_statuses_images_and_rejections(store):
    status = classify(
        "machimori/v1/river/river-01/status",
        b'{"v":1,"device":"river-01","ts":"2026-11-22T10:00:00Z","state":"online",'
        b'"health":{"outbox":{"last_seq":9}}}',
        100,
    )
    older = classify(
        "machimori/v1/river/river-01/status",
        b'{"v":1,"device":"river-01","ts":"2026-11-22T09:00:00Z","state":"offline"}',
        100,
    )
    image = classify("machimori/v1/camera/cam-01/image/ev-1", JPEG, 10_000)
    bad = classify("machimori/v1/river/river-01/telemetry", b"{oops", 100)
    result = store.write(batch(status, image, bad, bad))
    store.write(batch(older))  # a stale retained status must not win
    assert (result.statuses, result.images, result.rejected) == (1, 1, 2)
    device = store.device("river-01")
    assert device.status_state == "online"
    assert device.status_health == {"outbox": {"last_seq": 9}}
    assert store.image("cam-01", "ev-1").sha256 == image.sha256
    assert store.rejection_counts() == {"bad_json": (2, T0)}
    assert store.rejections(10)[0].payload == b"{oops"


def test_scan_pages_through_everything_in_order(store):
    store.write(batch(*(reading(f"river-0{d}", s, T0 + s * MIN) for d in (1, 2) for s in range(5))))
    rows = list(store.scan(Filter(kinds=["river"]), chunk=3))
    assert [(r.ts_ms, r.device) for r in rows] == sorted((r.ts_ms, r.device) for r in rows)
    assert len(rows) == 10 and len({(r.device, r.seq) for r in rows}) == 10


def test_retention_per_kind_keeps_river_data_and_drops_old_positions(store, tmp_path):
    images = ImageFiles(tmp_path / "images")
    old_image = classify("machimori/v1/camera/cam-01/image/ev-1", JPEG, 10_000)
    images.save(old_image.sha256, old_image.jpeg)
    store.write(
        batch(
            reading("river-01", 0, T0 - 400 * DAY),
            reading("kid-01", 0, T0 - 3 * DAY, kind="tracker", lat=38.1, lon=140.0),
            reading("kid-01", 1, T0 - 1 * DAY, kind="tracker", lat=38.1, lon=140.1),
            classify("machimori/v1/river/river-01/telemetry", b"junk", 100),
            old_image,
            at=T0 - 400 * DAY,
        )
    )
    removed = purge(store, images, RetentionConfig(), T0)
    assert removed["tracker"] == 1 and removed["river"] == 0 and removed["rejected"] == 1
    assert [r.seq for r in store.messages(Filter(device="kid-01"), 10)] == [1]
    assert store.messages(Filter(device="river-01"), 10)  # a public record, kept for years
    assert removed["camera_images"] == 1 and store.image("cam-01", "ev-1") is None
    assert not images.path(old_image.sha256).exists()
    purge(store, images, RetentionConfig(), T0 + 2 * DAY)
    assert store.latest(Filter(kinds=["tracker"])) == []  # no last position left behind


def test_two_workers_racing_on_the_same_messages_count_each_once(db_url):
    stores = [open_store(db_url) for _ in range(2)]
    batches = [
        [
            batch(*(reading("river-01", s, T0 + s) for s in range(k, k + 50)))
            for k in range(0, 500, 25)
        ]
        for _ in range(2)
    ]
    threads = [
        threading.Thread(target=lambda s=s, b=b: [s.write(x) for x in b])
        for s, b in zip(stores, batches, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    device = stores[0].device("river-01")
    assert device.received == 525 and device.lost == 0
    assert device.duplicates == 2 * 20 * 50 - 525
    assert len(stores[0].messages(Filter(device="river-01"), 10_000)) == 525
    assert iso_ms(stores[0].latest(Filter())[0].ts_ms) == iso_ms(T0 + 524)
    for s in stores:
        s.close()


def test_the_acknowledgement_watermark_holds_only_what_is_stored(store):
    """Highest seq up to which everything is held: it waits at a gap, passes over it when the
    missing reading comes, and jumps a gap the device says is lost for good (its floor)."""
    first = store.write(batch(*(reading("river-01", s, T0 + s) for s in (0, 1, 2, 4, 5))))
    assert first.watermarks == {"river-01": ("river", 2)}
    late = store.write(batch(reading("river-01", 3, T0 + 3)))
    assert late.watermarks == {"river-01": ("river", 5)}  # 4 and 5 came earlier
    again = store.write(batch(reading("river-01", 1, T0 + 1)))  # a resend: acknowledged again
    assert again.watermarks == {"river-01": ("river", 5)}
    gap = store.write(batch(*(reading("river-01", s, T0 + s) for s in (9, 10))))
    assert gap.watermarks == {"river-01": ("river", 5)}  # 6..8 are missing
    health = json.dumps({"outbox": {"floor": 9}})  # the device no longer holds 6..8
    status = classify(
        "machimori/v1/river/river-01/status",
        json.dumps(
            {"v": 1, "device": "river-01", "ts": iso_ms(T0), "state": "online"}
            | {"health": json.loads(health)}
        ).encode(),
        100,
    )
    assert store.write(batch(status)).watermarks == {"river-01": ("river", 10)}
    assert store.watermarks() == [("river-01", "river", 10)]
    # a status that moves nothing is not acknowledged: a quiet device costs nothing
    assert store.write(batch(status)).watermarks == {}


def test_workers_agree_on_one_watermark(db_url):
    stores = [open_store(db_url) for _ in range(2)]
    odd_even = [[s for s in range(200) if s % 2 == k] for k in range(2)]
    threads = [
        threading.Thread(
            target=lambda s=s, seqs=seqs: [s.write(batch(reading("river-01", q, T0))) for q in seqs]
        )
        for s, seqs in zip(stores, odd_even, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert stores[0].watermarks() == [("river-01", "river", 199)]
    for s in stores:
        s.close()
