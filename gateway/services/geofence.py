"""School fences that do not flap: accuracy gating, debounce and segment crossing.

A school is a circle or a polygon (``Fence``). Positions are projected onto a local plane in
metres around the fence (equirectangular: the error over a school's few hundred metres is far
below a GNSS fix's), so "how far inside or outside" is a signed distance ``d`` (negative inside).

``FenceState.update`` turns a child's fixes into arrival and departure *decisions*:

* **accuracy gating** — a fix whose uncertainty circle straddles the fence (``|d| <= k * acc``,
  ``acc`` being a 1-sigma radius as receivers and phones report it and ``k`` = ``gate_sigmas``,
  2 by default: 95 %) decides nothing: a child standing at the gate with 30 m accuracy is neither
  in nor out;
* **debounce** — the state changes only after ``confirm_fixes`` clear fixes in a row on the new
  side spanning at least ``dwell_s``; a fix on the old side, or one that decides nothing, breaks
  the run;
* **segment crossing** — two clear fixes either side of the school (the segment between them
  passes through it, deeper than both accuracies) mean the child was inside in between, even if
  no fix was: that is an arrival, dated halfway.

Where the state was unknown (a tracker switched on), becoming *outside* is silent and becoming
*inside* is an arrival. Pure logic; the school service keeps the state per child and school.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

M_PER_DEG = 111_195.0
Side = Literal["inside", "outside"]


@dataclass(frozen=True)
class Fence:
    """A circle (``radius_m`` around ``center``) or a polygon (``polygon``, lat/lon corners)."""

    center: tuple[float, float]
    radius_m: float | None = None
    polygon: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if (self.radius_m is None) == (not self.polygon):
            raise ValueError("a fence is a circle (radius_m) or a polygon, not both or neither")
        if self.radius_m is not None and self.radius_m <= 0:
            raise ValueError("radius_m must be > 0")
        if self.polygon and len(self.polygon) < 3:
            raise ValueError("a polygon needs at least 3 corners")

    @classmethod
    def circle(cls, lat: float, lon: float, radius_m: float) -> Fence:
        return cls((lat, lon), radius_m=radius_m)

    @classmethod
    def of_polygon(cls, corners: list[tuple[float, float]]) -> Fence:
        lat = sum(c[0] for c in corners) / len(corners)
        lon = sum(c[1] for c in corners) / len(corners)
        return cls((lat, lon), polygon=tuple(corners))

    def xy(self, lat: float, lon: float) -> tuple[float, float]:
        """Metres east and north of the fence's centre."""
        c_lat, c_lon = self.center
        return (lon - c_lon) * M_PER_DEG * math.cos(math.radians(c_lat)), (lat - c_lat) * M_PER_DEG

    def signed_distance(self, lat: float, lon: float) -> float:
        """Metres from the fence: negative inside, positive outside."""
        x, y = self.xy(lat, lon)
        if self.radius_m is not None:
            return math.hypot(x, y) - self.radius_m
        corners = [self.xy(*c) for c in self.polygon]
        edges = list(zip(corners, [*corners[1:], corners[0]], strict=True))
        nearest = min(_point_segment(x, y, a, b) for a, b in edges)
        return -nearest if _inside_polygon(x, y, corners) else nearest

    def depth_along(self, a: tuple[float, float], b: tuple[float, float]) -> float:
        """How deep (metres) the straight walk from ``a`` to ``b`` reaches inside the fence:
        the most negative signed distance along it, sampled finely enough for a school."""
        (ax, ay), (bx, by) = self.xy(*a), self.xy(*b)
        steps = max(2, min(200, int(math.hypot(bx - ax, by - ay) / 5)))
        best = math.inf
        for i in range(steps + 1):
            f = i / steps
            lat = a[0] + (b[0] - a[0]) * f
            lon = a[1] + (b[1] - a[1]) * f
            best = min(best, self.signed_distance(lat, lon))
        return best


@dataclass
class Decision:
    kind: Literal["arrival", "departure"]
    ts_ms: int


@dataclass
class FenceState:
    """One child's standing with one fence; ``update`` it with each fix in time order."""

    side: Side | None = None
    since_ms: int | None = None
    candidate: Side | None = None
    candidate_since_ms: int = 0
    candidate_fixes: int = 0
    last_clear: tuple[float, float, float, int, Side] | None = None  # lat, lon, acc, ts, side

    def update(
        self,
        fence: Fence,
        lat: float,
        lon: float,
        acc_m: float,
        ts_ms: int,
        *,
        confirm_fixes: int = 2,
        dwell_s: float = 60.0,
        gate_sigmas: float = 2.0,
    ) -> Decision | None:
        """The arrival or departure this fix confirms, if any."""
        d = fence.signed_distance(lat, lon)
        acc_m *= gate_sigmas
        if abs(d) <= acc_m:
            self._clear_candidate()
            return None  # straddles the fence: no evidence either way
        side: Side = "inside" if d < 0 else "outside"
        previous, self.last_clear = self.last_clear, (lat, lon, acc_m, ts_ms, side)
        if (
            side == "outside"
            and previous is not None
            and previous[4] == "outside"
            and self.side != "inside"
            and fence.depth_along(previous[:2], (lat, lon)) < -max(previous[2], acc_m)
        ):
            # walked through the school between two fixes outside it
            self._clear_candidate()
            self.side, self.since_ms = "outside", ts_ms
            return Decision("arrival", (previous[3] + ts_ms) // 2)
        if side == self.side:
            self._clear_candidate()
            return None
        if self.candidate != side:
            self.candidate, self.candidate_since_ms, self.candidate_fixes = side, ts_ms, 0
        self.candidate_fixes += 1
        dwelt = (ts_ms - self.candidate_since_ms) / 1000 >= dwell_s
        if self.candidate_fixes < confirm_fixes or not dwelt:
            return None
        was, self.side, self.since_ms = self.side, side, self.candidate_since_ms
        self._clear_candidate()
        if side == "inside":
            return Decision("arrival", self.since_ms)
        return Decision("departure", self.since_ms) if was == "inside" else None

    def _clear_candidate(self) -> None:
        self.candidate, self.candidate_fixes = None, 0


def _point_segment(x: float, y: float, a: tuple[float, float], b: tuple[float, float]) -> float:
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = 0.0 if length2 == 0 else max(0.0, min(1.0, ((x - ax) * dx + (y - ay) * dy) / length2))
    return math.hypot(x - (ax + t * dx), y - (ay + t * dy))


def _inside_polygon(x: float, y: float, corners: list[tuple[float, float]]) -> bool:
    """Even-odd rule (a ray to the east crosses the edges an odd number of times)."""
    inside = False
    for (ax, ay), (bx, by) in zip(corners, [*corners[1:], corners[0]], strict=True):
        if (ay > y) != (by > y) and x < ax + (y - ay) * (bx - ax) / (by - ay):
            inside = not inside
    return inside
