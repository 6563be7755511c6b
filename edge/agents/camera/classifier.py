"""On-device inference with a ``.tflite`` model: an image classifier run on crops, or an SSD-style
detector run on the whole frame.

The runtime is LiteRT (``ai_edge_litert``, works with numpy 2) or the older ``tflite_runtime``
(numpy < 2), whichever is installed; both expose the same ``Interpreter``. Any model with one
image input (uint8, int8 or float32; 1 or 3 channels, RGB) fits:

* a classifier: one output of shape ``[1, n_labels]`` (probabilities or logits, quantised or not);
* a detector in the TFLite SSD post-processing layout: outputs boxes ``[1, N, 4]`` (ymin, xmin,
  ymax, xmax, 0..1), classes ``[1, N]``, scores ``[1, N]`` and a count ``[1]``;
* a dense detector (an anchor-free one such as NanoDet, as ``models/build_detector.py`` makes
  it): boxes ``[1, N, 4]`` as above and per-class scores ``[1, N, n_labels]`` for all N
  candidates; the best class of each candidate over ``min_score`` goes through non-maximum
  suppression here (``NMS_IOU``).

The labels file has one label per line in the model's class order. A model file that is not a
model, a label count that does not match, or an input this code cannot feed raises ``ModelError``
naming the file, at start-up, not at the first bear.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from edge.agents.camera.regions import Box

INPUT_TYPES = (np.uint8, np.int8, np.float32)
NMS_IOU = 0.5  # a dense detector's overlapping candidates of one class: the best one stays
MAX_DETECTIONS = 20


class ModelError(ValueError):
    """A model, labels file or runtime that cannot be used; the message names the file."""


def interpreter_class() -> tuple[type, str]:
    """The installed TFLite interpreter and the runtime's name."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai_edge_litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter, "tflite_runtime"
    except ImportError:
        raise ModelError(
            "no TFLite runtime installed: pip install 'machimori[camera]' (ai-edge-litert) "
            "or 'machimori[camera-legacy]' (tflite-runtime, numpy<2)"
        ) from None


def read_labels(path: Path) -> list[str]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: cannot read labels ({exc})") from exc
    labels = [line.strip() for line in lines if line.strip()]
    if not labels:
        raise ModelError(f"{path}: no labels (expected one label per line)")
    dupes = sorted({x for x in labels if labels.count(x) > 1})
    if dupes:
        raise ModelError(f"{path}: duplicate labels {dupes}")
    return labels


@dataclass(frozen=True)
class Detection:
    label: str
    score: float
    box: Box  # pixels of the image passed to detect()


class Model:
    """The interpreter, its input checks and input conversion, shared by both model kinds."""

    def __init__(
        self,
        interpreter: Any,
        path: Path,
        labels: list[str],
        labels_path: Path,
        mean: float,
        std: float,
    ) -> None:
        self.path, self.labels, self.labels_path = path, labels, labels_path
        self.mean, self.std = mean, std
        self._interp = interpreter
        inputs = interpreter.get_input_details()
        if len(inputs) != 1:
            raise ModelError(f"{path}: expected one image input, the model has {len(inputs)}")
        self._input = inputs[0]
        shape = tuple(self._input["shape"])
        if len(shape) != 4 or shape[0] != 1 or shape[3] not in (1, 3):
            raise ModelError(f"{path}: expected input shape [1, H, W, 1 or 3], got {list(shape)}")
        if self._input["dtype"] not in INPUT_TYPES:
            raise ModelError(f"{path}: unsupported input type {self._input['dtype'].__name__}")
        self.height, self.width, self.channels = int(shape[1]), int(shape[2]), int(shape[3])
        self.input_type = np.dtype(self._input["dtype"]).name
        self._bind_outputs(interpreter.get_output_details())

    def _bind_outputs(self, outputs: list[dict[str, Any]]) -> None:
        """Check the model's outputs fit this kind of model, and remember them."""
        raise NotImplementedError

    @property
    def input_size(self) -> tuple[int, int]:
        return (self.width, self.height)

    def _feed(self, rgb: np.ndarray) -> None:
        """Resize, normalise ``(x - mean) / std``, quantise as the model asks, and invoke."""
        if rgb.shape[:2] != (self.height, self.width):
            rgb = cv2.resize(rgb, self.input_size, interpolation=cv2.INTER_AREA)
        if self.channels == 1:
            rgb = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None]
        real = (rgb.astype(np.float32) - self.mean) / self.std
        dtype = self._input["dtype"]
        if dtype != np.float32:
            scale, zero = self._input["quantization"]
            info = np.iinfo(dtype)
            real = np.clip(np.round(real / scale + zero), info.min, info.max)
        self._interp.set_tensor(self._input["index"], real.astype(dtype)[None])
        self._interp.invoke()

    def _output(self, detail: dict[str, Any]) -> np.ndarray:
        raw = self._interp.get_tensor(detail["index"])
        scale, zero = detail["quantization"]
        if detail["dtype"] != np.float32 and scale:
            return (raw.astype(np.float32) - zero) * scale
        return raw.astype(np.float32)


