"""Camera sources: a USB camera through V4L2 (``0`` or ``/dev/videoN``), an RTSP or HTTP (MJPEG)
IP camera by URL (OpenCV's FFmpeg backend, with open and read timeouts), a Raspberry Pi camera
module through ``picamera2`` (``picamera2`` or ``picamera2:N``; libcamera, what Raspberry Pi OS
Bookworm uses: OpenCV's ``VideoCapture(0)`` does not open those), or a video file by path.

A live source is read by ``LatestFrame``: a grabber thread that always holds only the newest
frame, so a slow classifier never works through a backlog of stale frames (what it skipped is
counted as ``dropped``), and that reopens a source that stops delivering.

The file is also how the camera simulator is reached: ``sim/devices/camera.py`` renders a scene
into a video file and the agent opens that path exactly as it opens a recording or a live camera.
A file plays as fast as it is read (frame times come from its frame rate, so the agent's timing
follows the scene, not the CPU), or at its own frame rate with ``realtime``, like a live camera.

``read()`` never raises for camera trouble: a frame that does not arrive, or arrives as something
that is not an image, is counted and logged, and a live camera that keeps failing is reopened.
Counters: ``frames``, ``missing``, ``rejected``, ``reopened``, and for live sources ``dropped``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

log = logging.getLogger(__name__)

COUNTERS = ("frames", "missing", "rejected", "reopened", "dropped")
REOPEN_AFTER = 10  # consecutive missing frames before a live camera is reopened
MAX_BACKOFF_S = 5.0
NETWORK_TIMEOUT_MS = 5000  # an RTSP/HTTP camera that says nothing this long is reopened


class CameraError(RuntimeError):
    """A source that can never work, such as a video file that does not exist or does not open."""


class Capture(Protocol):
    """The part of ``cv2.VideoCapture`` this driver uses."""

    def isOpened(self) -> bool: ...  # noqa: N802 - OpenCV's name
    def read(self) -> tuple[bool, Any]: ...
    def get(self, prop: int) -> float: ...
    def set(self, prop: int, value: float) -> bool: ...
    def release(self) -> None: ...


@dataclass(frozen=True)
class Frame:
    image: np.ndarray  # BGR, uint8, height x width x 3
    t: float  # seconds on the source's own timeline (file position, or since the driver started)
    index: int


class Picamera2Capture:
    """A Raspberry Pi camera module through ``picamera2`` (installed with Raspberry Pi OS:
    ``apt install python3-picamera2``), with the part of ``VideoCapture``'s interface this driver
    uses. ``RGB888`` is libcamera's name for B, G, R bytes: OpenCV's order already."""

    def __init__(self, index: int, width: int | None, height: int | None) -> None:
        from picamera2 import Picamera2  # only on a Pi with a camera module

        self._camera = Picamera2(index)
        size = (width or 640, height or 480)
        self._camera.configure(
            self._camera.create_video_configuration(main={"size": size, "format": "RGB888"})
        )
        self._camera.start()

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def read(self) -> tuple[bool, Any]:
        try:
            return True, self._camera.capture_array("main")
        except RuntimeError:
            return False, None

    def get(self, prop: int) -> float:
        return 0.0

    def set(self, prop: int, value: float) -> bool:
        return False

    def release(self) -> None:
        self._camera.stop()
        self._camera.close()


def open_capture(source: str, width: int | None = None, height: int | None = None) -> Capture:
    """The capture for ``source``: a V4L2 device, a network stream, picamera2, or a file."""
    if source.isdigit() or source.startswith("/dev/video"):
        return cv2.VideoCapture(int(source) if source.isdigit() else source, cv2.CAP_V4L2)
    if source.split(":")[0] == "picamera2":
        index = source.partition(":")[2]
        return Picamera2Capture(int(index or 0), width, height)
    if "://" in source:
        timeouts = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            NETWORK_TIMEOUT_MS,
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            NETWORK_TIMEOUT_MS,
        ]
        return cv2.VideoCapture(source, cv2.CAP_FFMPEG, timeouts)
    return cv2.VideoCapture(source)


def check_source(source: str) -> None:
    """Raise CameraError for a source that names a file that is not there, or a Pi camera
    without picamera2. A camera index, a device path or a URL may come and go (USB replugged,
    network down): those are retried."""
    if source.split(":")[0] == "picamera2":
        try:
            import picamera2  # noqa: F401 - only whether it is there
        except ImportError:
            raise CameraError(
                f"{source}: picamera2 is not installed (on Raspberry Pi OS: "
                "apt install python3-picamera2, and create the venv with --system-site-packages)"
            ) from None
        return
    if source.isdigit() or "://" in source or source.startswith("/dev/"):
        return
    if not Path(source).is_file():
        raise CameraError(f"{source}: no such video file or camera device")


def as_bgr(image: object) -> np.ndarray | None:
    """The frame as 3-channel BGR uint8, or None if it is not an image."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.size == 0:
        return None
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return None


