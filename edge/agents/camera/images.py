"""Pictures: the small JPEG that goes to the city over LTE, and the full-resolution frames kept on
the device under a disk quota (oldest deleted first) for staff to fetch when they need them."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np

from edge.agents.camera.regions import Box

log = logging.getLogger(__name__)
MIN_QUALITY = 30
MIN_WIDTH = 64


def annotate(frame: np.ndarray, box: Box | None, text: str) -> np.ndarray:
    out = frame.copy()
    thickness = max(1, frame.shape[1] // 320)
    if box is not None:
        cv2.rectangle(out, box[:2], box[2:], (0, 0, 255), thickness)
    origin = (box[0], max(12, box[1] - 6)) if box is not None else (8, 20)
    cv2.putText(
        out,
        text,
        origin,
        cv2.FONT_HERSHEY_SIMPLEX,
        0.5 * thickness,
        (0, 0, 255),
        thickness,
        cv2.LINE_AA,
    )
    return out


def is_grey(frame: np.ndarray) -> bool:
    """Whether a BGR frame is a night IR frame: its channels differ by (nearly) a constant, which
    is what a grey picture looks like after the camera's or the codec's colour conversion."""
    small = frame[::8, ::8].astype(np.int16)
    for a, b in ((0, 1), (1, 2)):
        d = small[..., a] - small[..., b]
        if float(np.abs(d - np.median(d)).mean()) > 1.5:
            return False
    return True


def encode_capped(
    frame: np.ndarray, max_bytes: int, max_width: int, quality: int
) -> tuple[bytes, int, int]:
    """A JPEG of at most ``max_bytes`` and its width and height: first lower the quality (down to
    MIN_QUALITY), then halve the size.

    Raises ValueError if even a MIN_WIDTH-wide picture does not fit, which only a far too small
    cap can cause."""
    h, w = frame.shape[:2]
    width = min(w, max_width)
    while width >= MIN_WIDTH:
        img = (
            frame
            if width == w
            else cv2.resize(frame, (width, round(h * width / w)), interpolation=cv2.INTER_AREA)
        )
        for q in range(quality, MIN_QUALITY - 1, -10):
            ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])
            if ok and len(buf) <= max_bytes:
                return buf.tobytes(), img.shape[1], img.shape[0]
        width //= 2
    raise ValueError(f"no JPEG of this frame fits in {max_bytes} bytes")


class LocalStore:
    """JPEG files under ``root`` holding at most ``max_bytes``; a full disk or a read-only card is
    logged and counted by the caller, never fatal."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.deleted = 0
        root.mkdir(parents=True, exist_ok=True)
        self._files = sorted(root.glob("*.jpg"), key=lambda p: (p.stat().st_mtime, p.name))
        self._total = sum(p.stat().st_size for p in self._files)

    @property
    def total_bytes(self) -> int:
        return self._total

    def save(self, name: str, frames: list[np.ndarray]) -> list[Path]:
        """Write ``name-<i>.jpg`` for each frame, then delete the oldest files beyond the quota.
        Raises OSError when the disk refuses."""
        written = []
        for i, frame in enumerate(frames):
            ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
            if not ok:
                continue
            path = self.root / f"{name}-{i}.jpg"
            path.write_bytes(buf.tobytes())
            self._files.append(path)
            self._total += len(buf)
            written.append(path)
        self._enforce()
        return written

    def _enforce(self) -> None:
        while self._total > self.max_bytes and self._files:
            oldest = self._files.pop(0)
            try:
                size = oldest.stat().st_size
                oldest.unlink()
            except FileNotFoundError:  # removed by hand meanwhile
                size = 0
            self._total -= size
            self.deleted += 1
