"""Wildlife camera: when an animal passes, photograph it, decide on the device whether it is a
harmful one, and tell the city with a picture.

Per frame: motion gating (and/or the PIR) decides whether something is passing. A trigger starts a
burst: ``burst.frames`` frames ``burst.interval_s`` apart, each classified on crops around its
moving regions. The burst's decision (decision.py) becomes one ``detection`` event on
``.../event`` and one small JPEG on ``.../image/{event_id}``, both through the durable outbox.
After a decision the passage is *held*: further motion within ``quiet_s`` belongs to the same
animal and starts no new burst, and a label alerted within ``cooldown_s`` is not alerted again,
so one bear lingering at a trap sends one alert, not fifty. Full-resolution burst frames of each
decided event stay on the device under a disk quota.

Frame times come from the camera's own timeline, so the same code runs a live camera, a recording
and the simulator's rendered scenes, at whatever speed frames arrive.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
from dataclasses import dataclass, field
from datetime import datetime

import cv2
import numpy as np

from edge.agents.camera.classifier import Classifier, load_head, load_model
from edge.agents.camera.config import CameraConfig
from edge.agents.camera.decision import Decision, FrameResult, decide
from edge.agents.camera.images import LocalStore, annotate, encode_capped, is_grey
from edge.agents.camera.motion import Motion, MotionGate
from edge.agents.camera.regions import Box, crop, square, union
from edge.drivers.camera import Camera, Frame, LatestFrame
from edge.drivers.pir import Pir
from edge.runtime.host import AgentHost
from edge.runtime.outbox import OutboxFull

log = logging.getLogger(__name__)
NOTHING = FrameResult(0.0, "", 0.0, None, {})  # a frame with nothing found; null in events
MIN_DETECTOR_SCORE = 0.1  # detections below this are not worth reporting per frame
# detector labels the species step may sharpen, and into what (of the harmful labels)
PASSED_ON = {
    "person": {"macaque"},
    "other animal": {"bear", "boar", "macaque", "deer", "serow"},
}


def scored(t: float, labels: list[str], scores: np.ndarray, box: Box | None) -> FrameResult:
    """A frame result from one model's scores per label: its top label, and all of them."""
    k = int(scores.argmax())
    every = {name: float(s) for name, s in zip(labels, scores, strict=True)}
    return FrameResult(t, labels[k], float(scores[k]), box, every)


@dataclass
class _Burst:
    started: float  # frame time of the trigger
    at: datetime  # wall-clock time of the trigger: the event's ts
    trigger: str
    next_t: float
    frames: list[np.ndarray] = field(default_factory=list)
    results: list[FrameResult] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)  # last moving regions seen in this burst


