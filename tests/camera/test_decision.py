"""The per-event decision over a burst of frame results."""

from __future__ import annotations

from edge.agents.camera.decision import FrameResult, decide

RULES = {"harmful": {"bear", "boar"}, "ignore": {"background"}, "threshold": 0.6, "min_frames": 3}


def burst(*guesses: tuple[str, float]) -> list[FrameResult]:
    return [
        FrameResult(i * 0.2, label, score, None, {}) for i, (label, score) in enumerate(guesses)
    ]


def test_agreeing_confident_frames_decide():
    d = decide(burst(("bear", 0.9), ("bear", 0.7), ("background", 0.9), ("bear", 0.8)), **RULES)
    assert (d.label, d.harmful, d.votes, d.best) == ("bear", True, 3, 0)
    assert abs(d.confidence - 0.8) < 1e-9


def test_too_few_or_too_unsure_frames_decide_nothing():
    assert decide(burst(("bear", 0.9), ("bear", 0.9), ("boar", 0.9)), **RULES) is None
    assert decide(burst(("bear", 0.59), ("bear", 0.9), ("bear", 0.9)), **RULES) is None
    assert decide(burst(*[("background", 0.99)] * 5), **RULES) is None


def test_a_harmful_label_outranks_a_harmless_one_with_more_votes():
    d = decide(burst(*[("person", 0.95)] * 4, *[("boar", 0.7)] * 3), **RULES)
    assert (d.label, d.harmful) == ("boar", True)
    d = decide(burst(*[("person", 0.95)] * 4, ("boar", 0.7)), **RULES)
    assert (d.label, d.harmful) == ("person", False)
