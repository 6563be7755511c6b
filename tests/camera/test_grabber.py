"""Live sources: an HTTP MJPEG IP camera served by the test, read by the grabber thread that
always hands the agent the newest frame, and reopened after the camera goes away."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from edge.drivers.camera import Camera, LatestFrame

FPS = 20


class MjpegCamera:
    """An IP camera's MJPEG stream on loopback: frame ``i`` is a flat grey of level 2*i % 250,
    so the consumer can read which frame it got."""

    def __init__(self, port: int = 0) -> None:
        self.index = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                try:
                    while not outer.stopped.is_set():
                        image = np.full((120, 160, 3), (2 * outer.index) % 250, np.uint8)
                        jpeg = cv2.imencode(".jpg", image)[1].tobytes()
                        self.wfile.write(
                            b"--frame\r\nContent-Type: image/jpeg\r\n"
                            + f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                            + jpeg
                            + b"\r\n"
                        )
                        outer.index += 1
                        time.sleep(1 / FPS)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self.stopped = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    def stop(self) -> None:
        self.stopped.set()
        self.server.shutdown()
        self.server.server_close()


def frame_number(frame) -> int:
    return round(float(frame.image.mean()) / 2)


def first_frame(source: LatestFrame, within_s: float = 15.0):
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        frame = source.read()
        if frame is not None:
            return frame
    raise AssertionError(f"no frame from {source.source} in {within_s} s")


def test_a_slow_consumer_always_gets_the_newest_frame():
    camera = MjpegCamera()
    source = LatestFrame(Camera(camera.url))
    try:
        first = frame_number(first_frame(source))
        time.sleep(0.6)  # a slow classifier: 12 frames arrive meanwhile
        second = source.read()
        assert second is not None
        jumped = frame_number(second) - first
        assert jumped >= 8, f"got frame {first} then {frame_number(second)}: a stale backlog"
        assert source.counters["dropped"] >= 6
        assert camera.index - frame_number(second) <= 3, "the newest frame, not an old one"
        third = first_frame(source)
        assert frame_number(third) > frame_number(second), "never the same or an older frame"
    finally:
        source.close()
        camera.stop()


def test_a_camera_that_goes_away_is_reopened_when_it_comes_back(monkeypatch):
    monkeypatch.setattr("edge.drivers.camera.MAX_BACKOFF_S", 0.2)
    camera = MjpegCamera()
    source = LatestFrame(Camera(camera.url))
    try:
        first_frame(source)
        camera.stop()
        time.sleep(1.0)
        while source.read() is not None:  # what was in flight
            pass
        back = MjpegCamera(camera.port)
        try:
            first_frame(source)
            assert source.counters["reopened"] >= 1
        finally:
            back.stop()
    finally:
        source.close()


class FakePicamera2:
    """What picamera2's Picamera2 class offers (configure, start, capture_array, stop, close):
    the adapter's contract, checked without a Pi. A real module is tested on a Pi only."""

    made: list[FakePicamera2] = []

    def __init__(self, index):
        self.index, self.calls = index, []
        FakePicamera2.made.append(self)

    def create_video_configuration(self, main):
        return {"main": main}

    def configure(self, config):
        self.calls.append(("configure", config))

    def start(self):
        self.calls.append(("start",))

    def capture_array(self, stream):
        return np.full((480, 640, 3), 50, np.uint8)

    def stop(self):
        self.calls.append(("stop",))

    def close(self):
        self.calls.append(("close",))


def test_a_pi_camera_module_is_opened_through_picamera2(monkeypatch):
    import sys
    import types

    module = types.ModuleType("picamera2")
    module.Picamera2 = FakePicamera2
    monkeypatch.setitem(sys.modules, "picamera2", module)
    source = LatestFrame(Camera("picamera2:1", width=640, height=480))
    try:
        frame = first_frame(source, 5)
        assert frame.image.shape == (480, 640, 3)
    finally:
        source.close()
    cam = FakePicamera2.made[-1]
    assert cam.index == 1
    assert cam.calls[0] == ("configure", {"main": {"size": (640, 480), "format": "RGB888"}})
    assert cam.calls[-2:] == [("stop",), ("close",)]


def test_a_pi_camera_without_picamera2_is_a_clear_error(monkeypatch):
    import sys

    from edge.drivers.camera import CameraError

    monkeypatch.setitem(sys.modules, "picamera2", None)  # import fails, as on a PC
    with pytest.raises(CameraError, match="apt install python3-picamera2"):
        Camera("picamera2")
