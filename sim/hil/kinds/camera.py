"""The wildlife camera on the bench: scenes in front of the lens and a PIR watching them.

Bench options (``bench:``): ``scenes``, the film, in order: each ``{scene: NAME, ...}`` with a
name from ``sim/devices/camera.py``'s catalogue (``bear``, ``rain``, ``boar-night``...) and any
``Scene`` field to change (``rain``, ``ir_switch_at`` for dusk, ``night``, ``pace``); ``pir``
(default true: a PIR on GPIO17, trigger ``pir_or_motion``).

Steps: ``scene: NAME`` waits until that scene is in front of the camera. In simulation the film is
rendered once into a video file the agent opens as its camera (played in real time) and the PIR
is a gpiozero mock pin driven from the same film, so the agent runs in the harness's process. On a
real bench (``--port camera=/dev/video0``, ``--port pir=GPIO17``) each scene is a prompt.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from sim.devices.camera import MODELS, PirSim, scene, write_video
from sim.hil.kinds import Outcome, Prompt, Setup
from sim.scenes.scene import Scene, SceneRenderer

PIR_PIN = 17


class FilmPir(PirSim):
    """A PIR watching a film of several scenes: each scene's warm bodies, at its own offset."""

    def __init__(self, scenes: list[Scene], pin: object) -> None:
        self.parts = [(start, SceneRenderer(s)) for start, s in with_starts(scenes)]
        super().__init__(self.parts[0][1], pin)

    def level(self, t: float) -> bool:
        start, renderer = next(((a, r) for a, r in reversed(self.parts) if a <= t), self.parts[0])
        self.renderer = renderer
        return super().level(t - start)


def with_starts(scenes: list[Scene]) -> list[tuple[float, Scene]]:
    out, t = [], 0.0
    for s in scenes:
        out.append((t, s))
        t += SceneRenderer(s).duration_s
    return out


class CameraBench:
    def __init__(self, setup: Setup) -> None:
        self.setup = setup
        self.real = setup.target == "real"
        self.use_pir = bool(setup.options.get("pir", True))
        self.scenes: list[Scene] = []
        for i, item in enumerate(setup.options.get("scenes", [])):
            fields = dict(item)
            name = fields.pop("scene")
            self.scenes.append(replace(scene(name, setup.seed * 100 + i), **fields))
        self.in_process = not self.real and self.use_pir
        self.video: Path | None = None
        self.pir: FilmPir | None = None
        self.started_at: float | None = None
        self._previous_factory: Any = None
        if not self.real:
            self.video = write_video(self.scenes, setup.workdir / "camera" / "film.avi")
            if self.use_pir:
                from gpiozero import Device
                from gpiozero.pins.mock import MockFactory

                self._previous_factory = Device.pin_factory
                Device.pin_factory = MockFactory()
                self.pir = FilmPir(self.scenes, Device.pin_factory.pin(PIR_PIN))

    def agent_config(self) -> dict[str, Any]:
        ports = self.setup.ports
        source = ports.get("camera", "0") if self.real else str(self.video)
        section: dict[str, Any] = {
            "source": source,
            "realtime": not self.real,
            "model": {
                "path": str(MODELS / "wildlife-v1.tflite"),
                "labels": str(MODELS / "wildlife-v1.labels"),
                "version": "1.0.0",
            },
            "storage": {"dir": str(self.setup.workdir / "camera" / "images")},
            "publish": "all",
        }
        if self.use_pir:
            section["trigger"] = "pir_or_motion"
            section["pir"] = {"pin": ports.get("pir", f"GPIO{PIR_PIN}") if self.real else PIR_PIN}
        self.started_at = time.monotonic()
        if self.pir is not None:
            self.pir.start()
        return {"agent": "camera", "camera": section}

    def act(self, action: str, value: Any) -> Outcome:
        if self.real:
            return Prompt(f"put in front of the camera: {value} (a person, or a life-size print)")
        starts = {s.name: t for t, s in with_starts(self.scenes)}
        if value not in starts:
            raise ValueError(f"scene {value!r} is not in the film: {', '.join(starts)}")
        if self.started_at is None:
            raise ValueError("start the agent before a scene")
        time.sleep(max(0.0, self.started_at + starts[value] - time.monotonic()))
        return None

    def close(self) -> None:
        if self.pir is not None:
            self.pir.stop()
        if self._previous_factory is not None:
            from gpiozero import Device

            Device.pin_factory.reset()
            Device.pin_factory = self._previous_factory


class CameraKind:
    name = "camera"
    actions = frozenset({"scene"})
    port_names = ("camera", "pir")
    users = ()

    def open(self, setup: Setup) -> CameraBench:
        return CameraBench(setup)


KIND = CameraKind()
