"""Camera fixtures: rendered scene videos (seeds the training script never uses), the shipped
model, and an in-process camera agent run against the session's real Mosquitto.

OpenCV and LiteRT are imported unconditionally: without the ``camera`` extra these tests fail."""

from __future__ import annotations

import threading
from pathlib import Path

import cv2  # noqa: F401 - a missing camera extra must fail the run, not skip it
import pytest

from edge.agents.camera import CameraAgent
from edge.protocol import Envelope, Status, Topic
from edge.runtime.config import build
from edge.runtime.host import AgentHost, HostConfig
from sim.devices.camera import scene, write_video

from .support import SEEDS, Run, camera_config


@pytest.fixture(scope="session")
def video(tmp_path_factory):
    """``video(name, ...)``: the path of scene ``name`` rendered to an MJPEG AVI, made once."""
    root = tmp_path_factory.mktemp("scenes")
    made: dict[tuple, Path] = {}

    def make(*names: str, **overrides) -> Path:
        key = (names, tuple(sorted(overrides.items())))
        if key not in made:
            scenes = [scene(n, SEEDS[n] + 17 * i, **overrides) for i, n in enumerate(names)]
            made[key] = write_video(scenes, root / f"{'+'.join(names)}-{len(made)}.avi")
        return made[key]

    return make


@pytest.fixture
def run_camera(broker, watch, tmp_path):
    """Run a camera agent in this process on ``source`` until the file ends, flush, and return
    what reached MQTT. A thread, not a process, so a test can drive the PIR mock pin."""
    runs = 0

    def run(source: Path, *, before_run=None, **overrides) -> Run:
        nonlocal runs
        runs += 1
        device = f"cam-{tmp_path.name[-20:].lower().replace('_', '-')}-{runs}".strip("-")
        watcher = watch(broker, f"machimori/v1/camera/{device}/#")
        host_cfg = build(
            HostConfig,
            {
                "device": {"id": device, "kind": "camera"},
                "agent": "camera",
                "mqtt": {"host": broker.host, "port": broker.port, "reconnect_min_s": 0.2},
                "outbox": {"path": str(tmp_path / f"outbox-{runs}.db"), "sync": "normal"},
            },
            file="test",
        )
        host = AgentHost(host_cfg)
        store = tmp_path / f"store-{runs}"
        agent = CameraAgent(host, camera_config(source, store, **overrides))
        host.uplink.start()
        done = threading.Event()
        try:
            if before_run is not None:
                before_run(agent)
            agent.run(done)
        finally:
            host.uplink.stop(10)
            host.outbox.close()

        def offline(seen):
            return any(
                m.topic.endswith("/status") and Status.from_json(m.payload).state == "offline"
                for m in seen
            )

        seen = watcher.collect(offline)
        events, images = [], {}
        for m in seen:
            topic = Topic.parse(m.topic)
            if topic.channel == "event":
                events.append(Envelope.from_json(m.payload))
            elif topic.channel == "image":
                images[topic.event_id] = bytes(m.payload)
        return Run(events, images, dict(host.health.counters), store)

    return run
