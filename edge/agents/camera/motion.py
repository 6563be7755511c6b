"""Motion gating: is something moving in view, and where? Cheap enough for every frame.

Works on a small blurred grey copy of the frame (``width`` pixels wide) against a running-average
background that also tracks each pixel's usual flicker (its variance): a pixel is moving when it
differs from the background by more than ``threshold`` grey levels *and* by more than ``sigma``
of its own standard deviation, so leaves that always shimmer stop counting while a bear walking
past them does. A morphological opening removes rain streaks and single-pixel noise; regions
smaller than ``min_area`` are ignored; motion must persist ``confirm_frames`` frames to trigger.

Whole-frame changes are not motion: a lightning flash, the IR-cut filter switching at dusk, the
exposure hunting, heavy rain. When more than ``recalibrate_fraction`` of the region of interest
changes at once, or its mean brightness jumps by ``recalibrate_brightness``, the background is
relearned from the current frame and no trigger is given for ``settle_s``.
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
FOREGROUND_RATE = 0.1


@dataclass(frozen=True)
class Motion:
    boxes: list[Box]  # moving regions in full-frame pixels, largest first
    changed: float  # fraction of the region of interest that moved
    recalibrated: bool
    confirmed: bool  # moving for confirm_frames frames in a row: a trigger


class MotionGate:
    def __init__(self, config: MotionConfig) -> None:
        self.config = config
        self._mean: np.ndarray | None = None
        self._var: np.ndarray | None = None
        self._roi: np.ndarray | None = None
        self._t = 0.0
        self._settle_until = 0.0
        self._streak = 0

    def _grey(self, frame: np.ndarray) -> np.ndarray:
        h, w = frame.shape[:2]
        size = (self.config.width, max(1, round(h * self.config.width / w)))
        small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
        grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY).astype(np.float32)
        return cv2.GaussianBlur(grey, (5, 5), 0)

    def _roi_mask(self, shape: tuple[int, int]) -> np.ndarray:
        h, w = shape
        if not self.config.roi:
            return np.ones(shape, bool)
        mask = np.zeros(shape, np.uint8)
        for polygon in self.config.roi:
            pts = np.round(np.array(polygon) * [w - 1, h - 1]).astype(np.int32)
            cv2.fillPoly(mask, [pts], 1)
        return mask.astype(bool)

    def _recalibrate(self, grey: np.ndarray, t: float) -> Motion:
        self._mean = grey
        self._settle_until = t + self.config.settle_s
        self._streak = 0
        return Motion([], 1.0, True, False)

    def update(self, frame: np.ndarray, t: float) -> Motion:
        """Feed one BGR frame taken at ``t`` seconds; returns what moved in it."""
        cfg = self.config
        grey = self._grey(frame)
        if self._mean is None or self._mean.shape != grey.shape:
            self._var = np.zeros_like(grey)
            self._roi = self._roi_mask(grey.shape)
            self._t = t
            return self._recalibrate(grey, t)
        alpha = 1.0 - math.exp(-max(t - self._t, 1e-3) / cfg.background_s)
        self._t = t
        roi = self._roi
        if abs(float(grey[roi].mean() - self._mean[roi].mean())) > cfg.recalibrate_brightness:
            return self._recalibrate(grey, t)
        delta = grey - self._mean
        diff = np.abs(delta)
        moving = (diff > cfg.threshold) & (diff * diff > cfg.sigma**2 * self._var) & roi
        moving = cv2.morphologyEx(moving.astype(np.uint8), cv2.MORPH_OPEN, OPEN)
        changed = float(moving[roi].mean())
        if changed > cfg.recalibrate_fraction:
            return self._recalibrate(grey, t)
        # What moves is learned ten times slower: a passing animal leaves no ghost that would
        # keep "moving" after it left, while one that lies down still fades into the background.
        rate = np.where(moving > 0, alpha * FOREGROUND_RATE, alpha).astype(np.float32)
        self._mean += rate * delta
        self._var = (1 - rate) * (self._var + rate * delta * delta)
        if t < self._settle_until:
            return Motion([], changed, False, False)
        boxes = self._regions(moving, frame.shape[1] / grey.shape[1])
        self._streak = self._streak + 1 if boxes else 0
        return Motion(boxes, changed, False, self._streak >= cfg.confirm_frames)

    def _regions(self, moving: np.ndarray, factor: float) -> list[Box]:
        joined = cv2.dilate(moving, JOIN)
        contours, _ = cv2.findContours(joined, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        min_px = self.config.min_area * moving.size
        boxes = []
        for contour in contours:
            x, y, w, h = cv2.boundingRect(contour)
            if int(moving[y : y + h, x : x + w].sum()) >= min_px:
                boxes.append((x, y, x + w, y + h))
        gap = max(2, moving.shape[1] // 40)
        return [scale(b, factor) for b in merge(boxes, gap)]
