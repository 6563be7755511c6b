"""The per-event decision over a burst: one frame can be wrong, several agreeing rarely are.

Each frame of a burst gives its best guess (label, score). A frame votes for its label only when
the label is not an "ignore" label (background) and the score reaches ``threshold`` (or the
result's own ``needs``: a detector's scores live on another scale than a classifier's); a label
needs ``min_frames`` votes. If a harmful label and a harmless one both have enough votes (a person
walking a dog past a boar), the harmful one wins: missing a bear costs more than an extra alert.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from edge.agents.camera.regions import Box


@dataclass(frozen=True)
class FrameResult:
    t: float
    label: str
    score: float
    box: Box | None  # full-frame pixels of the region that gave this label
    scores: dict[str, float]  # every label's score for that region (top ones for a detector)
    needs: float | None = None  # the score this result needs to vote; None: the decision's


@dataclass(frozen=True)
class Decision:
    label: str
    harmful: bool
    confidence: float  # mean score of the agreeing frames
    votes: int
    best: int  # index into the burst of the agreeing frame with the highest score


def decide(
    results: list[FrameResult],
    *,
    harmful: set[str],
    ignore: set[str],
    threshold: float,
    min_frames: int,
) -> Decision | None:
    """The burst's decision, or None when no label has enough confident frames."""
    votes: dict[str, list[int]] = defaultdict(list)
    for i, r in enumerate(results):
        if r.label not in ignore and r.score >= (threshold if r.needs is None else r.needs):
            votes[r.label].append(i)
    candidates = [label for label, frames in votes.items() if len(frames) >= min_frames]
    if not candidates:
        return None

    def strength(label: str) -> tuple[bool, int, float]:
        scores = [results[i].score for i in votes[label]]
        return (label in harmful, len(scores), sum(scores) / len(scores))

    label = max(candidates, key=strength)
    _, count, confidence = strength(label)
    best = max(votes[label], key=lambda i: results[i].score)
    return Decision(label, label in harmful, confidence, count, best)
