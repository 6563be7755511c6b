"""Live sources: an HTTP MJPEG IP camera served by the test, read by the grabber thread that
always hands the agent the newest frame, and reopened after the camera goes away."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

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
