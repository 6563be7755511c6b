"""Wildlife camera figures: motion gating speed, the COCO detector's and the species head's time
per frame, inference per crop, trigger-to-published latency, the agent's memory, and decisions
on freshly seeded simulator scenes. (Gating recall, false triggers and speed against the
Frigate-like baseline: bench/gating.py.)

    python bench/camera.py [--seconds 60] [--scenes 3]

Gating and inference run on one core (OpenCV and the interpreter limited to one thread). Latency
is measured on a real agent process playing a rendered video in real time against Mosquitto:
from the envelope's ``ts`` (the trigger, ms precision) to the event's arrival at a subscriber, so
it includes the burst itself (5 frames 0.2 s apart by default).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import psutil
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge.agents.camera import CameraAgent  # noqa: E402
from edge.agents.camera.classifier import load_head, load_model  # noqa: E402
from edge.agents.camera.config import CameraConfig, MotionConfig  # noqa: E402
from edge.agents.camera.motion import MotionGate  # noqa: E402
from edge.protocol import Envelope, Topic  # noqa: E402
from edge.runtime.config import build  # noqa: E402
from edge.runtime.host import AgentHost, HostConfig  # noqa: E402
from sim.broker import Mosquitto  # noqa: E402
from sim.devices.camera import scene, write_video  # noqa: E402
from sim.scenes.crops import CropSampler  # noqa: E402
from sim.scenes.scene import SceneRenderer  # noqa: E402

MODELS = ROOT / "models"
MODEL = {"path": str(MODELS / "wildlife-v1.tflite"), "labels": str(MODELS / "wildlife-v1.labels")}
BENCH_SEED = 70_000  # scenes no test and no training split uses


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def gating_fps() -> None:
    cv2.setNumThreads(1)
    renderer = SceneRenderer(scene("deer", BENCH_SEED))
    frames = [renderer.frame(i) for i in range(renderer.frame_count)]
    gate = MotionGate(MotionConfig())
    n, started = 0, time.perf_counter()
    while time.perf_counter() - started < 3.0:
        for frame in frames:
            gate.update(frame, n / 10)
            n += 1
    fps = n / (time.perf_counter() - started)
    print(
        f"motion gating, 640x480 -> 160x120 colour, 1 thread: {fps:,.0f} frames/s "
        f"({1000 / fps:.2f} ms/frame)"
    )


def inference_ms() -> None:
    sampler = CropSampler(BENCH_SEED, size=64, backdrops=4)
    rng = np.random.default_rng(BENCH_SEED)
    crops = [sampler.sample("bear", rng)[0] for _ in range(50)]
    for name in ("wildlife-v1.tflite", "wildlife-v1-float32.tflite"):
        model = load_model(MODELS / name, MODELS / "wildlife-v1.labels", threads=1)
        times = []
        for i in range(1000):
            started = time.perf_counter()
            model.classify(crops[i % len(crops)])
            times.append((time.perf_counter() - started) * 1000)
        print(
            f"inference {name} ({model.input_type} in, 64x64, 1 thread): "
            f"p50 {percentile(times, 50):.3f} ms, p99 {percentile(times, 99):.3f} ms per crop"
        )


def detector_ms() -> None:
    """The detector on a 416x416 frame and the head on its pooled features, one thread."""
    detector = load_model(MODELS / "coco-nanodet-416.tflite", MODELS / "coco-nanodet-416.labels")
    photos = sorted((MODELS / "eval" / "photos").glob("*.jpg"))[:10]
    images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in photos]
    times = []
    for i in range(40):
        started = time.perf_counter()
        detector.detect(images[i % len(images)], 0.35)
        times.append((time.perf_counter() - started) * 1000)
    print(
        f"COCO detector (NanoDet, {detector.input_type}, 416x416, 1 thread, NMS included): "
        f"p50 {percentile(times, 50):.1f} ms, p99 {percentile(times, 99):.1f} ms per frame"
    )
    head_path = MODELS / "species-head.tflite"
    if head_path.is_file():
        head = load_head(head_path, MODELS / "species-head.labels")
        vector = detector.features((0, 0, 100, 100), images[0].shape[:2])
        started = time.perf_counter()
        for _ in range(1000):
            head.classify(vector)
        print(f"species head: {(time.perf_counter() - started):.3f} ms per call")


def scene_decisions(per_class: int, workdir: Path) -> None:
    """Run the agent in process on fresh scenes and read its decisions from the outbox."""
    names = [
        "bear",
        "boar",
        "macaque",
        "deer",
        "serow",
        "bear-night",
        "serow-night",
        "person",
        "vehicle",
        "wind",
        "rain",
        "lightning",
    ]
    outcome: dict[str, Counter] = {}
    for name in names:
        outcome[name] = Counter()
        for k in range(per_class):
            seed = BENCH_SEED + 100 * names.index(name) + k
            source = write_video([scene(name, seed)], workdir / f"{name}-{k}.avi")
            host = AgentHost(
                build(
                    HostConfig,
                    {
                        "device": {"id": f"bench-{k}", "kind": "camera"},
                        "agent": "camera",
                        "outbox": {"path": str(workdir / f"{name}-{k}.db"), "sync": "normal"},
                    },
                    file="bench",
                )
            )
            config = build(
                CameraConfig,
                {
                    "source": str(source),
                    "model": MODEL,
                    "storage": {"dir": str(workdir / "img")},
                    "publish": "all",
                },
                file="bench",
            )
            CameraAgent(host, config).run(threading.Event())
            labels = [
                Envelope.from_json(m.payload).data["label"]
                for m in host.outbox.pending(limit=1000)
                if m.topic.endswith("/event")
            ]
            host.outbox.close()
            outcome[name][",".join(labels) or "(none)"] += 1
    print(
        f"decisions on fresh simulator scenes ({per_class} per kind; labels of the events "
        "each scene produced):"
    )
    for name, counts in outcome.items():
        print(f"  {name:<12} " + ", ".join(f"{v}x {k}" for k, v in counts.most_common()))


def latency_and_rss(seconds: float, workdir: Path) -> None:
    playlist = [
        scene(n, BENCH_SEED + i, pace=3.0, tail_s=2.0, enter_s=0.5)
        for i, n in enumerate(["bear", "boar", "deer", "serow", "macaque", "bear-night"])
    ]
    source = write_video(playlist, workdir / "playlist.avi")
    with Mosquitto() as broker:
        arrivals: list[float] = []
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)

        def on_message(_c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
            if Topic.parse(msg.topic).channel == "event":
                ts = Envelope.from_json(msg.payload).timestamp
                arrivals.append((datetime.now(UTC) - ts).total_seconds() * 1000)

        client.on_message = on_message
        client.connect(broker.host, broker.port)
        client.subscribe("machimori/v1/camera/#", qos=1)
        client.loop_start()
        config = workdir / "camera.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "device": {"id": "bench-cam", "kind": "camera"},
                    "agent": "camera",
                    "mqtt": {"host": broker.host, "port": broker.port},
                    "outbox": {"path": str(workdir / "outbox.db")},
                    "camera": {
                        "source": str(source),
                        "realtime": True,
                        "loop": True,
                        "cooldown_s": 0,
                        "model": MODEL,
                        "storage": {"dir": str(workdir / "images")},
                    },
                }
            )
        )
        proc = subprocess.Popen(
            [sys.executable, "-m", "machimori", "agent", "run", "--config", str(config)],
            stderr=subprocess.DEVNULL,
        )
        watched = psutil.Process(proc.pid)
        rss, cpu = [], []
        watched.cpu_percent()
        started = time.monotonic()
        while time.monotonic() - started < seconds:
            time.sleep(1.0)
            rss.append(watched.memory_info().rss / 2**20)
            cpu.append(watched.cpu_percent())
        proc.terminate()
        proc.wait(timeout=30)
        client.loop_stop()
        client.disconnect()
    print(
        f"trigger -> event received (includes the 0.8 s burst), {len(arrivals)} events in "
        f"{seconds:g} s: p50 {percentile(arrivals, 50):.0f} ms, "
        f"p99 {percentile(arrivals, 99):.0f} ms"
    )
    print(
        f"agent process (real-time 640x480 10 fps video): RSS {statistics.median(rss):.0f} MiB "
        f"median, {max(rss):.0f} MiB max; CPU {statistics.mean(cpu[1:]):.0f}% of one core"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60, help="latency run length")
    parser.add_argument("--scenes", type=int, default=3, help="fresh scenes per kind")
    args = parser.parse_args()
    gating_fps()
    detector_ms()
    inference_ms()
    with tempfile.TemporaryDirectory(prefix="bench-camera-") as tmp:
        if args.scenes:
            scene_decisions(args.scenes, Path(tmp))
        latency_and_rss(args.seconds, Path(tmp))


if __name__ == "__main__":
    main()
