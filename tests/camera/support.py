"""Constants and helpers shared by the camera tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from edge.agents.camera.config import CameraConfig
from edge.protocol import Envelope
from edge.runtime.config import build

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "models" / "wildlife-v1.tflite"
FLOAT_MODEL = ROOT / "models" / "wildlife-v1-float32.tflite"
LABELS = ROOT / "models" / "wildlife-v1.labels"
# Scene seeds for tests. The training script's crops come from its own seeds (models/), so these
# scenes are samples the model has never seen.
SEEDS = {
    "bear": 9101,
    "boar": 9102,
    "macaque": 9103,
    "deer": 9104,
    "serow": 9105,
    "person": 9106,
    "vehicle": 9107,
    "wind": 9108,
    "rain": 9109,
    "lightning": 9110,
    "ir-switch": 9111,
    "bear-night": 9112,
    "boar-night": 9113,
    "deer-rain": 9114,
    "empty": 9115,
}


def model_section(**overrides) -> dict:
    return {"path": str(MODEL), "labels": str(LABELS), "version": "test"} | overrides


@dataclass
class Run:
    """What one agent run produced, as the city received it."""

    events: list[Envelope]
    images: dict[str, bytes]
    counters: dict[str, int]
    store: Path


def camera_config(source: Path, store: Path, **overrides) -> CameraConfig:
    section = {
        "source": str(source),
        "model": model_section(),
        "storage": {"dir": str(store)},
        "publish": "all",
    } | overrides
    return build(CameraConfig, section, file="test", key="camera")


def describe(run: Run) -> str:
    """For assertion messages: what the agent decided and why."""
    return json.dumps(
        {
            "counters": run.counters,
            "events": [
                {k: e.data[k] for k in ("label", "confidence", "scores")} for e in run.events
            ],
        },
        default=str,
    )[:3000]
