"""The PIR through gpiozero on MockFactory pins: the driver, and the agent triggered by it."""

from __future__ import annotations

import time

import pytest

from camera.support import SEEDS, describe
from edge.drivers.pir import Pir, PirError
from sim.devices.camera import PirSim, scene
from sim.scenes.scene import SceneRenderer


def test_pir_reports_motion_and_latches_a_short_pulse(pins):
    pir = Pir(17)
    pin = pins.pin(17)
    settle = 0.3  # gpiozero samples the pin at 10 Hz
    assert not pir.triggered()
    pin.drive_high()
    time.sleep(settle)
    assert pir.triggered() and pir.triggered(), "a held level stays a trigger"
    pin.drive_low()
    time.sleep(settle)
    pir.triggered()  # the edge of the first pulse
    assert not pir.triggered()
    pin.drive_high()  # a pulse shorter than the agent's gap between two polls
    time.sleep(settle)
    pin.drive_low()
    time.sleep(settle)
    assert pir.triggered(), "the rising edge between two polls is not lost"
    assert not pir.triggered()
    assert pir.activations == 2
    pir.close()


def test_a_bad_pin_is_a_clear_error(pins):
    with pytest.raises(PirError, match="GPIO99"):
        Pir("GPIO99")


def test_the_pir_sim_follows_the_warm_body_in_view():
    renderer = SceneRenderer(scene("boar", SEEDS["boar"]))
    sim = PirSim(renderer, pin=None)
    assert not sim.level(0.5), "nothing in view yet"
    inside = (renderer.scene.enter_s + renderer.path.exit_s) / 2
    assert sim.level(inside)
    assert not sim.level(renderer.path.exit_s + sim.hold_s + sim.react_s + 0.2)


def test_pir_triggered_camera_sends_one_alert(pins, video, run_camera):
    """A PIR-only camera, the scene played in real time with the PIR sim driving the pin."""
    boar = scene("boar", SEEDS["boar"], pace=2.5)
    sim = PirSim(SceneRenderer(boar), pins.pin(17))
    run = run_camera(
        video("boar", pace=2.5),
        trigger="pir",
        pir={"pin": 17},
        realtime=True,
        before_run=lambda agent: sim.start(),
    )
    sim.stop()
    assert [e.data["label"] for e in run.events] == ["boar"], describe(run)
    assert run.events[0].data["trigger"] in ("pir", "pir+motion")


def test_pir_and_motion_ignores_motion_without_a_warm_body(pins, video, run_camera):
    """``pir_and_motion``: the bear moves but the PIR stays low (pointed elsewhere): no trigger."""
    run = run_camera(video("bear"), trigger="pir_and_motion", pir={"pin": 17})
    assert run.events == [] and "triggers" not in run.counters, describe(run)


@pytest.mark.parametrize(("night", "triggered"), [(True, True), (False, False)])
def test_auto_trigger_lets_the_pir_alone_start_a_burst_only_at_night(
    pins, video, run_camera, night, triggered
):
    """``auto``: a warm body the camera cannot see moving (PIR high, empty picture) starts a
    burst under the IR lamp at night, not by day (where the PIR only lowers the gating's bar)."""
    run = run_camera(
        video("empty", night=night),
        trigger="auto",
        pir={"pin": 17},
        realtime=True,
        before_run=lambda agent: pins.pin(17).drive_high(),  # after gpiozero set the pin up
    )
    assert ("triggers" in run.counters) is triggered, describe(run)
    assert run.events == [], "nothing there: the burst decides nothing"