class Classifier(Model):
    kind = "classifier"

    def _bind_outputs(self, outputs: list[dict[str, Any]]) -> None:
        (self._out,) = outputs
        n = int(np.prod(self._out["shape"]))
        if n != len(self.labels):
            raise ModelError(
                f"{self.labels_path}: {len(self.labels)} labels, "
                f"but {self.path} classifies into {n} classes"
            )

    def classify(self, rgb: np.ndarray) -> np.ndarray:
        """Scores per label (summing to 1) for one RGB crop."""
        self._feed(rgb)
        scores = self._output(self._out).reshape(-1)
        if scores.min() < 0 or not 0.98 <= scores.sum() <= 1.02:  # logits, not probabilities
            scores = np.exp(scores - scores.max())
            scores /= scores.sum()
        return scores


class Detector(Model):
    kind = "detector"

    def _bind_outputs(self, outs: list[dict[str, Any]]) -> None:
        boxes = [o for o in outs if len(o["shape"]) == 3 and o["shape"][-1] == 4]
        count = [o for o in outs if int(np.prod(o["shape"])) == 1]
        rest = [o for o in outs if o not in boxes and o not in count]
        if len(boxes) != 1 or len(count) != 1 or len(rest) != 2:
            raise ModelError(f"{self.path}: outputs are not boxes, classes, scores and count")
        named = {("score" in o["name"].lower()): o for o in rest}
        # by name when the exporter named them; the post-processing op's order otherwise
        classes, scores = (named[False], named[True]) if len(named) == 2 else rest
        self._boxes, self._classes, self._scores, self._count = boxes[0], classes, scores, count[0]

    def detect(self, rgb: np.ndarray, min_score: float) -> list[Detection]:
        h, w = rgb.shape[:2]
        self._feed(rgb)
        n = int(self._output(self._count).reshape(-1)[0])
        boxes = self._output(self._boxes)[0][:n]
        classes = self._output(self._classes)[0][:n]
        scores = self._output(self._scores)[0][:n]
        found = []
        for (y0, x0, y1, x1), c, s in zip(boxes, classes, scores, strict=True):
            index = int(round(float(c)))
            if s < min_score or not 0 <= index < len(self.labels):
                continue
            box = (int(x0 * w), int(y0 * h), int(np.ceil(x1 * w)), int(np.ceil(y1 * h)))
            found.append(Detection(self.labels[index], float(s), box))
        return sorted(found, key=lambda d: d.score, reverse=True)


