"""The place the camera looks at, and the weather and light over it.

A forest edge: canopy, trunks, bushes and grass, with fronds that sway in the wind (the classic
false trigger). ``finish`` turns a drawn frame into what a cheap camera delivers: exposure, rain
streaks, a lightning flash, the falloff of an IR illuminator at night, blur and sensor noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from sim.scenes.paint import Canvas, Material

SKY = Material((215, 190, 160), 25)
CANOPY = Material((45, 105, 60), 205)
TRUNK = Material((45, 65, 85), 110)
GRASS = Material((60, 130, 95), 190)
DIRT = Material((85, 115, 140), 140)
LEAF = Material((50, 140, 75), 215)


@dataclass(frozen=True)
class Frond:
    """A branch or grass clump rooted at ``root`` that sways ``amp`` radians at ``freq`` Hz."""

    root: tuple[float, float]
    length: float
    angle: float
    amp: float
    freq: float
    phase: float
    leaf: Material
    width: float

    def draw(self, canvas: Canvas, t: float, wind: float) -> None:
        sway = wind * self.amp * math.sin(2 * math.pi * self.freq * t + self.phase)
        a = self.angle + sway
        x0, y0 = self.root
        tip = (x0 + self.length * math.cos(a), y0 - self.length * math.sin(a))
        canvas.line(self.root, tip, self.width, self.leaf.scaled(0.7))
        for f in (0.45, 0.7, 1.0):
            c = (x0 + f * (tip[0] - x0), y0 + f * (tip[1] - y0))
            canvas.ellipse(c, (self.length * 0.18, self.length * 0.08), -math.degrees(a), self.leaf)


@dataclass
class Backdrop:
    """A static scene plus the fronds drawn over it frame by frame."""

    static: Canvas
    fronds: list[Frond]
    near_fronds: list[Frond]  # in front of the subjects: a branch right before the lens
    horizon: int

    @classmethod
    def build(cls, rng: np.random.Generator, width: int = 640, height: int = 480) -> Backdrop:
        c = Canvas(height, width)
        horizon = int(height * rng.uniform(0.3, 0.42))
        c.fill(SKY.jitter(rng, 20))
        c.poly([(0, 0), (width, 0), (width, horizon), (0, horizon)], CANOPY.jitter(rng, 15))
        for _ in range(int(rng.integers(6, 14))):
            x = rng.uniform(-20, width)
            c.ellipse(
                (x, rng.uniform(-20, horizon)),
                (rng.uniform(30, 90), rng.uniform(20, 60)),
                rng.uniform(0, 180),
                CANOPY.jitter(rng, 25),
            )
        ground = GRASS.jitter(rng, 15)
        c.poly([(0, horizon), (width, horizon), (width, height), (0, height)], ground)
        path = DIRT.jitter(rng, 15)
        mid = rng.uniform(0.3, 0.7) * width
        c.poly(
            [(mid - 30, horizon), (mid + 30, horizon), (mid + 260, height), (mid - 260, height)],
            path,
        )
        for _ in range(int(rng.integers(3, 8))):
            x, w = rng.uniform(0, width), rng.uniform(10, 40)
            foot = horizon + rng.uniform(0, 25)
            c.poly(
                [(x - w / 2, -5), (x + w / 2, -5), (x + w / 2, foot), (x - w / 2, foot)],
                TRUNK.jitter(rng, 15),
            )
        for _ in range(int(rng.integers(3, 9))):
            cx, cy = rng.uniform(0, width), rng.uniform(horizon, horizon + 60)
            for _ in range(5):
                c.ellipse(
                    (cx + rng.normal(0, 20), cy + rng.normal(0, 10)),
                    (rng.uniform(15, 40), rng.uniform(10, 25)),
                    0,
                    LEAF.jitter(rng, 25),
                )
        _texture(c, rng)
        fronds = [
            _frond(rng, width, height, horizon, near=False) for _ in range(int(rng.integers(3, 8)))
        ]
        near = [
            _frond(rng, width, height, horizon, near=True) for _ in range(int(rng.integers(0, 2)))
        ]
        return cls(c, fronds, near, horizon)

    def ground_for(self, length_px: float, metres: float) -> float:
        """The ground line at which a subject ``metres`` long is ``length_px`` pixels long."""
        return self.horizon + length_px / metres / 1.6


def _frond(rng: np.random.Generator, width: int, height: int, horizon: int, near: bool) -> Frond:
    if near:
        side = rng.choice([-1, 1])
        root = (width / 2 + side * width * 0.55, rng.uniform(height * 0.2, height * 0.8))
        angle = math.pi / 2 - side * rng.uniform(0.6, 1.2)
        length, width_px = rng.uniform(120, 200), rng.uniform(6, 10)
    else:
        root = (rng.uniform(0, width), rng.uniform(horizon + 10, height))
        angle = math.pi / 2 + rng.uniform(-0.5, 0.5)
        length, width_px = rng.uniform(30, 90), rng.uniform(2, 5)
    return Frond(
        root,
        length,
        angle,
        rng.uniform(0.08, 0.25),
        rng.uniform(0.3, 1.2),
        rng.uniform(0, 2 * math.pi),
        LEAF.jitter(rng, 30),
        width_px,
    )


def _texture(c: Canvas, rng: np.random.Generator) -> None:
    """Low-frequency mottling so the ground is not a flat colour (motion gating must cope)."""
    h, w = c.shape
    small = rng.normal(0, 14, (h // 16 + 1, w // 16 + 1)).astype(np.float32)
    fine = rng.normal(0, 6, (h, w)).astype(np.float32)
    mottle = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) + fine
    c.bgr[:] = np.clip(c.bgr + mottle[..., None], 0, 255).astype(np.uint8)
    c.nir[:] = np.clip(c.nir + mottle, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Weather:
    """Conditions of one frame. ``rain`` is streaks per 100x100 px; ``flash`` 0..1 lightning."""

    ir: bool = False
    rain: float = 0.0
    flash: float = 0.0
    exposure: float = 1.0


def finish(image: np.ndarray, rng: np.random.Generator, w: Weather) -> np.ndarray:
    """Light, weather and sensor: the frame as it leaves the camera (uint8 BGR)."""
    h, wd = image.shape[:2]
    img = image.astype(np.float32)
    if w.ir:
        img *= _ir_falloff(h, wd)[..., None]
    img *= w.exposure
    if w.rain:
        img *= 0.8 if not w.ir else 1.0
        overlay = np.zeros((h, wd), np.float32)
        n = int(w.rain * h * wd / 10_000)
        xs, ys = rng.uniform(0, wd, n), rng.uniform(0, h, n)
        lengths, slant = rng.uniform(6, 18, n), rng.normal(0.15, 0.05)
        for x, y, length in zip(xs, ys, lengths, strict=True):
            tip = (int(x + slant * length), int(y + length))
            cv2.line(overlay, (int(x), int(y)), tip, 90.0 if w.ir else 60.0, 1)
        img += overlay[..., None]
    if w.flash:
        img = img * (1 - 0.5 * w.flash) + 230 * w.flash
    img = cv2.GaussianBlur(img, (3, 3), 0.6)
    # the frame's own generator, never OpenCV's process-wide one: a scene renders the same frames
    # whatever ran before it in the process
    noise = rng.standard_normal((h, wd), dtype=np.float32)
    img += noise[..., None] * (5.0 if w.ir else 2.5)
    return np.clip(img, 0, 255).astype(np.uint8)


_FALLOFF: dict[tuple[int, int], np.ndarray] = {}


def _ir_falloff(h: int, w: int) -> np.ndarray:
    """An 850 nm illuminator lights the centre and the near ground; the distance fades to black."""
    if (h, w) not in _FALLOFF:
        y, x = np.mgrid[0:h, 0:w].astype(np.float32)
        r = np.hypot((x - w / 2) / (w * 0.6), (y - h * 0.6) / (h * 0.7))
        near = 0.35 + 0.65 * (y / h)
        _FALLOFF[(h, w)] = np.clip((1.15 - 0.6 * r**2) * near, 0.08, 1.0)
    return _FALLOFF[(h, w)]
