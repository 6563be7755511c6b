"""A scene over time: a subject (or nothing) crossing a backdrop, with wind, rain, night IR,
lightning and the day/night IR switch, rendered frame by frame from one seed."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from sim.scenes.backdrop import Backdrop, Weather, finish
from sim.scenes.paint import Body, Canvas
from sim.scenes.subjects import SPECIES, Look, Species

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in pixels

# Pixel length range for a subject's body (height for a person) when the camera sees it.
SCENE_LENGTH_PX = {"macaque": (90, 150), "person": (170, 300), "vehicle": (260, 420)}
DEFAULT_LENGTH_PX = (150, 260)


def subject_box(species: Species, x: float, ground: float, length: float, facing: int) -> Box:
    back, front, top = species.extent
    us = (x + facing * back * length, x + facing * front * length)
    return (int(min(us)), int(ground + top * length), int(max(us)), int(ground))


def draw_subject(
    canvas: Canvas,
    species: Species,
    look: Look,
    x: float,
    ground: float,
    length: float,
    facing: int,
    phase: float,
) -> None:
    species.draw(Body(canvas, x, ground, length, facing), phase, look)


@dataclass(frozen=True)
class Scene:
    """What happens in front of the camera. Times are seconds from the first frame."""

    name: str
    subject: str | None
    seed: int
    night: bool = False
    rain: float = 0.0
    wind: float = 0.3  # 0 calm .. 1 gale; scales how far the fronds sway
    lightning: tuple[float, ...] = ()
    ir_switch_at: float | None = None  # the camera drops its IR-cut filter: day turns grey
    enter_s: float = 1.5
    pace: float = 1.0  # >1: the subject walks faster than its species does (shorter scenes)
    tail_s: float = 1.5  # still frames after the subject has left
    fps: float = 10.0
    size: tuple[int, int] = (640, 480)
    duration_s: float | None = None  # default: until the subject has left, plus tail_s
    scale: float = 1.0  # >1: the subject is that many times nearer (larger) than usual
    exposure: tuple[tuple[float, float], ...] = ()  # (from t, gain): auto-exposure steps


@dataclass
class _Path:
    species: Species
    look: Look
    length: float
    ground: float
    facing: int
    start_x: float
    px_per_s: float
    exit_s: float


@dataclass
class SceneRenderer:
    """Renders ``scene`` deterministically: frame ``i`` is the same on every call and machine."""

    scene: Scene
    backdrop: Backdrop = field(init=False)
    path: _Path | None = field(init=False)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.scene.seed)
        w, h = self.scene.size
        self.backdrop = Backdrop.build(rng, w, h)
        self.path = self._plan(rng) if self.scene.subject else None
        self._noise_seed = int(rng.integers(1 << 30))

    def _plan(self, rng: np.random.Generator) -> _Path:
        s = self.scene
        species = SPECIES[s.subject]
        lo, hi = SCENE_LENGTH_PX.get(s.subject, DEFAULT_LENGTH_PX)
        length = rng.uniform(lo, hi) * s.scale
        metres = rng.uniform(*species.size)
        ground = min(self.backdrop.ground_for(length, metres), s.size[1] - 8)
        facing = int(rng.choice([-1, 1]))
        back, front, _ = species.extent
        w = s.size[0]
        start_x = -front * length if facing > 0 else w + front * length
        # pixels per metre at the subject's distance: from its size, as a close animal stands
        # below the frame's bottom edge where the ground line cannot say
        px_per_s = species.speed * s.pace * length / metres
        span = w + (front - back) * length
        exit_s = s.enter_s + span / px_per_s
        return _Path(species, species.look(rng), length, ground, facing, start_x, px_per_s, exit_s)

    @property
    def duration_s(self) -> float:
        if self.scene.duration_s is not None:
            return self.scene.duration_s
        end = self.path.exit_s if self.path else self.scene.enter_s
        return end + self.scene.tail_s

    @property
    def frame_count(self) -> int:
        return int(self.duration_s * self.scene.fps)

    def _position(self, t: float) -> float | None:
        p = self.path
        if p is None or not self.scene.enter_s <= t <= p.exit_s:
            return None
        return p.start_x + p.facing * p.px_per_s * (t - self.scene.enter_s)

    def subject_box(self, t: float) -> Box | None:
        """The part of the subject inside the frame at ``t``, or None when it is not in view."""
        x = self._position(t)
        if x is None:
            return None
        p = self.path
        x0, y0, x1, y1 = subject_box(p.species, x, p.ground, p.length, p.facing)
        w, h = self.scene.size
        x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None

    def ir_at(self, t: float) -> bool:
        s = self.scene
        return s.night or (s.ir_switch_at is not None and t >= s.ir_switch_at)

    def weather(self, t: float) -> Weather:
        s = self.scene
        flash = max((1.0 - abs(t - at) * s.fps / 1.5 for at in s.lightning), default=0.0)
        gain = next((g for at, g in reversed(s.exposure) if t >= at), 1.0)
        return Weather(ir=self.ir_at(t), rain=s.rain, flash=max(0.0, flash), exposure=gain)

    def frame(self, i: int) -> np.ndarray:
        t = i / self.scene.fps
        canvas = self.backdrop.static.copy()
        for frond in self.backdrop.fronds:
            frond.draw(canvas, t, self.scene.wind)
        x = self._position(t)
        if x is not None:
            p = self.path
            travelled = p.px_per_s * (t - self.scene.enter_s) / p.length
            draw_subject(
                canvas,
                p.species,
                p.look,
                x,
                p.ground,
                p.length,
                p.facing,
                2 * math.pi * travelled / 0.8,
            )
        for frond in self.backdrop.near_fronds:
            frond.draw(canvas, t, self.scene.wind)
        rng = np.random.default_rng((self._noise_seed, i))
        return finish(canvas.image(self.ir_at(t)), rng, self.weather(t))

    def frames(self) -> Iterator[np.ndarray]:
        for i in range(self.frame_count):
            yield self.frame(i)
