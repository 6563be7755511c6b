"""The ``camera:`` section of a camera agent's config file.

Defaults suit a 640x480 trail camera at ~10 frames/s on a Raspberry-Pi-class board over LTE. The
model files are opened and checked here, so ``machimori agent check`` already reports a model that
is not a model or a labels file that does not match it, with the file and key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edge.agents.camera.classifier import ModelError, load_head, load_model
from edge.drivers.camera import CameraError, check_source

# auto: motion (a PIR pulse lowering its bar) by day; PIR or motion on night IR frames
Trigger = Literal["auto", "motion", "pir", "pir_and_motion", "pir_or_motion"]


@dataclass
class PirConfig:
    """A PIR module (HC-SR501, AM312, ...) on a GPIO pin, read with gpiozero. The pin factory is
    gpiozero's: the GPIOZERO_PIN_FACTORY environment variable or its default for the board."""

    pin: int | str = "GPIO17"
    queue_len: int = 1  # samples averaged; >1 smooths a chattering sensor
    sample_rate: float = 10.0


@dataclass
class MotionConfig:
    """Motion gating on a small colour copy of each frame (see motion.py for what each does)."""

    width: int = 160  # pixels of the downscaled frame gating works on
    background_s: float = 4.0  # time constant of the background where nothing moves...
    absorb_s: float = 60.0  # ...and where something does: a still animal stays news this long
    threshold: float = 14.0  # levels any colour channel must differ from the background
    min_area: float = 0.002  # smallest moving region, as a fraction of the frame
    confirm_frames: int = 2  # consecutive frames with motion before it is a trigger
    flicker_s: float = 10.0  # a pixel that switched between moving and still more than...
    flicker_max: float = 4.0  # ...this many times in about flicker_s is swaying, not passing
    roi: list[list[list[float]]] = field(default_factory=list)  # polygons, 0..1 coordinates
    recalibrate_fraction: float = 0.85  # share of the frame's 4x4 tiles changing at once...
    recalibrate_gain: float = 1.3  # ...or the overall brightness jumping by this factor
    settle_s: float = 1.0  # no triggers this long after such a recalibration
    learn_s: float = 3.0  # nor this long after the camera opens: learning what sways
    pir_boost_s: float = 3.0  # after a PIR pulse, for this long...
    pir_factor: float = 0.6  # ...threshold and min_area are this much lower, one frame confirms

    def __post_init__(self) -> None:
        if self.width < 32:
            raise ValueError("motion.width must be >= 32")
        if self.background_s <= 0 or self.absorb_s < self.background_s or self.learn_s < 0:
            raise ValueError("motion: need 0 < background_s <= absorb_s and learn_s >= 0")
        if self.confirm_frames < 1 or self.recalibrate_gain <= 1 or not 0 < self.pir_factor <= 1:
            raise ValueError(
                "motion: need confirm_frames >= 1, recalibrate_gain > 1, 0 < pir_factor <= 1"
            )
        for polygon in self.roi:
            if len(polygon) < 3 or any(
                len(p) != 2 or not all(0 <= v <= 1 for v in p) for p in polygon
            ):
                raise ValueError("motion.roi: polygons of >= 3 [x, y] points in 0..1")


@dataclass
class BurstConfig:
    frames: int = 5  # frames classified per trigger
    interval_s: float = 0.2  # between them
    max_crops: int = 3  # moving regions classified per frame, largest first
    margin: float = 0.15  # crop padding around a region, fraction of its longer side

    def __post_init__(self) -> None:
        if self.frames < 1 or self.max_crops < 1 or self.interval_s < 0:
            raise ValueError("burst.frames and burst.max_crops must be >= 1, interval_s >= 0")


@dataclass
class ModelConfig:
    """A ``.tflite`` classifier or SSD-style detector and its labels (see classifier.py).
    Relative paths are relative to the working directory."""

    path: Path = Path("models/wildlife-v1.tflite")
    labels: Path = Path("models/wildlife-v1.labels")
    name: str | None = None  # reported with every event; default: the file name without suffix
    version: str = "1"
    threads: int = 1
    input_mean: float = 0.0  # the model sees (pixel - mean) / std
    input_std: float = 1.0
    known_labels: list[str] = field(init=False, default_factory=list)  # read from the labels file

    def __post_init__(self) -> None:
        if self.threads < 1 or self.input_std == 0:
            raise ValueError("model.threads must be >= 1 and input_std non-zero")
        try:
            self.known_labels = load_model(self.path, self.labels, 1, 0.0, 1.0).labels
        except ModelError as exc:
            raise ValueError(f"model: {exc}") from exc
        self.name = self.name or self.path.stem


