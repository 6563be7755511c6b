"""The brief's acceptance checks, on the simulator: animals passing, people, vehicles, wind, rain,
lightning and the IR switch, each a rendered video the agent opens like any camera source, with
the decisions read back from MQTT as the city receives them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from camera.support import describe
from sim.devices.camera import scene, write_video

HARMFUL = ["bear", "boar", "macaque", "deer", "serow", "bear-night", "boar-night", "deer-rain"]
IMAGE_CAP = 30_000


@pytest.mark.parametrize("name", HARMFUL)
def test_each_harmful_animal_passing_gives_exactly_one_alert_with_its_picture(
    name, video, run_camera
):
    run = run_camera(video(name), image={"max_bytes": IMAGE_CAP})
    assert len(run.events) == 1, describe(run)
    event = run.events[0].data
    assert (event["label"], event["harmful"]) == (name.split("-")[0], True), describe(run)
    assert event["confidence"] >= 0.6
    assert event["votes"] >= 3 and len(event["scores"]) == 5
    assert event["model"] == {
        "name": "wildlife-v1",
        "version": "test",
        "kind": "classifier",
        "detector": None,
        "head": None,
    }
    assert event["night_ir"] is name.endswith("-night")
    assert all(box is None or len(box) == 4 for box in event["boxes"])
    jpeg = run.images[event["event_id"]]
    assert len(jpeg) == event["image"]["bytes"] <= IMAGE_CAP
    picture = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape[1::-1] == (event["image"]["width"], event["image"]["height"])
    kept = sorted(run.store.glob(f"{event['event_id']}-*.jpg"))
    assert len(kept) == 5, "the full-resolution burst is kept on the device"
    assert cv2.imread(str(kept[0])).shape == (480, 640, 3)


@pytest.mark.parametrize("name", ["person", "vehicle"])
def test_people_and_vehicles_raise_no_harmful_animal_alert(name, video, run_camera):
    run = run_camera(video(name))  # publish: all, so a harmless decision is visible too
    assert not [e for e in run.events if e.data["harmful"]], describe(run)
    assert [e.data["label"] for e in run.events] in ([], [name]), describe(run)


def test_by_default_a_person_sends_nothing_over_lte(video, run_camera):
    run = run_camera(video("person"), publish="harmful")
    assert run.events == [] and run.images == {}, describe(run)
    assert run.counters.get("not_published", 0) + run.counters.get("bursts_undecided", 0) >= 1


@pytest.mark.parametrize("name", ["wind", "rain", "lightning", "ir-switch"])
def test_wind_rain_lightning_and_ir_switching_send_nothing(name, video, run_camera):
    run = run_camera(video(name))
    assert run.events == [] and run.images == {}, describe(run)
    if name in ("lightning", "ir-switch"):  # recalibrated instead of triggering
        assert run.counters["recalibrations"] >= 2, describe(run)


def test_one_bear_lingering_is_one_alert_until_the_cooldown_ends(video, run_camera):
    source = video("bear", "bear", "bear", tail_s=4.0)  # three passages, ~6 s apart
    quiet = run_camera(source, cooldown_s=300)
    assert [e.data["label"] for e in quiet.events] == ["bear"], describe(quiet)
    assert quiet.counters["suppressed_cooldown"] >= 2, describe(quiet)
    busy = run_camera(source, cooldown_s=0)
    assert [e.data["label"] for e in busy.events] == ["bear"] * 3, describe(busy)


DETECTOR = {
    "path": "models/coco-nanodet-416.tflite",
    "labels": "models/coco-nanodet-416.labels",
}


@pytest.mark.parametrize("name", ["bear", "macaque"])
def test_with_the_coco_detector_the_decisions_stay_right(name, video, run_camera):
    run = run_camera(video(name), detector=DETECTOR)
    assert [e.data["label"] for e in run.events] == [name], describe(run)
    assert run.events[0].data["model"]["detector"] == "coco-nanodet-416.tflite"


def test_with_the_coco_detector_a_person_raises_no_alert(video, run_camera):
    """The detector, trained on real photographs, does not take a flat-shaded rendered figure
    for a person; the species step may not rename it into a harmless label, and must not into
    a harmful one: whatever is decided, it is not an alert."""
    run = run_camera(video("person"), detector=DETECTOR)
    assert not any(e.data["harmful"] for e in run.events), describe(run)


def test_with_the_detector_and_the_species_head_a_harmful_animal_still_alerts(video, run_camera):
    """The head names rendered species right on about 0.84 of crops (SPECIES_HEAD.md), so a
    boar is sometimes called a serow; what must hold is one alert per passing animal."""
    head = DETECTOR | {
        "head": "models/species-head.tflite",
        "head_labels": "models/species-head.labels",
    }
    for name in ("bear", "boar"):
        run = run_camera(video(name), detector=head)
        assert len(run.events) == 1 and run.events[0].data["harmful"], describe(run)
        assert run.events[0].data["model"]["head"] == "species-head.tflite"


@pytest.mark.parametrize("seed", [701, 1101, 1301, 1501])
def test_a_bear_at_dusk_in_rain_after_a_rain_shower_is_one_alert(seed, tmp_path, run_camera):
    """The HIL film of scenarios/camera-bear-dusk-rain.yaml, played as fast as it decodes and
    without a PIR: rain for 6 s (its streaks make many pixels flicker), then the view of the
    bear's scene, the IR-cut filter dropping 0.5 s later, and the bear. Both frame-wide changes
    must recalibrate the gate, not mark the frame as swaying; the motion alone must find the
    bear. (Seed 701 is the HIL's seed 7, which raised nothing before this was fixed.)"""
    film = write_video(
        [
            scene("empty", seed - 1, duration_s=4.0),
            scene("rain", seed, duration_s=6.0),
            scene("bear-rain", seed + 1, ir_switch_at=0.5, enter_s=2.0),
        ],
        tmp_path / "dusk.avi",
    )
    run = run_camera(film)
    assert [(e.data["label"], e.data["harmful"]) for e in run.events] == [("bear", True)], describe(
        run
    )
    assert run.events[0].data["night_ir"] is True
    assert run.events[0].data["trigger"] == "motion"
    assert run.counters["recalibrations"] >= 3  # opening, the rain's view, the bear's, IR
