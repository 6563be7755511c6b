"""Motion gating frame by frame on rendered scenes: where it sees motion, and what it ignores."""

from __future__ import annotations

import numpy as np
import pytest

from camera.support import SEEDS
from edge.agents.camera.config import MotionConfig
from edge.agents.camera.motion import MotionGate
from edge.agents.camera.regions import Box, area, merge, square
from sim.devices.camera import scene
from sim.scenes.scene import SceneRenderer


def gate_run(name: str, config: MotionConfig | None = None, **overrides):
    renderer = SceneRenderer(scene(name, SEEDS[name], **overrides))
    gate = MotionGate(config or MotionConfig())
    out = []
    for i, frame in enumerate(renderer.frames()):
        t = i / renderer.scene.fps
        out.append((t, gate.update(frame, t), renderer.subject_box(t)))
    return out, renderer


def overlap(a: Box, b: Box) -> float:
    inter = (max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3]))
    return area(inter) / max(1, area(b))


def test_a_passing_animal_is_boxed_where_it_is():
    frames, _ = gate_run("deer")
    confirmed = [(t, m, truth) for t, m, truth in frames if m.confirmed]
    assert len(confirmed) >= 20, "the deer is followed for most of its crossing"
    for _t, m, truth in confirmed:
        assert truth is not None, "motion confirmed with nothing in view"
        # the box is on the deer (its thin legs and neck may fall below the gating resolution)
        assert overlap(truth, m.boxes[0]) > 0.6, (m.boxes, truth)  # + dilation margin
    assert all(truth is not None or not m.confirmed for _t, m, truth in frames[:12])


def test_motion_outside_the_region_of_interest_is_ignored():
    _, renderer = gate_run("deer")
    top = renderer.path.ground - renderer.path.length * 1.6  # above the deer's head
    roi = [[[0, 0], [1, 0], [1, max(0.01, top / 480 - 0.05)], [0, max(0.01, top / 480 - 0.05)]]]
    frames, _ = gate_run("deer", MotionConfig(roi=roi))
    assert not any(m.confirmed for _t, m, _truth in frames)


def test_lightning_recalibrates_and_never_triggers():
    frames, renderer = gate_run("lightning")
    flashes = renderer.scene.lightning
    recal = [t for t, m, _ in frames if m.recalibrated and t > 0]
    assert recal and all(min(abs(t - f) for f in flashes) < 0.25 for t in recal), recal
    assert not any(m.confirmed for _t, m, _truth in frames)


def test_ir_switch_recalibrates_instead_of_triggering():
    frames, renderer = gate_run("ir-switch")
    recal = [t for t, m, _ in frames if m.recalibrated and t > 0]
    assert recal and abs(recal[0] - renderer.scene.ir_switch_at) < 0.15, recal
    assert not any(m.confirmed for _t, m, _truth in frames)


def test_heavy_rain_and_wind_do_not_trigger():
    for name in ("rain", "wind"):
        frames, _ = gate_run(name)
        assert not any(m.confirmed for _t, m, _truth in frames), name


def test_a_camera_changing_resolution_recalibrates():
    gate = MotionGate(MotionConfig())
    gate.update(np.zeros((480, 640, 3), np.uint8), 0.0)
    motion = gate.update(np.zeros((720, 1280, 3), np.uint8), 0.1)
    assert motion.recalibrated and motion.boxes == []


def test_regions_merge_and_square_crops_stay_in_the_frame():
    assert merge([(0, 0, 10, 10), (12, 0, 20, 10), (100, 100, 110, 110)], gap=3) == [
        (0, 0, 20, 10),
        (100, 100, 110, 110),
    ]
    x0, y0, x1, y1 = square((600, 400, 640, 480), margin=0.5, width=640, height=480)
    assert x1 - x0 == y1 - y0 == 160 and x1 <= 640 and y1 <= 480 and x0 >= 0


def crossing(name: str, seed: int, **overrides):
    """(caught while in view, ghost frames more than 1 s after it left) for one scene."""
    renderer = SceneRenderer(scene(name, seed, **overrides))
    gate = MotionGate(MotionConfig())
    caught, ghosts = False, 0
    for i, frame in enumerate(renderer.frames()):
        t = i / renderer.scene.fps
        moving = gate.update(frame, t).confirmed
        if renderer.subject_box(t) is not None:
            caught |= moving
        elif t > renderer.path.exit_s + 1.0:
            ghosts += moving
    return caught, ghosts


@pytest.mark.parametrize("seed", [9201, 9202, 9203, 9204, 9205, 9206])
def test_a_macaque_crossing_is_caught(seed):
    assert crossing("macaque", seed) == (True, 0)
    assert crossing("macaque", seed + 50, scale=0.6)[0], "a far macaque too"


@pytest.mark.parametrize("seed", [9211, 9212, 9213, 9214, 9215, 9216])
def test_a_bear_close_to_the_lens_is_caught_and_leaves_no_ghost(seed):
    assert crossing("bear", seed, scale=2.2) == (True, 0)


@pytest.mark.parametrize("seed", [9221, 9222, 9223])
def test_deer_by_day_and_night_are_caught(seed):
    assert crossing("deer", seed) == (True, 0)
    assert crossing("deer", seed, night=True) == (True, 0)


def test_an_animal_that_stops_is_still_seen_ten_seconds_later():
    renderer = SceneRenderer(scene("bear", 9231))
    gate = MotionGate(MotionConfig())
    t_mid = (renderer.scene.enter_s + renderer.path.exit_s) / 2
    still = renderer.frame(int(t_mid * renderer.scene.fps))
    for i in range(int(t_mid * 10)):
        gate.update(renderer.frame(i), i / 10)
    last = None
    for k in range(100):  # the bear stands where it is for 10 s
        last = gate.update(still, t_mid + k / 10)
    assert last.boxes and last.confirmed, "the still bear faded into the background"


def test_exposure_steps_and_night_noise_do_not_trigger():
    steps = ((2.0, 1.12), (3.5, 0.9), (5.0, 1.05))
    for overrides in ({"exposure": steps}, {"night": True}):
        frames, _ = gate_run("empty", duration_s=7.0, **overrides)
        assert not any(m.confirmed for _t, m, _truth in frames), overrides


def test_a_pir_pulse_lowers_the_bar():
    gate = MotionGate(MotionConfig(learn_s=0))
    base = np.full((120, 160, 3), 100, np.uint8)
    faint = base.copy()
    faint[40:80, 60:100] = 111  # below the threshold of 14, above 0.6 x 14
    gate.update(base, 0.0)
    gate.update(base, 1.1)
    assert not gate.update(faint, 1.2).boxes
    assert gate.update(faint, 1.3, pir=True).confirmed, "one frame confirms after a PIR pulse"
