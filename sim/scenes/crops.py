"""Labelled training crops from the scene generator, cut the way the camera agent cuts them.

A subject is drawn into a whole frame at a size and place the camera would see it (edges
included, so part of it may be out of view), the frame gets the same light, weather and noise as
the simulator's, and the crop is a loosely jittered square around the subject's box: motion gating
never boxes an animal exactly. ``background`` crops are the same frames with nothing in them:
vegetation, trunks, rain, night noise.
"""

from __future__ import annotations

import cv2
import numpy as np

from edge.agents.camera.regions import area, crop
from sim.scenes.backdrop import Backdrop, Weather, finish
from sim.scenes.scene import DEFAULT_LENGTH_PX, SCENE_LENGTH_PX, draw_subject, subject_box
from sim.scenes.subjects import SPECIES

LABELS = ("bear", "boar", "macaque", "deer", "serow", "person", "vehicle", "background")
HARMFUL = ("bear", "boar", "macaque", "deer", "serow")
FRAME = (640, 480)


class CropSampler:
    """Draws crops from ``backdrops`` scenes built from ``seed``; each sample from its own rng."""

    def __init__(self, seed: int, size: int = 64, backdrops: int = 24) -> None:
        rng = np.random.default_rng(seed)
        self.size = size
        self.backdrops = [Backdrop.build(rng, *FRAME) for _ in range(backdrops)]

    def sample(self, label: str, rng: np.random.Generator) -> tuple[np.ndarray, bool]:
        """One RGB crop of ``label`` and whether it is a night IR frame."""
        bd = self.backdrops[rng.integers(len(self.backdrops))]
        canvas = bd.static.copy()
        t, wind = rng.uniform(0, 60), rng.uniform(0, 1)
        for frond in bd.fronds:
            frond.draw(canvas, t, wind)
        if label == "background":
            box = self._empty_box(bd, rng)
        else:
            box = self._draw(canvas, bd, label, rng)
        if rng.random() < 0.3:
            for frond in bd.near_fronds:
                frond.draw(canvas, t, wind)
        ir = bool(rng.random() < 0.4)
        rain = float(rng.choice([0.0, 0.0, 0.0, rng.uniform(0.5, 4.0)]))
        weather = Weather(ir=ir, rain=rain, exposure=rng.uniform(0.6, 1.3))
        frame = finish(canvas.image(ir), rng, weather)
        jittered = _jitter(box, rng, *FRAME)
        out = crop(frame, jittered, margin=float(rng.uniform(0.05, 0.3)), size=(self.size,) * 2)
        if rng.random() < 0.5:  # the JPEG or MJPEG compression of the camera stream
            quality = int(rng.integers(40, 95))
            ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        return cv2.cvtColor(out, cv2.COLOR_BGR2RGB), ir

    def _draw(self, canvas: object, bd: Backdrop, label: str, rng: np.random.Generator) -> tuple:
        species = SPECIES[label]
        lo, hi = SCENE_LENGTH_PX.get(label, DEFAULT_LENGTH_PX)
        w, h = FRAME
        while True:
            length = rng.uniform(lo * 0.6, hi * 1.15)
            ground = min(bd.ground_for(length, rng.uniform(*species.size)), h - 4)
            facing = int(rng.choice([-1, 1]))
            x = rng.uniform(-0.1 * w, 1.1 * w)
            full = subject_box(species, x, ground, length, facing)
            box = (max(0, full[0]), max(0, full[1]), min(w, full[2]), min(h, full[3]))
            if area(box) >= 0.55 * area(full):  # at most about half out of view
                break
        draw_subject(
            canvas, species, species.look(rng), x, ground, length, facing, rng.uniform(0, 2 * np.pi)
        )
        return box

    @staticmethod
    def _empty_box(bd: Backdrop, rng: np.random.Generator) -> tuple:
        w, h = FRAME
        side = rng.uniform(40, 300)
        if bd.fronds and rng.random() < 0.5:  # where the wind moves things
            cx, cy = bd.fronds[rng.integers(len(bd.fronds))].root
            cy -= side / 3
        else:
            cx, cy = rng.uniform(0, w), rng.uniform(bd.horizon - 40, h)
        x0, y0 = int(np.clip(cx - side / 2, 0, w - 8)), int(np.clip(cy - side / 2, 0, h - 8))
        return (x0, y0, min(w, x0 + int(side)), min(h, y0 + int(side * rng.uniform(0.5, 1.2))))


def _jitter(box: tuple, rng: np.random.Generator, w: int, h: int) -> tuple:
    """Box as motion gating might report it: shifted, grown or shrunk, never exact."""
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    grow = rng.uniform(0.8, 1.3)
    cx = (x0 + x1) / 2 + rng.normal(0, 0.1) * bw
    cy = (y0 + y1) / 2 + rng.normal(0, 0.1) * bh
    nw, nh = max(8, bw * grow), max(8, bh * grow)
    out = (int(cx - nw / 2), int(cy - nh / 2), int(cx + nw / 2), int(cy + nh / 2))
    return (max(0, out[0]), max(0, out[1]), min(w, out[2]), min(h, out[3]))
