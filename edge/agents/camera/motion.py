"""Motion gating: is something moving in view, and where? Cheap enough for every frame.

Works on a small colour copy of the frame (``width`` pixels wide, bilinear: the resize is the
blur) against a running-average background. A pixel moves when any colour channel differs from
the background by more than ``threshold`` levels: colour, not grey, because a macaque's grey-brown
fur has nearly the grey level of a dirt trail but not its hue. Before comparing, the background
is scaled by the frame's global gain (the median ratio of frame to background), so auto-exposure
steps and clouds do not move every pixel a little: the background takes the new exposure at once.
A 3x3 opening removes rain streaks and single-pixel noise; regions smaller than ``min_area`` are
ignored; motion must persist ``confirm_frames`` frames to trigger.

What moves is not learned into the background: still pixels follow the scene with the time
constant ``background_s``, moving ones only with ``absorb_s`` (a minute). So an animal that
stops is still reported for that long instead of fading in seconds, and when it leaves, the
background behind it is the one from before it came: no ghost. An animal close to the lens that
fills the frame is still an animal: only a change that spreads over nearly all of the frame at
once — more than ``recalibrate_fraction`` of the region of interest's tiles (a 4x4 grid), when
the frame before had changed in fewer than half of them — is a lightning flash, the IR-cut
filter switching at dusk or a lamp (an animal walking up to the lens covers the tiles one after
another): then, or when the global gain
jumps by more than ``recalibrate_gain``, the background is relearned from the current frame and
no trigger is given for ``settle_s``.

When the camera opens (or changes resolution) nothing triggers for ``learn_s``: the gate
learns the scene and which of its pixels sway (``flicker_s``, ``flicker_max``) first.

A PIR pulse (``update(..., pir=True)``) lowers the bar for ``pir_boost_s``: threshold and
minimum area times ``pir_factor`` and a single frame confirms, because a warm body is then known
to be near and a small or slow animal should not be missed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from edge.agents.camera.config import MotionConfig
from edge.agents.camera.regions import Box, merge, scale

OPEN = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))
JOIN = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
SWAY = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
TILES = 4  # the grid, per side, that tells a frame-wide change from a large animal
TILE_CHANGED = 0.3  # a tile has changed when this share of its pixels moved
SUDDEN = 0.5  # frame-wide only if the frame before had changed in fewer tiles than this share
GAIN_GRID = (16, 12)  # cells of the median gain: enough to outvote an animal
MIN_QUIET_CELLS = 24  # of the 192: fewer still cells than this and the gain is taken as 1
GAIN_IGNORED = 0.02  # closer to 1 than this: sensor noise, not an exposure change


@dataclass(frozen=True)
class Motion:
    boxes: list[Box]  # moving regions in full-frame pixels, largest first
    changed: float  # fraction of the region of interest that moved
    recalibrated: bool
    confirmed: bool  # moving for confirm_frames frames in a row: a trigger


class MotionGate:
    def __init__(self, config: MotionConfig) -> None:
        self.config = config
        self._bg: np.ndarray | None = None
        self._roi: np.ndarray | None = None
        self._roi_tiles: np.ndarray | None = None
        self._roi_cells: np.ndarray | None = None
        self._tiles_before = 0.0  # share of tiles changed in the frame before
        self._flicker: np.ndarray | None = None
        self._moved: np.ndarray | None = None
        self._t = 0.0
        self._settle_until = 0.0
        self._pir_until = -math.inf
        self._streak = 0

    def _roi_mask(self, shape: tuple[int, int]) -> np.ndarray:
        h, w = shape
        mask = np.zeros(shape, np.uint8)
        if not self.config.roi:
            return mask + 1
        for polygon in self.config.roi:
            pts = np.round(np.array(polygon) * [w - 1, h - 1]).astype(np.int32)
            cv2.fillPoly(mask, [pts], 1)
        return mask

    def _start(self, small: np.ndarray, t: float) -> Motion:
        h, w = small.shape[:2]
        self._roi = self._roi_mask((h, w))
        roi = self._roi.astype(np.float32)
        self._roi_tiles = cv2.resize(roi, (TILES, TILES), interpolation=cv2.INTER_AREA)
        cells = cv2.resize(roi, GAIN_GRID, interpolation=cv2.INTER_AREA)
        self._roi_cells = cells >= min(0.5, float(cells.max()))  # a thin ROI: its best cells
        self._flicker = np.zeros((h, w), np.float32)
        self._moved = np.zeros((h, w), np.uint8)
        self._t = t
        motion = self._recalibrate(small, t)
        self._settle_until = t + self.config.learn_s
        return motion

    def _recalibrate(self, small: np.ndarray, t: float) -> Motion:
        self._bg = small.astype(np.float32)
        self._tiles_before = 0.0
        self._settle_until = t + self.config.settle_s
        self._streak = 0
        return Motion([], 1.0, True, False)

    def update(self, frame: np.ndarray, t: float, pir: bool = False) -> Motion:
        """Feed one BGR frame taken at ``t`` seconds (``pir``: the PIR saw a warm body now)."""
        cfg = self.config
        h, w = frame.shape[:2]
        size = (cfg.width, max(1, round(h * cfg.width / w)))
        small = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
        if self._bg is None or self._bg.shape != small.shape:
            return self._start(small, t)
        if pir:
            self._pir_until = t + cfg.pir_boost_s
        boost = cfg.pir_factor if t < self._pir_until else 1.0
        dt = max(t - self._t, 1e-3)
        self._t = t
        gain = self._gain(small)
        if not 1 / cfg.recalibrate_gain < gain < cfg.recalibrate_gain:
            return self._recalibrate(small, t)
        if gain != 1.0:  # the exposure changed: so did the whole background
            self._bg *= gain
        b, g, r = cv2.split(cv2.absdiff(small, cv2.convertScaleAbs(self._bg)))
        diff = cv2.max(cv2.max(b, g), r)
        moving = cv2.threshold(diff, cfg.threshold * boost, 1, cv2.THRESH_BINARY)[1]
        if self.config.roi:
            moving &= self._roi
        # learning goes by every pixel that differs, before noise and swaying are cleared from
        # what counts as motion: a speck of fur the opening removes must not seep into the
        # background at the fast rate and stay behind as a ghost when the animal has gone
        still = cv2.compare(moving, 0, cv2.CMP_EQ)
        self._flickering(moving, dt)
        moving = cv2.morphologyEx(moving, cv2.MORPH_OPEN, OPEN)
        changed = cv2.countNonZero(moving) / max(1, cv2.countNonZero(self._roi))
        tiles = self._tile_share(moving) if changed > cfg.recalibrate_fraction * TILE_CHANGED else 0
        sudden = tiles > cfg.recalibrate_fraction and self._tiles_before < SUDDEN
        self._tiles_before = tiles
        if sudden:
            return self._recalibrate(small, t)
        # still pixels follow the scene; changed ones (an animal) are learned only very slowly
        cv2.accumulateWeighted(small, self._bg, 1 - math.exp(-dt / cfg.background_s), still)
        cv2.accumulateWeighted(small, self._bg, 1 - math.exp(-dt / cfg.absorb_s), ~still)
        if t < self._settle_until:
            return Motion([], changed, False, False)
        boxes = self._regions(moving, w / small.shape[1], boost) if changed else []
        self._streak = self._streak + 1 if boxes else 0
        confirm = 1 if boost < 1 else cfg.confirm_frames
        return Motion(boxes, changed, False, self._streak >= confirm)

    def _gain(self, small: np.ndarray) -> float:
        """The frame's overall brightness relative to the background: the median ratio over a
        coarse grid of sample pixels, leaving out those where something moved in the frame
        before (a bear filling half the view must not pass for an exposure change)."""
        near = cv2.INTER_NEAREST  # one pixel per cell: the median of 192 is steady enough
        seen = cv2.resize(small, GAIN_GRID, interpolation=near).sum(axis=2, dtype=np.float32)
        known = cv2.resize(self._bg, GAIN_GRID, interpolation=near).sum(axis=2)
        quiet = self._roi_cells & (cv2.resize(self._moved, GAIN_GRID, interpolation=near) == 0)
        if np.count_nonzero(quiet) < MIN_QUIET_CELLS:
            return 1.0  # too little of the view is still to tell
        gain = float(np.median((seen[quiet] + 3.0) / (known[quiet] + 3.0)))
        return 1.0 if abs(gain - 1) < GAIN_IGNORED else gain

    def _flickering(self, moving: np.ndarray, dt: float) -> None:
        """Clear pixels that keep switching between moving and still (swaying leaves, a frond
        before the lens, sensor noise at the threshold): a passing animal switches a pixel twice,
        a branch in the wind several times a second. Counts decay with ``flicker_s``."""
        flips = cv2.bitwise_xor(moving, self._moved)
        np.copyto(self._moved, moving)
        decay = math.exp(-dt / self.config.flicker_s)
        cv2.addWeighted(self._flicker, decay, flips, 1.0, 0.0, self._flicker, cv2.CV_32F)
        swaying = cv2.compare(self._flicker, self.config.flicker_max, cv2.CMP_GT)
        cv2.dilate(swaying, SWAY, swaying)  # a swaying tip reaches new pixels too
        cv2.bitwise_and(moving, 0, moving, mask=swaying)

    def _tile_share(self, moving: np.ndarray) -> float:
        """The share of the region of interest's tiles in which something changed."""
        share = cv2.resize(moving.astype(np.float32), (TILES, TILES), interpolation=cv2.INTER_AREA)
        used = self._roi_tiles > 0.05
        return float((share[used] > TILE_CHANGED * self._roi_tiles[used]).mean())

    def _regions(self, moving: np.ndarray, factor: float, boost: float) -> list[Box]:
        joined = cv2.dilate(moving, JOIN)
        contours, _ = cv2.findContours(joined, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_px = self.config.min_area * boost * moving.size
        boxes = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if cv2.countNonZero(moving[y : y + h, x : x + w]) >= min_px:
                boxes.append((x, y, x + w, y + h))
        gap = max(2, moving.shape[1] // 40)
        return [scale(b, factor) for b in merge(boxes, gap)]