COCO_GROUPS = {
    "bear": ["bear"],
    "person": ["person"],
    "vehicle": ["bicycle", "car", "motorcycle", "bus", "train", "truck"],
    "other animal": ["bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "zebra", "giraffe"],
}


@dataclass
class DetectorConfig:
    """A detector trained on real photographs (``models/coco-nanodet-416.tflite``: NanoDet on
    COCO, see models/COCO_DETECTOR.md), run on each burst frame before the species classifier.
    ``groups`` maps the city's labels to the detector's: a detected "bear" is a bear whatever
    the species classifier says; "person" and "other animal" go to the classifier, which may
    recognise a macaque, deer, boar or serow (COCO has none of these); nothing detected leaves
    the classifier alone to decide, as without a detector."""

    path: Path = Path("models/coco-nanodet-416.tflite")
    labels: Path = Path("models/coco-nanodet-416.labels")
    threads: int = 1
    min_score: float = 0.35  # a detection counts from this score
    margin: float = 0.5  # the crop around the moving regions fed to the detector
    head: Path | None = None  # species head on the detector's features (train_species_head.py)
    head_labels: Path | None = None  # its labels; without a head, model: names the species
    groups: dict[str, list[str]] = field(default_factory=lambda: dict(COCO_GROUPS))
    head_known: list[str] = field(init=False, default_factory=list)  # the head's labels

    def __post_init__(self) -> None:
        if self.threads < 1 or not 0 < self.min_score < 1:
            raise ValueError("detector.threads must be >= 1 and 0 < min_score < 1")
        if (self.head is None) != (self.head_labels is None):
            raise ValueError("detector: head and head_labels go together")
        try:
            detector = load_model(self.path, self.labels, 1, 0.0, 1.0)
            known = detector.labels
            if self.head is not None:
                head = load_head(self.head, self.head_labels)
                if head.feature_size != getattr(detector, "feature_size", 0):
                    raise ModelError(
                        f"{self.head}: reads {head.feature_size} features, "
                        f"{self.path} gives {getattr(detector, 'feature_size', 0)}"
                    )
                self.head_known = head.labels
        except ModelError as exc:
            raise ValueError(f"detector: {exc}") from exc
        unknown = sorted({n for names in self.groups.values() for n in names} - set(known))
        if unknown:
            raise ValueError(f"detector.groups: {unknown} are not in {self.labels}")


@dataclass
class DecisionConfig:
    harmful: list[str] = field(default_factory=lambda: ["bear", "boar", "macaque", "deer", "serow"])
    ignore: list[str] = field(default_factory=lambda: ["background"])  # labels meaning "nothing"
    threshold: float = 0.6  # a frame votes for its top label only at or above this score
    min_frames: int = 3  # votes a label needs within one burst


@dataclass
class ImageConfig:
    max_bytes: int = 50_000  # JPEG sent over MQTT (LTE bytes cost money)
    max_width: int = 640
    quality: int = 80  # first try; lowered, then the size halved, until it fits max_bytes
    annotate: bool = True  # draw the box and label on the sent image


@dataclass
class StorageConfig:
    """Full-resolution burst frames of every decided event, kept on the device."""

    dir: Path = Path("/var/lib/machimori/camera")
    max_bytes: int = 2 * 1024**3  # oldest files are deleted first beyond this


@dataclass
class CameraConfig:
    source: str = "0"  # camera index, /dev/videoN, rtsp://..., http://..., or a video file
    width: int | None = None  # capture size asked of a live camera
    height: int | None = None
    realtime: bool = False  # video files: play at the file's frame rate, like a live camera
    loop: bool = False  # video files: start again at the end instead of stopping the agent
    trigger: Trigger = "motion"
    pir: PirConfig | None = None
    motion: MotionConfig = field(default_factory=MotionConfig)
    burst: BurstConfig = field(default_factory=BurstConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    detector: DetectorConfig | None = None  # off unless configured (configs/camera-example.yaml)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    storage: StorageConfig = field(default_factory=StorageConfig)
    publish: Literal["harmful", "all"] = "harmful"  # "all": also people and vehicles
    cooldown_s: float = 300.0  # one alert per label per this long
    quiet_s: float = 3.0  # an event's passage ends after this long without motion
    hold_max_s: float = 60.0  # ...or after this long in any case

    def __post_init__(self) -> None:
        try:
            check_source(self.source)
        except CameraError as exc:
            raise ValueError(f"source: {exc}") from exc
        if self.trigger != "motion" and self.pir is None:
            raise ValueError(f"trigger {self.trigger!r} needs a pir: section")
        if not 1 <= self.decision.min_frames <= self.burst.frames:
            raise ValueError("need 1 <= decision.min_frames <= burst.frames")
        known = self.model.known_labels
        if self.detector:
            known = known + list(self.detector.groups) + self.detector.head_known
        unknown = sorted(set(self.decision.harmful + self.decision.ignore) - set(known))
        if unknown:
            raise ValueError(
                f"decision: labels {unknown} are not in {self.model.labels} ({', '.join(known)})"
            )
        if self.image.max_bytes < 2000 or self.image.max_width < 64:
            raise ValueError("image.max_bytes must be >= 2000 and max_width >= 64")
