"""The camera agent as a field device runs it: ``machimori agent check`` and ``run`` on a config
file, as its own process, against the real broker."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from edge.protocol import Envelope, Topic

from .support import model_section


def config_file(tmp_path, broker, clip, **camera) -> str:
    path = tmp_path / "camera-07.yaml"
    section = {
        "source": str(clip),
        "model": model_section(),
        "storage": {"dir": str(tmp_path / "images")},
    } | camera
    path.write_text(
        yaml.safe_dump(
            {
                "device": {"id": "camera-07", "kind": "camera"},
                "agent": "camera",
                "mqtt": {"host": broker.host, "port": broker.port},
                "outbox": {"path": str(tmp_path / "outbox.db")},
                "camera": section,
            }
        )
    )
    return str(path)


def machimori(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "machimori", "agent", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_check_accepts_a_good_config(tmp_path, broker, video):
    done = machimori("check", "--config", config_file(tmp_path, broker, video("empty")))
    assert done.returncode == 0, done.stderr
    assert "camera agent for camera-07" in done.stdout


@pytest.mark.parametrize(
    ("camera", "message"),
    [
        ({"model": model_section(path="/etc/hostname")}, "not a usable TFLite model"),
        ({"model": model_section(labels="/nonexistent.labels")}, "cannot read labels"),
        ({"decision": {"harmful": ["bear", "tanuki"]}}, "labels ['tanuki'] are not in"),
        ({"trigger": "pir"}, "trigger 'pir' needs a pir: section"),
        ({"decision": {"min_frames": 9}}, "min_frames <= burst.frames"),
        ({"cooldown_s": "five minutes"}, "camera.cooldown_s: expected a number"),
        ({"source": "/srv/clips/missing.avi"}, "missing.avi: no such video file"),
    ],
)
def test_check_names_the_file_and_key_of_a_bad_config(tmp_path, broker, video, camera, message):
    path = config_file(tmp_path, broker, video("empty"), **camera)
    done = machimori("check", "--config", path)
    assert done.returncode == 2
    assert path in done.stderr and "camera" in done.stderr and message in done.stderr, done.stderr


def test_agent_process_sends_the_alert_and_exits_cleanly_at_the_end_of_the_file(
    tmp_path, broker, video, watch
):
    watcher = watch(broker, "machimori/v1/camera/camera-07/#")
    done = machimori("run", "--config", config_file(tmp_path, broker, video("serow")))
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    seen = watcher.collect(lambda s: any("/image/" in m.topic for m in s))
    events = [Envelope.from_json(m.payload) for m in seen if m.topic.endswith("/event")]
    assert [(e.type, e.data["label"], e.data["harmful"]) for e in events] == [
        ("detection", "serow", True)
    ]
    image = [Topic.parse(m.topic).event_id for m in seen if "/image/" in m.topic]
    assert image == [events[0].data["event_id"]]
