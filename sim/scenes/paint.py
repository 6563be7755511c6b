"""Drawing in two bands at once: what a colour sensor sees by day and what it sees at night under
its 850 nm illuminator, where foliage glows and a black bear is mid-grey, not black."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

Point = tuple[float, float]


@dataclass(frozen=True)
class Material:
    """A surface: its day colour (BGR) and its near-infrared brightness (0-255)."""

    bgr: tuple[int, int, int]
    nir: int

    def jitter(self, rng: np.random.Generator, amount: float = 15) -> Material:
        shift = rng.normal(0, amount / 2, 3) + rng.normal(0, amount / 2)
        bgr = np.clip(np.array(self.bgr) + shift, 0, 255).astype(int)
        nir = int(np.clip(self.nir + rng.normal(0, amount / 2), 0, 255))
        return Material((int(bgr[0]), int(bgr[1]), int(bgr[2])), nir)

    def scaled(self, factor: float) -> Material:
        bgr = np.clip(np.array(self.bgr) * factor, 0, 255).astype(int)
        return Material((int(bgr[0]), int(bgr[1]), int(bgr[2])), int(min(255, self.nir * factor)))


class Canvas:
    """A BGR image and its NIR twin; every stroke lands in both."""

    def __init__(self, height: int, width: int) -> None:
        self.bgr = np.zeros((height, width, 3), np.uint8)
        self.nir = np.zeros((height, width), np.uint8)

    @property
    def shape(self) -> tuple[int, int]:
        return self.nir.shape

    def copy(self) -> Canvas:
        out = Canvas.__new__(Canvas)
        out.bgr, out.nir = self.bgr.copy(), self.nir.copy()
        return out

    def fill(self, m: Material) -> None:
        self.bgr[:] = m.bgr
        self.nir[:] = m.nir

    def ellipse(self, c: Point, axes: Point, angle: float, m: Material) -> None:
        centre = (round(c[0]), round(c[1]))
        size = (max(1, round(axes[0])), max(1, round(axes[1])))
        cv2.ellipse(self.bgr, centre, size, angle, 0, 360, m.bgr, -1, cv2.LINE_AA)
        cv2.ellipse(self.nir, centre, size, angle, 0, 360, m.nir, -1, cv2.LINE_AA)

    def poly(self, points: list[Point], m: Material) -> None:
        pts = np.round(np.array(points)).astype(np.int32)
        cv2.fillPoly(self.bgr, [pts], m.bgr, cv2.LINE_AA)
        cv2.fillPoly(self.nir, [pts], m.nir, cv2.LINE_AA)

    def line(self, p: Point, q: Point, width: float, m: Material) -> None:
        a, b, w = (round(p[0]), round(p[1])), (round(q[0]), round(q[1])), max(1, round(width))
        cv2.line(self.bgr, a, b, m.bgr, w, cv2.LINE_AA)
        cv2.line(self.nir, a, b, m.nir, w, cv2.LINE_AA)

    def image(self, ir: bool) -> np.ndarray:
        """The frame as a camera delivers it: BGR by day, grey in three equal channels at night."""
        return cv2.cvtColor(self.nir, cv2.COLOR_GRAY2BGR) if ir else self.bgr.copy()


class Body:
    """Maps body coordinates to pixels: units of body length, x forward, y down, origin on the
    ground under the body's middle. ``facing`` -1 mirrors the figure."""

    def __init__(self, canvas: Canvas, x: float, y: float, length: float, facing: int) -> None:
        self.canvas, self.x, self.y, self.length, self.facing = canvas, x, y, length, facing

    def p(self, u: float, v: float) -> Point:
        return (self.x + self.facing * u * self.length, self.y + v * self.length)

    def ellipse(self, u: float, v: float, a: float, b: float, angle: float, m: Material) -> None:
        axes = (a * self.length, b * self.length)
        self.canvas.ellipse(self.p(u, v), axes, angle * self.facing, m)

    def poly(self, points: list[Point], m: Material) -> None:
        self.canvas.poly([self.p(u, v) for u, v in points], m)

    def line(self, a: Point, b: Point, width: float, m: Material) -> None:
        self.canvas.line(self.p(*a), self.p(*b), width * self.length, m)

    def leg(
        self, u: float, top: float, length: float, width: float, swing: float, m: Material
    ) -> None:
        """A leg hanging from (u, top) to the ground, its foot ``swing`` forward of the hip."""
        knee = (u + swing * 0.4, top + length * 0.55)
        foot = (u + swing, top + length)
        self.line((u, top), knee, width, m)
        self.line(knee, foot, width * 0.85, m)
