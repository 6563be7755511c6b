"""The JPEG that goes over LTE stays under its cap; the local store stays under its quota."""

from __future__ import annotations

import os

import cv2
import numpy as np
import pytest

from edge.agents.camera.images import LocalStore, encode_capped


def noisy(h=480, w=640, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("cap", [8_000, 30_000, 120_000])
def test_jpeg_fits_its_cap_even_for_a_worst_case_frame(cap):
    jpeg, width, height = encode_capped(noisy(), cap, max_width=640, quality=90)
    assert len(jpeg) <= cap
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == (height, width, 3) and width * 3 == height * 4


def test_a_cap_nothing_fits_is_an_error():
    with pytest.raises(ValueError, match="fits in 100 bytes"):
        encode_capped(noisy(), 100, max_width=640, quality=90)


def test_store_deletes_oldest_first_under_its_quota(tmp_path):
    frame = noisy(120, 160)
    one = len(cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 92])[1])
    store = LocalStore(tmp_path, max_bytes=int(one * 5.5))
    for i in range(4):
        store.save(f"event{i}", [frame, frame])
        for path in tmp_path.glob(f"event{i}-*.jpg"):  # distinct, increasing mtimes
            os.utime(path, (1000 + i, 1000 + i))
    kept = sorted(p.name for p in tmp_path.glob("*.jpg"))
    assert kept == ["event1-1.jpg", "event2-0.jpg", "event2-1.jpg", "event3-0.jpg", "event3-1.jpg"]
    assert store.total_bytes <= store.max_bytes and store.deleted == 3
    again = LocalStore(tmp_path, max_bytes=int(one * 2.5))  # a restart with a smaller quota
    again.save("event4", [frame])
    assert sorted(p.name for p in tmp_path.glob("*.jpg")) == ["event3-1.jpg", "event4-0.jpg"]