class DenseDetector(Detector):
    """Boxes and per-class scores for every candidate; class choice and NMS done here. A third
    output ``[1, h, w, C]``, when there is one, is a feature map the species head reads
    (``features``)."""

    def _bind_outputs(self, outs: list[dict[str, Any]]) -> None:
        maps = [o for o in outs if len(o["shape"]) == 4]
        by_last = {int(o["shape"][-1]): o for o in outs if len(o["shape"]) == 3}
        if 4 not in by_last or len(by_last) != 2 or len(maps) > 1:
            raise ModelError(
                f"{self.path}: outputs are not boxes [1,N,4], scores [1,N,C] (and features)"
            )
        self._boxes = by_last.pop(4)
        ((classes, self._scores),) = by_last.items()
        self._features = maps[0] if maps else None
        if classes != len(self.labels):
            raise ModelError(
                f"{self.labels_path}: {len(self.labels)} labels, "
                f"but {self.path} scores {classes} classes"
            )

    @property
    def feature_size(self) -> int:
        return int(self._features["shape"][-1]) if self._features is not None else 0

    def features(self, box: Box, shape: tuple[int, int]) -> np.ndarray:
        """The last ``detect()``'s feature map averaged over ``box`` (pixels of that image,
        whose height and width are ``shape``): what the species head classifies."""
        if self._features is None:
            raise ModelError(f"{self.path}: this detector has no features output")
        grid = self._output(self._features)[0]
        gh, gw = grid.shape[:2]
        h, w = shape
        x0 = min(gw - 1, int(box[0] * gw / w))
        y0 = min(gh - 1, int(box[1] * gh / h))
        x1 = max(x0 + 1, int(np.ceil(box[2] * gw / w)))
        y1 = max(y0 + 1, int(np.ceil(box[3] * gh / h)))
        return grid[y0:y1, x0:x1].mean(axis=(0, 1))

    def detect(self, rgb: np.ndarray, min_score: float) -> list[Detection]:
        h, w = rgb.shape[:2]
        self._feed(rgb)
        scores = self._output(self._scores)[0]
        boxes = self._output(self._boxes)[0]
        best = scores.argmax(1)
        top = scores[np.arange(len(best)), best]
        keep = np.flatnonzero(top >= min_score)
        if not len(keep):
            return []
        y0, x0, y1, x1 = (boxes[keep] * [h, w, h, w]).T
        rects = np.stack([x0, y0, x1 - x0, y1 - y0], 1).tolist()
        chosen = cv2.dnn.NMSBoxesBatched(
            rects, top[keep].tolist(), best[keep].tolist(), min_score, NMS_IOU
        )
        found = [
            Detection(
                self.labels[best[keep[i]]],
                float(top[keep[i]]),
                (int(x0[i]), int(y0[i]), int(np.ceil(x1[i])), int(np.ceil(y1[i]))),
            )
            for i in np.asarray(chosen, int).reshape(-1)
        ]
        return sorted(found, key=lambda d: d.score, reverse=True)[:MAX_DETECTIONS]


class FeatureHead:
    """A species head: one input ``[1, C]`` (a detector's pooled features), one output
    ``[1, n_labels]``. Made by ``models/train_species_head.py``."""

    kind = "head"

    def __init__(self, interpreter: Any, path: Path, labels: list[str], labels_path: Path) -> None:
        self.path, self.labels = path, labels
        self._interp = interpreter
        (self._input,) = interpreter.get_input_details()
        outputs = interpreter.get_output_details()
        if len(outputs) != 1 or int(np.prod(outputs[0]["shape"])) != len(labels):
            raise ModelError(f"{labels_path}: {len(labels)} labels do not fit {path}'s output")
        self._out = outputs[0]
        self.feature_size = int(self._input["shape"][-1])

    def classify(self, features: np.ndarray) -> np.ndarray:
        """Scores per label (summing to 1) for one feature vector."""
        if features.shape != (self.feature_size,):
            raise ModelError(
                f"{self.path}: expects {self.feature_size} features, got {features.shape}"
            )
        self._interp.set_tensor(self._input["index"], features.astype(np.float32)[None])
        self._interp.invoke()
        return self._interp.get_tensor(self._out["index"]).reshape(-1).astype(np.float32)


def load_head(path: Path, labels_path: Path, threads: int = 1) -> FeatureHead:
    """Open a species head (see FeatureHead) and check it against its labels."""
    labels = read_labels(labels_path)
    interpreter = _interpreter(path, threads)
    inputs = interpreter.get_input_details()
    if len(inputs) != 1 or len(inputs[0]["shape"]) != 2 or inputs[0]["dtype"] != np.float32:
        raise ModelError(f"{path}: not a species head (one float32 input [1, C])")
    return FeatureHead(interpreter, path, labels, labels_path)


def _interpreter(path: Path, threads: int) -> Any:
    interpreter_cls, _ = interpreter_class()
    if not path.is_file():
        raise ModelError(f"{path}: no such model file")
    try:
        interpreter = interpreter_cls(model_path=str(path), num_threads=threads)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"{path}: not a usable TFLite model ({exc})") from exc
    return interpreter


def load_model(
    path: Path, labels_path: Path, threads: int = 1, mean: float = 0.0, std: float = 1.0
) -> Classifier | Detector | DenseDetector:
    """Open ``path`` with the installed runtime and check it against ``labels_path``."""
    labels = read_labels(labels_path)
    interpreter = _interpreter(path, threads)
    outputs = len(interpreter.get_output_details())
    if outputs == 1:
        return Classifier(interpreter, path, labels, labels_path, mean, std)
    if outputs in (2, 3):
        return DenseDetector(interpreter, path, labels, labels_path, mean, std)
    if outputs == 4:
        return Detector(interpreter, path, labels, labels_path, mean, std)
    raise ModelError(
        f"{path}: {outputs} outputs; expected 1 (classifier), 2 or 3 (dense detector) "
        "or 4 (SSD-style detector)"
    )
