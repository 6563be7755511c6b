"""The capture driver: video files (how the simulator is reached), pacing, and bad frames."""

from __future__ import annotations

import time

import numpy as np
import pytest

from edge.drivers.camera import REOPEN_AFTER, Camera, CameraError


def test_a_video_file_plays_on_its_own_timeline_and_ends(video):
    camera = Camera(str(video("empty")))
    frames = []
    while (frame := camera.read()) is not None:
        frames.append(frame)
    assert camera.ended and len(frames) == 60
    assert [f.index for f in frames] == list(range(60))
    assert frames[10].t == pytest.approx(1.0) and frames[0].image.shape == (480, 640, 3)


def test_a_looping_file_keeps_its_clock_running(video):
    camera = Camera(str(video("empty")), loop=True)
    times = [camera.read().t for _ in range(130)]
    assert not camera.ended and times == sorted(times) and times[-1] == pytest.approx(12.9)


def test_realtime_plays_a_file_at_its_frame_rate(video):
    camera = Camera(str(video("empty")), realtime=True)
    started = time.monotonic()
    for _ in range(8):
        camera.read()
    assert 0.6 < time.monotonic() - started < 1.5


def test_a_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(CameraError, match="no such video file"):
        Camera(str(tmp_path / "nope.avi"))
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"not a video at all" * 100)
    with pytest.raises(CameraError, match="OpenCV cannot open"):
        Camera(str(junk))


class FlakyCapture:
    """A live camera that hands over a script of (ok, image) results, then dies."""

    def __init__(self, script):
        self.script = list(script)
        self.released = False

    def isOpened(self):  # noqa: N802 - OpenCV's name
        return True

    def read(self):
        return self.script.pop(0) if self.script else (False, None)

    def get(self, prop):
        return 0.0

    def set(self, prop, value):
        return True

    def release(self):
        self.released = True


def test_bad_frames_are_counted_and_a_dead_camera_is_reopened(monkeypatch):
    monkeypatch.setattr("edge.drivers.camera.MAX_BACKOFF_S", 0.0)
    grey = np.full((48, 64), 7, np.uint8)
    script = [
        (True, None),
        (True, np.zeros((48, 64, 3), np.float32)),
        (True, np.zeros((48, 64, 5), np.uint8)),
        (True, grey),
        (True, np.zeros((48, 64, 4), np.uint8)),
    ]
    opened, counted = [], []

    def opener(source, width, height):
        opened.append(FlakyCapture(script if not opened else [(True, grey)]))
        return opened[-1]

    camera = Camera("rtsp://cam.example/stream", opener=opener, on_count=counted.append)
    results = [camera.read() for _ in range(5 + REOPEN_AFTER + 1)]
    good = [r for r in results if r is not None]
    assert [f.image.shape for f in good] == [(48, 64, 3), (48, 64, 3), (48, 64, 3)]
    assert good[0].image[0, 0].tolist() == [7, 7, 7], "grey frames become BGR"
    assert camera.counters == {
        "frames": 3,
        "missing": REOPEN_AFTER,
        "rejected": 3,
        "reopened": 1,
        "dropped": 0,
    }
    assert opened[0].released and len(opened) == 2
    assert counted.count("rejected") == 3
