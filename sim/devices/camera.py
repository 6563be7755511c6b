"""The camera simulator: scenes rendered into video files, and the PIR pin that goes with them.

A camera is reached through OpenCV's capture, so the simulator hands the agent what a capture
opens: a video file (Motion-JPEG in AVI, which OpenCV reads everywhere), rendered frame by frame
from a seeded scene. The agent's config names the file as its ``source``, exactly as it would name
``/dev/video0`` or an RTSP URL; nothing in the agent knows it is simulated.

The PIR is a gpiozero MockFactory pin driven from the scene's timeline: high while a warm body is
in view (after the sensor's reaction time) and for its hold time after.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

import cv2

from sim.scenes.scene import Scene, SceneRenderer

ANIMALS = ("bear", "boar", "macaque", "deer", "serow")


def scene(name: str, seed: int, **overrides: object) -> Scene:
    """A named scene from the catalogue below, with its own seed (tests and demo pick seeds that
    the training script never uses)."""
    base = {
        "wind": Scene(name, None, seed, wind=1.0, duration_s=10.0),
        "rain": Scene(name, None, seed, rain=6.0, wind=0.4, duration_s=8.0),
        "lightning": Scene(
            name, None, seed, night=True, rain=2.0, lightning=(2.5, 2.8, 5.5), duration_s=8.0
        ),
        "ir-switch": Scene(name, None, seed, ir_switch_at=3.0, duration_s=7.0),
        "empty": Scene(name, None, seed, duration_s=6.0),
    }
    if name in base:
        return replace(base[name], **overrides)
    subject, _, variant = name.partition("-")
    variants = {"": {}, "night": {"night": True}, "rain": {"rain": 3.0}}
    if subject not in (*ANIMALS, "person", "vehicle") or variant not in variants:
        raise ValueError(f"unknown scene {name!r}")
    return Scene(name, subject, seed, **(variants[variant] | overrides))


def write_video(scenes: Iterable[Scene], path: Path) -> Path:
    """Render ``scenes`` one after another into a Motion-JPEG AVI at the first scene's rate."""
    scenes = list(scenes)
    fps, size = scenes[0].fps, scenes[0].size
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    try:
        for s in scenes:
            if (s.fps, s.size) != (fps, size):
                raise ValueError("all scenes of one video need the same fps and size")
            for frame in SceneRenderer(s).frames():
                writer.write(frame)
    finally:
        writer.release()
    return path


class PirSim:
    """Drives a gpiozero mock pin as a PIR watching ``renderer``'s scene would, in real time from
    ``start()`` (so use it with a source played ``realtime``)."""

    def __init__(
        self, renderer: SceneRenderer, pin: object, react_s: float = 0.3, hold_s: float = 2.0
    ) -> None:
        self.renderer, self.pin = renderer, pin
        self.react_s, self.hold_s = react_s, hold_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pir-sim", daemon=True)

    def level(self, t: float) -> bool:
        """Output of the sensor at scene time ``t``."""
        step = 1 / self.renderer.scene.fps
        window = int((self.hold_s + self.react_s) / step)
        return any(
            self.renderer.subject_box(t - self.react_s - k * step) is not None
            for k in range(window)
        )

    def start(self) -> PirSim:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            high = self.level(time.monotonic() - self._started)
            if high and not self.pin.state:
                self.pin.drive_high()
            elif not high and self.pin.state:
                self.pin.drive_low()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)


DEMO_SCENES = (
    "bear",
    "wind",
    "person",
    "boar-night",
    "rain",
    "deer",
    "lightning",
    "macaque",
    "vehicle",
    "serow",
)
MODELS = Path(__file__).resolve().parents[2] / "models"


def demo_camera(workdir: Path, seed: int = 4242) -> dict[str, object]:
    """The ``camera:`` config section of a demo camera: DEMO_SCENES (~90 s) rendered once into
    ``workdir/camera/scenes.avi`` and played in a loop in real time, people and vehicles sent too
    so the staff page shows both kinds of decision."""
    video = workdir / "camera" / "scenes.avi"
    if not video.exists():
        write_video([scene(n, seed + i) for i, n in enumerate(DEMO_SCENES)], video)
    return {
        "source": str(video),
        "realtime": True,
        "loop": True,
        "publish": "all",
        "model": {
            "path": str(MODELS / "wildlife-v1.tflite"),
            "labels": str(MODELS / "wildlife-v1.labels"),
            "version": "1.0.0",
        },
        "storage": {"dir": str(workdir / "camera" / "images"), "max_bytes": 200 * 2**20},
    }
