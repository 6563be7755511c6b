"""The COCO detector (models/coco-nanodet-416.tflite, converted by models/build_detector.py) on
real photographs of the evaluation set (models/eval/, from Debian's gcompris-qt-data and Tux
Paint's cut-out stamps)."""

from __future__ import annotations

import csv

import cv2
import pytest

from camera.support import ROOT
from edge.agents.camera.classifier import DenseDetector, load_model
from edge.agents.camera.config import COCO_GROUPS, DetectorConfig

MODELS = ROOT / "models"
EVAL = MODELS / "eval"


@pytest.fixture(scope="module")
def detector():
    model = load_model(MODELS / "coco-nanodet-416.tflite", MODELS / "coco-nanodet-416.labels")
    assert isinstance(model, DenseDetector) and model.input_size == (416, 416)
    return model


def photo(name: str):
    return cv2.cvtColor(cv2.imread(str(EVAL / "photos" / name)), cv2.COLOR_BGR2RGB)


def test_the_bear_in_a_real_photograph_is_found_where_it_is(detector):
    image = photo("explore_world_animals-polar_bear.jpg")
    found = detector.detect(image, 0.35)
    assert found and found[0].label == "bear", found
    x0, y0, x1, y1 = found[0].box
    h, w = image.shape[:2]
    assert (x1 - x0) * (y1 - y0) > 0.05 * w * h, "a box around the animal, not a speck"


def test_people_in_real_photographs_are_found(detector):
    rows = [r for r in csv.DictReader((EVAL / "photos.csv").open()) if r["coco"] == "person"]
    found = [
        any(d.label == "person" for d in detector.detect(photo(r["file"]), 0.35)) for r in rows
    ]
    assert len(rows) >= 5 and sum(found) >= len(rows) - 2, list(zip(rows, found, strict=True))


def test_every_real_photo_of_a_harmful_species_is_passed_on_by_the_detector(detector):
    """Bears, wild boar and pigs, deer, goat-antelopes, monkeys and apes (23 photos): at the
    agent's default score the detector finds something it maps to a city label in each, so the
    camera never drops a real animal before the species step (which labels them, badly:
    models/COCO_DETECTOR.md)."""
    mapped = {name for names in COCO_GROUPS.values() for name in names}
    rows = list(csv.DictReader((EVAL / "photos.csv").open()))
    harmful = [r for r in rows if r["city"] not in ("", "person")]
    assert len(harmful) >= 20
    missed = []
    for row in harmful:
        found = detector.detect(photo(row["file"]), DetectorConfig.min_score)
        if not found or found[0].label not in mapped:
            missed.append((row["file"], found[:1]))
    assert not missed, missed


def test_every_evaluation_photo_has_a_free_licence_and_a_source():
    rows = list(csv.DictReader((EVAL / "photos.csv").open()))
    assert len(rows) >= 40
    for row in rows:
        assert (EVAL / "photos" / row["file"]).is_file(), row["file"]
        assert row["licence"] and row["source"].startswith("http") and row["package"], row


def test_the_species_head_reads_the_detectors_features(detector):
    from edge.agents.camera.classifier import load_head

    head = load_head(MODELS / "species-head.tflite", MODELS / "species-head.labels")
    assert head.feature_size == detector.feature_size == 128
    image = photo("explore_world_animals-polar_bear.jpg")
    detector.detect(image, 0.35)
    scores = head.classify(detector.features((0, 0, 200, 200), image.shape[:2]))
    assert scores.shape == (len(head.labels),) and abs(float(scores.sum()) - 1) < 1e-3


def test_a_head_that_does_not_fit_is_refused_naming_the_file(tmp_path):
    from edge.agents.camera.config import DetectorConfig
    from edge.runtime.config import ConfigError, build

    section = {
        "path": str(MODELS / "coco-nanodet-416.tflite"),
        "labels": str(MODELS / "coco-nanodet-416.labels"),
        "head": str(MODELS / "wildlife-v1.tflite"),
        "head_labels": str(MODELS / "wildlife-v1.labels"),
    }
    with pytest.raises(ConfigError, match="wildlife-v1.tflite: not a species head"):
        build(DetectorConfig, section, file="camera.yaml", key="camera.detector")
    with pytest.raises(ConfigError, match="head and head_labels go together"):
        build(
            DetectorConfig,
            {k: v for k, v in section.items() if k != "head_labels"},
            file="camera.yaml",
            key="camera.detector",
        )