class CameraAgent:
    Config = CameraConfig

    def __init__(self, host: AgentHost, config: CameraConfig) -> None:
        self.host = host
        self.config = config
        count = host.health.count
        camera = Camera(
            config.source,
            width=config.width,
            height=config.height,
            realtime=config.realtime,
            loop=config.loop,
            on_count=lambda name: count(f"camera_{name}"),
        )
        # a live camera is read on its own thread: the agent always gets the newest frame
        self.camera = camera if camera.is_file else LatestFrame(camera)
        p = config.pir
        self.pir = Pir(p.pin, queue_len=p.queue_len, sample_rate=p.sample_rate) if p else None
        self.gate = MotionGate(config.motion)
        m = config.model
        self.model = load_model(m.path, m.labels, m.threads, m.input_mean, m.input_std)
        d = config.detector
        self.detector = load_model(d.path, d.labels, d.threads) if d else None
        self.head = load_head(d.head, d.head_labels, d.threads) if d and d.head else None
        groups = d.groups if d else {}
        self._group = {name: city for city, names in groups.items() for name in names}
        self.store = LocalStore(config.storage.dir, config.storage.max_bytes)
        self._burst: _Burst | None = None
        self._hold_until = -math.inf
        self._hold_limit = -math.inf
        self._last_alert: dict[str, float] = {}

    def run(self, stop: threading.Event) -> None:
        """Process frames until stopped, or until a video file source ends."""
        try:
            while not stop.is_set():
                frame = self.camera.read()
                if frame is not None:
                    self.step(frame)
                elif self.camera.ended:
                    log.info("video file ended", extra={"fields": {"source": self.camera.source}})
                    return
        finally:
            self.camera.close()
            if self.pir is not None:
                self.pir.close()

    def step(self, frame: Frame) -> None:
        pir = self.pir.triggered() if self.pir is not None else False
        motion = self.gate.update(frame.image, frame.t, pir=pir)
        if motion.recalibrated:
            self.host.health.count("recalibrations")
        if self._burst is not None:
            self._burst_frame(frame, motion)
        elif frame.t < self._hold_until:  # the passage already decided goes on
            if pir or motion.boxes:
                self._hold_until = min(frame.t + self.config.quiet_s, self._hold_limit)
        elif self._triggered(pir, motion.confirmed, frame.image):
            self.host.health.count("triggers")
            trigger = "pir" if pir and not motion.confirmed else "motion"
            if pir and motion.confirmed:
                trigger = "pir+motion"
            self._burst = _Burst(frame.t, self.host.clock.now(), trigger, frame.t)
            self._burst_frame(frame, motion)

    def _triggered(self, pir: bool, moving: bool, image: np.ndarray) -> bool:
        mode = self.config.trigger
        if mode == "auto":  # by day the PIR only lowers the gating's bar; at night (IR) it also
            return moving or (pir and is_grey(image))  # triggers alone: the picture is too dark
        if mode == "motion":
            return moving
        if mode == "pir":
            return pir
        return (pir and moving) if mode == "pir_and_motion" else (pir or moving)

    def _burst_frame(self, frame: Frame, motion: Motion) -> None:
        burst, cfg = self._burst, self.config.burst
        burst.boxes = motion.boxes[: cfg.max_crops] or burst.boxes
        if frame.t < burst.next_t:
            return
        burst.next_t = frame.t + cfg.interval_s
        burst.frames.append(frame.image)
        burst.results.append(self._classify(frame, burst.boxes))
        if len(burst.results) >= cfg.frames:
            self._burst = None
            self._finish(burst)

    def _classify(self, frame: Frame, boxes: list[Box]) -> FrameResult:
        """The frame's best guess. With a detector: a COCO bear or vehicle stands; a person, an
        other animal or nothing goes to the species step (the head on the detector's features,
        or the classifier on crops), which may name an animal COCO does not know."""
        image = frame.image
        if is_grey(image):  # night IR: exact grey, as the model was trained
            image = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2RGB)
        else:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        if self.detector is None:
            return self._species(frame.t, image, boxes)
        seen, species = self._detect(frame.t, image, boxes)
        if seen is not None and seen.label not in PASSED_ON:
            return seen
        if species is None:  # no head: the classifier looks where the detector found something
            species = self._species(frame.t, image, [seen.box] if seen else boxes)
        return species if seen is None else self._with_detection(species, seen)

    def _species(self, t: float, image: np.ndarray, boxes: list[Box]) -> FrameResult:
        """The species model on crops: of all moving regions, the one most surely not nothing."""
        ignore = set(self.config.decision.ignore)
        if not isinstance(self.model, Classifier):
            found = self.model.detect(image, MIN_DETECTOR_SCORE)
            wanted = [d for d in found if d.label not in ignore]
            if not wanted:
                return FrameResult(t, NOTHING.label, 0.0, None, {})
            top = {d.label: max(d.score, 0) for d in reversed(found[:5])}
            return FrameResult(t, wanted[0].label, wanted[0].score, wanted[0].box, top)
        h, w = image.shape[:2]
        best = NOTHING
        for box in boxes or [(0, 0, w, h)]:
            patch = crop(image, box, self.config.burst.margin, self.model.input_size)
            result = scored(t, self.model.labels, self.model.classify(patch), box)
            rank = (result.label not in ignore, result.score)
            if best is NOTHING or rank > (best.label not in ignore, best.score):
                best = result
        return best

    def _detect(
        self, t: float, image: np.ndarray, boxes: list[Box]
    ) -> tuple[FrameResult | None, FrameResult | None]:
        """The detector's best finding mapped to the city's labels (``detector.groups``), in the
        square around the moving regions (the whole frame when nothing moved: a PIR trigger);
        and, with a species head, its species for that finding (or for what moved)."""
        cfg = self.config.detector
        h, w = image.shape[:2]
        x0, y0, x1, y1 = 0, 0, w, h
        if boxes:
            region = boxes[0]
            for box in boxes[1:]:
                region = union(region, box)
            x0, y0, x1, y1 = square(region, cfg.margin, w, h)
        view = image[y0:y1, x0:x1]
        seen, where = None, (0, 0, x1 - x0, y1 - y0)
        for d in self.detector.detect(view, cfg.min_score):
            city = self._group.get(d.label)
            if city is not None:
                box = (d.box[0] + x0, d.box[1] + y0, d.box[2] + x0, d.box[3] + y0)
                coco = {f"coco:{d.label}": d.score}  # votes from the detector's min_score
                seen, where = FrameResult(t, city, d.score, box, coco, cfg.min_score), d.box
                break
        else:
            if boxes:
                where = (region[0] - x0, region[1] - y0, region[2] - x0, region[3] - y0)
        if self.head is None:
            return seen, None
        features = self.detector.features(where, view.shape[:2])
        full = (where[0] + x0, where[1] + y0, where[2] + x0, where[3] + y0)
        return seen, scored(t, self.head.labels, self.head.classify(features), full)

    def _with_detection(self, species: FrameResult, found: FrameResult) -> FrameResult:
        """A "person" or "other animal" from the detector, and the species step's name for it.
        The species step may only sharpen the detector: a COCO person into a macaque (COCO
        calls monkeys people), another animal into a harmful species (COCO has no deer, boar
        or serow). Otherwise the detector, trained on real photographs, stands: a species step
        trained on rendered figures must not turn a real person into a deer."""
        scores = species.scores | found.scores
        may = PASSED_ON[found.label] & set(self.config.decision.harmful)
        if species.label in may and species.score >= self.config.decision.threshold:
            return FrameResult(species.t, species.label, species.score, species.box, scores)
        return FrameResult(species.t, found.label, found.score, found.box, scores, found.needs)

    def _finish(self, burst: _Burst) -> None:
        cfg = self.config
        health = self.host.health
        health.count("bursts")
        decision = decide(
            burst.results,
            harmful=set(cfg.decision.harmful),
            ignore=set(cfg.decision.ignore),
            threshold=cfg.decision.threshold,
            min_frames=cfg.decision.min_frames,
        )
        if decision is None:
            health.count("bursts_undecided")
            return
        end = burst.results[-1].t
        self._hold_limit = burst.started + cfg.hold_max_s
        self._hold_until = min(end + cfg.quiet_s, self._hold_limit)
        last = self._last_alert.get(decision.label)
        if last is not None and burst.started - last < cfg.cooldown_s:
            health.count("suppressed_cooldown")
            return
        event_id = f"{burst.at:%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
        try:
            self.store.save(event_id, burst.frames)
        except OSError as exc:
            health.count("storage_errors")
            health.error(f"cannot keep images in {cfg.storage.dir}: {exc}")
            log.warning("storage failed", extra={"fields": {"error": str(exc)}})
        if not decision.harmful and cfg.publish == "harmful":
            health.count("not_published")
            log.info("not an alert", extra={"fields": {"label": decision.label}})
            return
        self._last_alert[decision.label] = burst.started
        self._publish(burst, decision, event_id)

    def _publish(self, burst: _Burst, decision: Decision, event_id: str) -> None:
        cfg, health = self.config, self.host.health
        best = burst.results[decision.best]
        frame = burst.frames[decision.best]
        if cfg.image.annotate:
            frame = annotate(frame, best.box, f"{decision.label} {decision.confidence:.2f}")
        try:
            jpeg, width, height = encode_capped(
                frame, cfg.image.max_bytes, cfg.image.max_width, cfg.image.quality
            )
            image = {"bytes": len(jpeg), "width": width, "height": height}
        except ValueError as exc:
            jpeg, image = None, None
            health.count("image_too_large")
            health.error(str(exc))
        h, w = burst.frames[0].shape[:2]
        data = {
            "event_id": event_id,
            "label": decision.label,
            "harmful": decision.harmful,
            "confidence": round(decision.confidence, 3),
            "votes": decision.votes,
            "trigger": burst.trigger,
            "night_ir": is_grey(burst.frames[decision.best]),
            "scores": [
                {
                    "t": round(r.t - burst.started, 2),
                    "label": r.label or None,
                    "score": round(r.score, 3),
                    "all": {k: round(v, 3) for k, v in r.scores.items() if v >= 0.01},
                }
                for r in burst.results
            ],
            "boxes": [list(r.box) if r.box else None for r in burst.results],
            "frame_size": [w, h],
            "model": {
                "name": cfg.model.name,
                "version": cfg.model.version,
                "kind": self.model.kind,
                "detector": self.config.detector.path.name if self.config.detector else None,
                "head": self.head.path.name if self.head else None,
            },
            "image": image,
        }
        try:
            self.host.publish("event", "detection", data, at=burst.at)
            if jpeg is not None:
                self.host.publish_image(event_id, jpeg)
        except OutboxFull as exc:
            health.count("events_refused")
            health.error(str(exc))
            log.warning("event refused", extra={"fields": {"error": str(exc)}})
            return
        health.count("events")
        log.info(
            "detection",
            extra={
                "fields": {
                    "event_id": event_id,
                    "label": decision.label,
                    "confidence": data["confidence"],
                    "image_bytes": len(jpeg or b""),
                }
            },
        )
