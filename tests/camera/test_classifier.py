"""The shipped model through the agent's loader, and everything that is not a usable model."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from camera.support import FLOAT_MODEL, MODEL
from camera.support import LABELS as LABELS_PATH
from edge.agents.camera import classifier
from edge.agents.camera.classifier import Classifier, Detector, ModelError, load_model
from sim.scenes.crops import LABELS, CropSampler

FRESH_SEED = 4  # the training script renders its splits from seeds 1-3


@pytest.fixture(scope="module")
def fresh_crops():
    sampler = CropSampler(FRESH_SEED, size=64, backdrops=6)
    rng = np.random.default_rng(FRESH_SEED)
    return [(sampler.sample(label, rng)[0], label) for label in LABELS for _ in range(12)]


@pytest.mark.parametrize("path", [MODEL, FLOAT_MODEL], ids=["uint8", "float32"])
def test_shipped_model_classifies_unseen_synthetic_crops(path, fresh_crops):
    model = load_model(path, LABELS_PATH, threads=1)
    assert isinstance(model, Classifier) and model.labels == list(LABELS)
    assert model.input_size == (64, 64)
    assert model.input_type == ("uint8" if path == MODEL else "float32")
    right = sum(model.labels[int(model.classify(img).argmax())] == lab for img, lab in fresh_crops)
    assert right / len(fresh_crops) >= 0.85
    scores = model.classify(fresh_crops[0][0])
    assert scores.shape == (8,) and abs(float(scores.sum()) - 1) < 0.02


def test_shipped_model_is_small():
    assert MODEL.stat().st_size < 256 * 1024


def test_a_file_that_is_not_a_model_is_refused_by_name(tmp_path):
    bogus = tmp_path / "bear.tflite"
    bogus.write_bytes(b"\x89PNG definitely not a flatbuffer" * 10)
    with pytest.raises(ModelError, match=r"bear\.tflite: not a usable TFLite model"):
        load_model(bogus, LABELS_PATH)
    with pytest.raises(ModelError, match="no such model file"):
        load_model(tmp_path / "missing.tflite", LABELS_PATH)


def test_labels_that_do_not_match_the_model_are_refused(tmp_path):
    short = tmp_path / "seven.labels"
    short.write_text("\n".join(LABELS[:7]))
    with pytest.raises(ModelError, match="7 labels, but .* classifies into 8 classes"):
        load_model(MODEL, short)
    empty = tmp_path / "empty.labels"
    empty.write_text("\n\n")
    with pytest.raises(ModelError, match="no labels"):
        load_model(MODEL, empty)
    twice = tmp_path / "twice.labels"
    twice.write_text("\n".join([*LABELS[:7], "bear"]))
    with pytest.raises(ModelError, match="duplicate labels"):
        load_model(MODEL, twice)


def test_threads_reach_the_interpreter(monkeypatch):
    seen = {}
    real, _ = classifier.interpreter_class()

    def spy(**kwargs):
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(classifier, "interpreter_class", lambda: (spy, "spy"))
    load_model(MODEL, LABELS_PATH, threads=3)
    assert seen["num_threads"] == 3


def test_tflite_runtime_is_used_when_litert_is_missing(monkeypatch):
    from ai_edge_litert.interpreter import Interpreter

    legacy = types.ModuleType("tflite_runtime.interpreter")
    legacy.Interpreter = Interpreter  # same API; stands in for tflite-runtime 2.14
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", types.ModuleType("tflite_runtime"))
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", legacy)
    assert classifier.interpreter_class()[1] == "tflite_runtime"
    assert isinstance(load_model(MODEL, LABELS_PATH), Classifier)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    with pytest.raises(ModelError, match=r"machimori\[camera\]"):
        classifier.interpreter_class()


class FakeSsd:
    """An interpreter with the TFLite SSD post-processing output layout (boxes, classes, scores,
    count), standing in for a downloaded detector, which cannot be fetched here."""

    def __init__(self, detections):
        self.detections = detections
        out = [("boxes", (1, 4, 4)), ("classes", (1, 4)), ("scores", (1, 4)), ("count", (1,))]
        self.outputs = [
            {
                "name": f"TFLite_Detection_PostProcess:{i}",
                "index": 10 + i,
                "shape": np.array(s),
                "dtype": np.float32,
                "quantization": (0.0, 0),
            }
            for i, (_, s) in enumerate(out)
        ]

    def get_input_details(self):
        return [
            {
                "index": 0,
                "shape": np.array([1, 300, 300, 3]),
                "dtype": np.uint8,
                "quantization": (0.0078125, 128),
            }
        ]

    def get_output_details(self):
        return self.outputs

    def set_tensor(self, index, value):
        assert value.shape == (1, 300, 300, 3) and value.dtype == np.uint8

    def invoke(self):
        pass

    def get_tensor(self, index):
        boxes = np.zeros((1, 4, 4), np.float32)
        classes, scores = np.zeros((1, 4), np.float32), np.zeros((1, 4), np.float32)
        for i, (box, cls, score) in enumerate(self.detections):
            boxes[0, i], classes[0, i], scores[0, i] = box, cls, score
        count = np.array([len(self.detections)], np.float32)
        return [boxes, classes, scores, count][index - 10]


def test_ssd_style_detector_outputs_become_labelled_boxes(tmp_path):
    detector = Detector(
        FakeSsd([((0.5, 0.25, 1.0, 0.75), 0, 0.9), ((0, 0, 0.1, 0.1), 5, 0.05)]),
        MODEL,
        list(LABELS),
        LABELS_PATH,
        127.5,
        127.5,
    )
    found = detector.detect(np.zeros((480, 640, 3), np.uint8), min_score=0.1)
    assert [(d.label, d.box) for d in found] == [("bear", (160, 240, 480, 480))]


def test_the_agent_runs_a_detector_on_whole_frames(video, run_camera):
    """The agent with an SSD-layout model (the fake above, which always sees a bear at the same
    place): the detector's label and box reach the event."""
    detector = Detector(
        FakeSsd([((0.25, 0.5, 0.75, 1.0), 0, 0.9)]), MODEL, list(LABELS), LABELS_PATH, 127.5, 127.5
    )
    run = run_camera(video("boar"), before_run=lambda agent: setattr(agent, "model", detector))
    assert [(e.data["label"], e.data["model"]["kind"]) for e in run.events] == [
        ("bear", "detector")
    ]
    assert run.events[0].data["boxes"][0] == [320, 120, 640, 360]
