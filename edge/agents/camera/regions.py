"""Boxes around moving things, and the square crops the classifier sees.

A box is ``(x0, y0, x1, y1)`` in pixels of the full-resolution frame, x1/y1 exclusive. Crops are
square and padded by a margin because a classifier trained on whole animals needs the whole animal
and a little of its surroundings, not the tight outline of the pixels that moved.
"""

from __future__ import annotations

import cv2
import numpy as np

Box = tuple[int, int, int, int]


def area(box: Box) -> int:
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])


def union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def near(a: Box, b: Box, gap: int) -> bool:
    """Whether two boxes overlap or lie within ``gap`` pixels of each other."""
    return not (a[2] + gap < b[0] or b[2] + gap < a[0] or a[3] + gap < b[1] or b[3] + gap < a[1])


def merge(boxes: list[Box], gap: int) -> list[Box]:
    """Join boxes closer than ``gap``: one animal's legs, body and head often move as separate
    blobs. Largest first."""
    merged = list(boxes)
    changed = True
    while changed:
        changed = False
        for i in range(len(merged)):
            for j in range(i + 1, len(merged)):
                if near(merged[i], merged[j], gap):
                    merged[i] = union(merged[i], merged.pop(j))
                    changed = True
                    break
            if changed:
                break
    return sorted(merged, key=area, reverse=True)


def square(box: Box, margin: float, width: int, height: int) -> Box:
    """The square around ``box`` grown by ``margin`` of its longer side, kept inside the frame
    (shifted rather than cut where it can be)."""
    x0, y0, x1, y1 = box
    side = min(max(x1 - x0, y1 - y0) * (1 + 2 * margin), width, height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(round(min(max(cx - side / 2, 0), width - side)))
    top = int(round(min(max(cy - side / 2, 0), height - side)))
    side = int(round(side))
    return (left, top, left + side, top + side)


def crop(frame: np.ndarray, box: Box, margin: float, size: tuple[int, int]) -> np.ndarray:
    """The square crop around ``box``, resized to ``size`` (width, height)."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = square(box, margin, w, h)
    return cv2.resize(frame[y0:y1, x0:x1], size, interpolation=cv2.INTER_AREA)


def scale(box: Box, factor: float) -> Box:
    return (
        int(box[0] * factor),
        int(box[1] * factor),
        int(np.ceil(box[2] * factor)),
        int(np.ceil(box[3] * factor)),
    )
