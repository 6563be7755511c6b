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
RESCALE = 1e4  # the flicker counts' lazy decay factor is folded back in past this


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
        self._roi_px = 1
        self._gain_at = (slice(None), slice(None))  # rows, columns of the gain's samples
        self._scale = 1.0  # the flicker counts are _flicker / _scale
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
        self._roi_px = max(1, cv2.countNonZero(self._roi))
        # the gain's sample pixels: the first of each cell of GAIN_GRID (a strided view: cheaper
        # than resizing, and the same pixels a nearest resize would take on a 160x120 frame)
        sx, sy = max(1, w // GAIN_GRID[0]), max(1, h // GAIN_GRID[1])
        self._gain_at = (slice(0, sy * GAIN_GRID[1], sy), slice(0, sx * GAIN_GRID[0], sx))
        self._roi_cells = self._roi_cells[: len(range(h)[self._gain_at[0]])]
        self._flicker = np.zeros((h, w), np.float32)
        self._scale = 1.0
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
        # the frame-wide change is no pixel switching: the flicker counts must not take it in
        self._moved[:] = 0
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
        moving = self._differs(small, cfg.threshold * boost)
        if self.config.roi:
            moving &= self._roi
        # a frame-wide change (a flash, the IR-cut filter, a scene cut) is told by what differs,
        # opened, before swaying pixels are cleared: in rain many pixels count as swaying, and
        # clearing them first would hide the change and then count it as everyone's flicker
        opened = cv2.morphologyEx(moving, cv2.MORPH_OPEN, OPEN)
        roi_px = self._roi_px
        wide = cv2.countNonZero(opened) / roi_px
        tiles = self._tile_share(opened) if wide > cfg.recalibrate_fraction * TILE_CHANGED else 0
        sudden = tiles > cfg.recalibrate_fraction and self._tiles_before < SUDDEN
        self._tiles_before = tiles
        if sudden:
            return self._recalibrate(small, t)
        self._learn(small, moving, dt)
        # learning above went by every pixel that differs, before noise and swaying are
        # cleared from what counts as motion: a speck of fur the opening removes must not seep
        # into the background at the fast rate and stay behind as a ghost when the animal left
        swaying = self._flickering(moving, dt)
        if swaying is not None:
            cv2.bitwise_and(opened, 0, opened, mask=swaying)
            changed = cv2.countNonZero(opened) / roi_px
        else:
            changed = wide
        if t < self._settle_until:
            return Motion([], changed, False, False)
        boxes = self._regions(opened, w / small.shape[1], boost) if changed else []
        self._streak = self._streak + 1 if boxes else 0
        confirm = 1 if boost < 1 else cfg.confirm_frames
        return Motion(boxes, changed, False, self._streak >= confirm)

    def _differs(self, small: np.ndarray, threshold: float) -> np.ndarray:
        """1 where any colour channel differs from the background by more than ``threshold``.
        Thresholding the three channels and then taking the grey level is the cheap "any": a
        channel at 255 gives a grey level of at least 29, three at 0 give 0."""
        diff = cv2.absdiff(small, cv2.convertScaleAbs(self._bg))
        over = cv2.threshold(diff, threshold, 255, cv2.THRESH_BINARY)[1]
        return cv2.threshold(cv2.cvtColor(over, cv2.COLOR_BGR2GRAY), 0, 1, cv2.THRESH_BINARY)[1]

    def _learn(self, small: np.ndarray, moving: np.ndarray, dt: float) -> None:
        """Still pixels follow the scene with ``background_s``; changed ones (an animal) only
        with ``absorb_s``. Done as one pass over the whole frame at the slow rate, then (only
        when something differs) a masked pass over the still pixels topping them up to the fast
        rate: most frames are all still and cost one unmasked pass."""
        cfg = self.config
        fast = math.exp(-dt / cfg.background_s)  # share of the old background kept
        if not cv2.countNonZero(moving):
            cv2.accumulateWeighted(small, self._bg, 1 - fast)
            return
        slow = math.exp(-dt / cfg.absorb_s)
        cv2.accumulateWeighted(small, self._bg, 1 - slow)
        still = cv2.compare(moving, 0, cv2.CMP_EQ)
        cv2.accumulateWeighted(small, self._bg, 1 - fast / slow, still)

    def _gain(self, small: np.ndarray) -> float:
        """The frame's overall brightness relative to the background: the median ratio over a
        coarse grid of sample pixels, leaving out those where something moved in the frame
        before (a bear filling half the view must not pass for an exposure change)."""
        at = self._gain_at  # one pixel per cell: the median of 192 is steady enough
        seen = small[at].sum(axis=-1, dtype=np.float32)
        known = self._bg[at].sum(axis=-1)
        quiet = self._roi_cells & (self._moved[at] == 0)
        n = int(np.count_nonzero(quiet))
        if n < MIN_QUIET_CELLS:
            return 1.0  # too little of the view is still to tell
        ratios = (seen[quiet] + 3.0) / (known[quiet] + 3.0)
        half = n // 2
        if n % 2:
            gain = float(np.partition(ratios, half)[half])
        else:
            low = np.partition(ratios, (half - 1, half))
            gain = float(low[half - 1] + low[half]) / 2
        return 1.0 if abs(gain - 1) < GAIN_IGNORED else gain

    def _flickering(self, moving: np.ndarray, dt: float) -> np.ndarray | None:
        """Pixels (and their neighbours) that keep switching between moving and still, or None:
        swaying leaves, a frond before the lens, sensor noise at the threshold. A passing animal
        switches a pixel twice, a branch in the wind several times a second. Counts decay with
        ``flicker_s``: kept as ``_flicker / _scale``, so the decay is one multiplication, not a
        pass over the frame."""
        flips = cv2.bitwise_xor(moving, self._moved)
        np.copyto(self._moved, moving)
        self._scale /= math.exp(-dt / self.config.flicker_s)
        if self._scale > RESCALE:  # keep the stored counts within float32's comfort
            self._flicker /= self._scale
            self._scale = 1.0
        if cv2.countNonZero(flips):
            cv2.add(self._flicker, self._scale, self._flicker, mask=flips)
        limit = self.config.flicker_max * self._scale
        swaying = cv2.compare(self._flicker, limit, cv2.CMP_GT)
        if not cv2.countNonZero(swaying):
            return None
        return cv2.dilate(swaying, SWAY)  # a swaying tip reaches new pixels too

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