class Camera:
    def __init__(
        self,
        source: str,
        *,
        width: int | None = None,
        height: int | None = None,
        realtime: bool = False,
        loop: bool = False,
        opener: Callable[..., Capture] = open_capture,
        on_count: Callable[[str], None] = lambda _name: None,
    ) -> None:
        check_source(source)
        self.source = source
        self.is_file = Path(source).is_file()
        self.width, self.height = width, height
        self.realtime, self.loop = realtime, loop
        self.ended = False
        self.counters = dict.fromkeys(COUNTERS, 0)
        self._opener, self._on_count = opener, on_count
        self._index = 0
        self._failures = 0
        self._capture: Capture | None = None
        self._epoch = time.monotonic()
        self._open()
        if self.is_file and self._capture is None:
            raise CameraError(f"{source}: OpenCV cannot open this video file")

    def _open(self) -> None:
        capture = self._opener(self.source, self.width, self.height)
        if not capture.isOpened():
            capture.release()
            self._capture = None
            log.warning("camera did not open", extra={"fields": {"source": self.source}})
            return
        if not self.is_file:
            if self.width:
                capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.width)
            if self.height:
                capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.height)
        fps = capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if 0 < fps < 1000 else 10.0
        self._capture = capture

    def count(self, name: str) -> None:
        self.counters[name] += 1
        self._on_count(name)
        n = self.counters[name]
        if name != "frames" and n & (n - 1) == 0:  # 1st, 2nd, 4th, 8th... time: logs stay quiet
            log.warning(f"camera frame {name}", extra={"fields": {"source": self.source, "n": n}})

    def read(self) -> Frame | None:
        """The next frame, or None: none arrived (counted), or a file ended (``ended`` is set)."""
        if self._capture is None:
            self._backoff()
            self._open()
            if self._capture is None:
                return None
            self.count("reopened")
        ok, image = self._capture.read()
        if not ok and self.is_file:
            if not self.loop or self._index == 0:
                self.ended = True
                return None
            self._capture.release()
            self._open()
            if self._capture is None:
                self.ended = True
                return None
            ok, image = self._capture.read()
        if not ok:
            self.count("missing")
            self._failures += 1
            if self._failures >= REOPEN_AFTER:
                self._capture.release()
                self._capture = None
            return None
        self._failures = 0
        bgr = as_bgr(image)
        if bgr is None:
            self.count("rejected")
            return None
        t = self._index / self.fps if self.is_file else time.monotonic() - self._epoch
        if self.is_file and self.realtime:
            time.sleep(max(0.0, self._epoch + t - time.monotonic()))
        self._index += 1
        self.count("frames")
        return Frame(bgr, t, self._index - 1)

    def _backoff(self) -> None:
        time.sleep(min(MAX_BACKOFF_S, 0.1 * 2 ** min(self.counters["reopened"], 6)))

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


class LatestFrame:
    """A live camera read on its own thread; ``read()`` returns the newest frame not yet returned
    (waiting up to ``timeout_s`` for one), never an older one. Frames the agent had no time for
    are counted as ``dropped`` on the camera. Same interface as ``Camera`` for the agent."""

    def __init__(self, camera: Camera, timeout_s: float = 1.0) -> None:
        self.camera, self.source, self.timeout_s = camera, camera.source, timeout_s
        self.ended = False  # a live camera does not end; it is reopened
        self._ready = threading.Condition()
        self._frame: Frame | None = None
        self._fresh = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._grab, name="camera-grabber", daemon=True)
        self._thread.start()

    @property
    def counters(self) -> dict[str, int]:
        return self.camera.counters

    def _grab(self) -> None:
        while not self._stop.is_set():
            frame = self.camera.read()
            if frame is None:
                continue
            with self._ready:
                if self._fresh:
                    self.camera.count("dropped")
                self._frame, self._fresh = frame, True
                self._ready.notify()

    def read(self) -> Frame | None:
        with self._ready:
            if not self._ready.wait_for(lambda: self._fresh, self.timeout_s):
                return None
            self._fresh = False
            return self._frame

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=NETWORK_TIMEOUT_MS / 1000 + MAX_BACKOFF_S)
        self.camera.close()
