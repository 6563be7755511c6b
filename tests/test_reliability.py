"""Never lose a reading: a real agent process, a real broker, and the failures of the field.

Each test runs the river agent as its own process (as on a device) against a simulated sensor on
a pty, and watches MQTT as the city does. Readings come every ~0.1 s so failures hit mid-stream.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from river_process import write_river_config

from edge.protocol import Envelope, Status, Topic
from sim.devices.ultrasonic import UltrasonicSim

DEVICE = "river-01"


class Rig:
    """One river agent process with its sensor, config and outbox, restartable."""

    def __init__(self, tmp_path, broker, **outbox):
        self.sensor = UltrasonicSim("a02yyuw", lambda: 2000.0)
        # the device-to-broker link alone; with the store's acknowledgement:
        # tests/test_end_to_end.py
        self.config = write_river_config(
            tmp_path / "river.yaml",
            DEVICE,
            broker,
            self.sensor.path,
            {"path": str(tmp_path / "outbox.db"), **outbox},
            interval_s=0.1,
            status_interval_s=0.5,
            confirm="broker",
        )
        self.log = tmp_path / "agent.log"
        self.proc = None

    def next_seq(self) -> int:
        """The seq the agent will give its next reading, read from its outbox file."""
        path = self.config.parent / "outbox.db"
        if not path.exists():
            return 0
        with contextlib.closing(sqlite3.connect(path, timeout=5)) as db:
            try:
                row = db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
            except sqlite3.OperationalError:  # the agent is still creating the file
                return 0
        return int(row[0]) if row else 0

    def start(self):
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "machimori", "agent", "run", "--config", str(self.config)],
                stdout=log,
                stderr=log,
            )

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=20)

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.kill()
        self.sensor.close()


@pytest.fixture
def rig(tmp_path):
    rigs = []

    def make(broker, **outbox):
        rigs.append(Rig(tmp_path, broker, **outbox))
        return rigs[-1]

    yield make
    for r in rigs:
        r.close()


def readings(messages):
    """(seq, payload) of every telemetry message, in arrival order."""
    out = []
    for msg in messages:
        if Topic.parse(msg.topic).channel == "telemetry":
            out.append((Envelope.from_json(msg.payload).seq, msg.payload))
    return out


def statuses(messages):
    return [Status.from_json(m.payload) for m in messages if m.topic.endswith("/status")]


def count_at_least(n):
    return lambda seen: len({s for s, _ in readings(seen)}) >= n


def assert_complete_in_order(received, upto=None):
    seqs = [s for s, _ in received]
    first_seen = list(dict.fromkeys(seqs))
    assert first_seen == sorted(first_seen), "readings arrived out of order"
    top = max(seqs) if upto is None else upto
    missing = sorted(set(range(top + 1)) - set(seqs))
    assert missing == [], f"lost readings: {missing}"


def test_broker_outage_loses_nothing_and_keeps_order(own_broker, rig, watch):
    watcher = watch(own_broker)
    agent = rig(own_broker)
    agent.start()
    watcher.collect(count_at_least(15))
    own_broker.stop()
    time.sleep(3.0)  # ~30 readings are taken while the broker is down
    own_broker.start()
    before = len(readings(watcher.seen))
    watcher.collect(count_at_least(before + 45), timeout_s=30)
    assert agent.kill(signal.SIGTERM) == 0
    seen = watcher.collect(lambda s: statuses(s) and statuses(s)[-1].state == "offline")
    received = readings(seen)
    assert_complete_in_order(received)
    last = statuses(seen)[-1]
    assert last.health["outbox"]["queued"] == 0, "clean shutdown left messages unsent"
    assert last.health["outbox"]["last_seq"] == max(s for s, _ in received)
    assert last.health["counters"]["reconnect_attempts"] >= 1
    assert "broker" in last.health["last_error"]


def test_sigkill_mid_stream_loses_nothing_and_reuses_no_seq(broker, rig, watch):
    watcher = watch(broker, f"machimori/v1/river/{DEVICE}/#")
    agent = rig(broker)
    for round_ in range(3):  # killed twice mid-stream, then stopped cleanly
        agent.start()
        target = 12 * (round_ + 1)
        watcher.collect(count_at_least(target))
        if round_ < 2:
            assert agent.kill(signal.SIGKILL) == -signal.SIGKILL
    assert agent.kill(signal.SIGTERM) == 0
    seen = watcher.collect(lambda s: statuses(s) and statuses(s)[-1].state == "offline")
    received = readings(seen)
    assert_complete_in_order(received, upto=statuses(seen)[-1].health["outbox"]["last_seq"])
    payloads = {}
    for seq, payload in received:  # a resend is byte-identical; a reused seq would not be
        assert payloads.setdefault(seq, payload) == payload, f"seq {seq} was reused"
    # the will told the city the killed agent had vanished
    assert [s.state for s in statuses(seen)].count("offline") >= 3


def test_outbox_full_drops_oldest_and_says_so(own_broker, rig, watch):
    # the city subscribes (a persistent session the broker keeps), then the link goes down
    watcher = watch(own_broker, f"machimori/v1/river/{DEVICE}/#")
    own_broker.stop()
    agent = rig(own_broker, max_messages=10)
    agent.start()
    # 30 readings into an outbox of 10, counted on the device's own outbox file (a fixed sleep
    # would also count the agent's start-up, which a busy machine stretches)
    deadline = time.monotonic() + 30
    while agent.next_seq() < 30:
        assert time.monotonic() < deadline, "the agent took no readings while the broker was down"
        time.sleep(0.1)
    own_broker.start()
    watcher.collect(count_at_least(15))
    assert agent.kill(signal.SIGTERM) == 0
    seen = watcher.collect(lambda s: statuses(s) and statuses(s)[-1].state == "offline")
    seqs = sorted({s for s, _ in readings(seen)})
    counters = statuses(seen)[-1].health["outbox"]
    lost = sorted(set(range(counters["last_seq"] + 1)) - set(seqs))
    assert counters["dropped_full"] == len(lost) >= 15
    assert lost == list(range(len(lost))), "the oldest readings are the ones dropped"
    assert seqs == list(range(len(lost), counters["last_seq"] + 1))


def test_malformed_commands_are_rejected_and_the_agent_keeps_going(broker, rig, watch):
    import paho.mqtt.client as mqtt

    watcher = watch(broker, f"machimori/v1/river/{DEVICE}/#")
    agent = rig(broker)
    agent.start()
    watcher.collect(lambda s: statuses(s) and count_at_least(3)(s))
    city = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    city.connect(broker.host, broker.port)
    city.loop_start()
    cmd = f"machimori/v1/river/{DEVICE}/cmd"
    bad = [
        b"\x00\xff garbage",
        b"[]",
        json.dumps({"v": 1, "device": DEVICE, "seq": 1, "ts": "yesterday", "type": "x"}),
        json.dumps(
            {"v": 1, "device": DEVICE, "seq": 2, "ts": "2026-11-22T10:00:00Z"}
            | {"type": "set_interval", "data": {"interval_s": -1}}
        ),
        json.dumps(
            {"v": 1, "device": DEVICE, "seq": 3, "ts": "2026-11-22T10:00:00Z"}
            | {"type": "self_destruct", "data": {}}
        ),
    ]
    for payload in bad:
        city.publish(cmd, payload, qos=1).wait_for_publish(5)
    good = {"v": 1, "device": DEVICE, "seq": 4, "ts": "2026-11-22T10:00:00Z"}
    good |= {"type": "set_interval", "data": {"interval_s": 30}}
    city.publish(cmd, json.dumps(good), qos=1).wait_for_publish(5)
    city.loop_stop()
    city.disconnect()

    def rejected_all(seen):
        counters = statuses(seen)[-1].health["counters"] if statuses(seen) else {}
        return counters.get("cmd_rejected") == len(bad) and counters.get("cmd_applied") == 1

    seen = watcher.collect(rejected_all)
    assert rejected_all(seen), statuses(seen)[-1].health
    assert agent.proc.poll() is None, "a bad command stopped the agent"
    assert "unknown command 'self_destruct'" in statuses(seen)[-1].health["last_error"]
    assert agent.kill(signal.SIGTERM) == 0
    assert "Traceback" not in agent.log.read_text()


def test_sigterm_is_clean(broker, rig, watch):
    watcher = watch(broker, f"machimori/v1/river/{DEVICE}/status")
    agent = rig(broker)
    agent.start()
    watcher.collect(lambda s: statuses(s) and statuses(s)[-1].state == "online")
    started = time.monotonic()
    assert agent.kill(signal.SIGTERM) == 0
    assert time.monotonic() - started < 10
    final = watcher.collect(lambda s: statuses(s)[-1].state == "offline")
    assert statuses(final)[-1].state == "offline"
    assert os.path.getsize(agent.log) == 0 or "Traceback" not in agent.log.read_text()
