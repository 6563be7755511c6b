"""The LoRaWAN link: the durable outbox drained through a modem, oldest first, nothing lost, and
never more than the hourly airtime Japan allows."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.drivers.lorawan import Downlink, ModemConfig, ModemError
from edge.protocol import Envelope, Topic, utc_timestamp
from edge.protocol.airtime import dr_time_on_air
from edge.protocol.codecs import codec
from edge.runtime.clock import Clock
from edge.runtime.config import ConfigError
from edge.runtime.health import Health
from edge.runtime.host import AgentFile
from edge.runtime.lora_link import AirtimeBudget, LoraLink, LorawanConfig
from edge.runtime.outbox import Outbox

ROOT = Path(__file__).resolve().parents[2]
DEVICE = "river-07"
T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
FRAME_S = dr_time_on_air(2, 13 + 9)  # a river-v1 uplink at DR2
THREE_FRAMES = {"max_airtime_s_per_hour": 3 * FRAME_S + 0.01}  # a Join-Request is as long


class FakeModem:
    """A modem whose network the test controls; records each uplink with its clock time."""

    def __init__(self, clock: Clock):
        self.clock = clock
        self.downlinks: list[Downlink] = []
        self.sent: list[tuple[float, int, bytes, bool]] = []
        self.network_up = True
        self.join_ok = True
        self.fail_next: list[str] = []
        self.calls: list[str] = []

    def configure(self):
        self.calls.append("configure")

    def join(self):
        self.calls.append("join")
        return self.join_ok and self.network_up

    def send(self, port, payload, *, confirmed):
        self.calls.append("send")
        if self.fail_next:
            raise ModemError(self.fail_next.pop(0), "scripted")
        if confirmed and not self.network_up:
            raise ModemError("no_ack", "nobody heard it")
        self.sent.append((self.clock.monotonic(), port, payload, confirmed))

    def data_rate(self):
        return 2

    def reset(self):
        self.calls.append("reset")

    def close(self):
        self.calls.append("close")


class Rig:
    def __init__(self, tmp_path, speed=1000.0, start=T0, **config):
        self.path = tmp_path / "outbox.db"
        self.clock = Clock(speed, start=start)
        self.outbox = Outbox(self.path, DEVICE, sync="normal")
        self.health = Health(self.clock)
        self.modem = FakeModem(self.clock)
        self.commands: list[Envelope] = []
        defaults = {"retry_min_s": 30, "retry_max_s": 120, "join_retry_min_s": 60}
        self.link = LoraLink(
            LorawanConfig(**{**defaults, **config}),
            DEVICE,
            self.outbox,
            self.health,
            self.clock,
            lambda payload: self.commands.append(Envelope.from_json(payload)),
            modem=self.modem,
        )

    def reading(self, minutes: int, level_m: float = 1.0):
        ts = utc_timestamp(T0 + timedelta(minutes=minutes))
        return self.outbox.add(
            Topic("river", DEVICE, "telemetry"), "level", {"level_m": level_m, "valid": 9}, ts
        )

    def crossing(self, minutes: int):
        ts = utc_timestamp(T0 + timedelta(minutes=minutes))
        data = {"level_m": 2.0, "threshold": "caution", "direction": "rising"}
        return self.outbox.add(Topic("river", DEVICE, "event"), "level_crossing", data, ts)

    def wait(self, condition, timeout_s=10.0):
        deadline = time.monotonic() + timeout_s
        while not condition():
            assert time.monotonic() < deadline, f"timed out; {self.health.snapshot()}"
            time.sleep(0.005)

    def decoded(self):
        river = codec("river-v1")
        return [
            (river.decode(port, payload), confirmed)
            for _, port, payload, confirmed in self.modem.sent
        ]


@pytest.fixture
def rig(tmp_path):
    made = []

    def make(**kwargs):
        made.append(Rig(tmp_path, **kwargs))
        return made[-1]

    yield make
    for r in made:
        r.link.stop(0)
        r.outbox.close()


def test_oldest_first_events_confirmed_and_the_measurement_time_kept(rig):
    r = rig(confirmed="events")
    r.reading(0, 0.61)
    r.crossing(10)
    r.reading(10, 2.0)
    r.link.start()
    r.wait(lambda: r.outbox.depth == 0)
    sent = r.decoded()
    assert [(m.seq_low, m.type, confirmed) for m, confirmed in sent] == [
        (0, "level", False),
        (1, "level_crossing", True),
        (2, "level", False),
    ]
    assert [m.ts for m, _ in sent] == [T0, T0 + timedelta(minutes=10), T0 + timedelta(minutes=10)]
    assert r.health.counters["sent"] == 3


def test_an_outage_loses_nothing_and_keeps_the_order(rig):
    r = rig()  # confirmed: all
    r.link.start()
    r.reading(0)
    r.wait(lambda: r.outbox.depth == 0)
    r.modem.network_up = False
    for minute in range(10, 60, 10):
        r.reading(minute)
    r.wait(lambda: r.health.counters["lora_no_ack"] >= 3)
    assert len(r.modem.sent) == 1 and r.outbox.depth == 5
    r.modem.network_up = True
    r.wait(lambda: r.outbox.depth == 0)
    assert [m.seq_low for m, confirmed in r.decoded() if confirmed] == [0, 1, 2, 3, 4, 5]
    retries = [t for t, *_ in r.modem.sent]
    assert retries == sorted(retries)


def test_the_airtime_limit_holds_messages_in_the_outbox(rig):
    r = rig(speed=20000.0, max_airtime_s_per_hour=3 * FRAME_S + 0.01)  # three frames an hour
    for minute in range(8):
        r.reading(minute)
    r.link.start()
    r.wait(lambda: r.outbox.depth == 0, timeout_s=20)
    times = [t for t, *_ in r.modem.sent]
    assert len(times) == 8
    for i, start in enumerate(times):  # never more than three frames in any hour
        assert sum(1 for t in times[i:] if t < start + 3600) <= 3
    assert times[3] - times[0] >= 3600
    assert r.health.counters["lora_airtime_held"] >= 2


def spend_hour_and_stop(rig, **config):
    """A first run that spends the whole hour: its Join-Request and two uplinks."""
    first = rig(**config)
    first.reading(0)
    first.reading(1)
    first.link.start()
    first.wait(lambda: first.outbox.depth == 0)
    assert first.health.counters["sent"] == 2
    first.link.stop(0)
    first.outbox.close()


def started(r):
    """Start the link; the clock seconds at which it started."""
    at = r.clock.monotonic()
    r.link.start()
    return at


def test_a_restart_holds_for_the_airtime_spent_before_it(rig):
    spend_hour_and_stop(rig, speed=2000.0, **THREE_FRAMES)
    again = rig(speed=2000.0, start=T0 + timedelta(minutes=10), **THREE_FRAMES)
    again.reading(10)
    again.link.start()
    again.wait(lambda: again.health.counters["lora_airtime_held"] >= 1)
    assert again.modem.calls == ["configure"] and again.outbox.depth == 1  # not even a join
    again.wait(lambda: again.outbox.depth == 0)
    # the first run's Join-Request left the hour 50 minutes after the restart
    assert again.modem.sent[0][0] >= 50 * 60 - 1


def test_the_airtime_log_on_disk_keeps_only_the_last_hour(rig):
    r = rig(speed=20000.0, **THREE_FRAMES)
    for minute in range(8):
        r.reading(minute)
    r.link.start()
    r.wait(lambda: r.outbox.depth == 0, timeout_s=20)
    r.link.stop(0)
    with closing(sqlite3.connect(r.path)) as db:
        rows = db.execute("SELECT at_ms, seconds FROM airtime ORDER BY at_ms").fetchall()
    last_uplink_ms = (T0.timestamp() + r.modem.sent[-1][0]) * 1000
    assert len(r.modem.sent) == 8 and r.link.budget.total_s == pytest.approx(9 * FRAME_S)
    assert 1 <= len(rows) <= 3  # of 9 spends over more than two hours
    # the newest row is the last uplink's (a minute at 20000x is 3 ms of real time: 10 of slack)
    assert rows[-1][0] == pytest.approx(last_uplink_ms, abs=600_000)
    assert all(at_ms > last_uplink_ms - 3_600_000 for at_ms, _ in rows)


def test_a_clock_gone_back_counts_the_old_airtime_for_one_hour_at_most(rig):
    spend_hour_and_stop(rig, speed=2000.0, **THREE_FRAMES)
    yesterday = T0 - timedelta(days=1)  # the RTC lost its time: the restart thinks it is yesterday
    again = rig(speed=2000.0, start=yesterday, **THREE_FRAMES)
    again.reading(0)
    start = started(again)
    again.wait(lambda: again.health.counters["lora_airtime_held"] >= 1)
    assert again.modem.calls == ["configure"]  # what the first run spent still counts
    again.wait(lambda: again.outbox.depth == 0)
    held_s = again.modem.sent[0][0] - start
    # one hour, not until yesterday's clock reaches T0 (10 minutes at 2000x: 0.3 s of real slack)
    assert 3600 - 1 <= held_s < 3600 + 600
    again.link.stop(0)
    again.outbox.close()

    later = rig(speed=2000.0, start=yesterday + timedelta(hours=2, minutes=5), **THREE_FRAMES)
    later.reading(0)
    start = started(later)
    later.wait(lambda: later.outbox.depth == 0)
    assert later.health.counters["lora_airtime_held"] == 0  # the old spends were not counted twice
    assert later.modem.sent[0][0] - start < 600  # at once, not held for an hour


def test_airtime_budget_arithmetic():
    budget = AirtimeBudget(limit_s=1.0)
    assert budget.wait_s(0, 0.4) == 0
    budget.spend(0, 0.4)
    budget.spend(100, 0.4)
    assert budget.used(200) == pytest.approx(0.8)
    assert budget.wait_s(200, 0.4) == pytest.approx(3400)  # when the first frame leaves the hour
    assert budget.wait_s(3600, 0.4) == 0
    assert budget.used(3700) == 0 and budget.total_s == pytest.approx(0.8)


def test_a_message_without_a_binary_form_is_dropped_and_counted(rig):
    r = rig()
    r.outbox.add_raw(Topic("river", DEVICE, "image", "ev1"), b"\xff\xd8jpeg")
    r.outbox.add(Topic("river", DEVICE, "event"), "note", {"text": "hi"}, utc_timestamp(T0))
    r.reading(0)
    r.link.start()
    r.wait(lambda: r.outbox.depth == 0)
    assert len(r.modem.sent) == 1
    assert r.health.counters["lora_unsendable"] == 2


def test_downlinks_become_commands_and_bad_ones_are_counted(rig):
    r = rig()
    r.modem.downlinks = [Downlink(10, (300).to_bytes(4, "big")), Downlink(99, b"\x01")]
    r.reading(0)
    r.link.start()
    r.wait(lambda: r.commands and r.health.counters["cmd_rejected"])
    assert [(c.device, c.type, c.data) for c in r.commands] == [
        (DEVICE, "set_interval", {"interval_s": 300})
    ]


def test_join_retries_with_backoff_then_sends(rig):
    r = rig(speed=20000.0)
    r.modem.join_ok = False
    r.reading(0)
    r.link.start()
    r.wait(lambda: r.health.counters["lora_join_failed"] >= 3)
    r.modem.join_ok = True
    r.wait(lambda: r.outbox.depth == 0)
    assert r.modem.calls[0] == "configure"
    assert r.health.counters["lora_joins"] == 1
    assert r.link.budget.total_s >= 4 * dr_time_on_air(2, 23)  # each Join-Request cost airtime


@pytest.mark.parametrize(
    ("failure", "recovery"),
    [
        ("timeout", ["reset", "configure", "join"]),
        ("not_joined", ["join"]),
        ("port", ["configure", "join"]),
    ],
)
def test_modem_failures_recover(rig, failure, recovery, monkeypatch):
    monkeypatch.setattr("edge.runtime.lora_link.FAULT_PAUSE_S", 0.01)
    r = rig()
    r.reading(0)
    r.link.start()
    r.wait(lambda: r.outbox.depth == 0)
    r.modem.fail_next = [failure]
    r.reading(10)
    r.wait(lambda: r.outbox.depth == 0)
    calls = r.modem.calls
    after = calls[calls.index("send", calls.index("send") + 1) + 1 :]
    assert after[: len(recovery)] == recovery
    assert r.health.counters[f"lora_{failure}"] == 1


def test_busy_waits_briefly_and_sends_the_same_message(rig):
    r = rig(speed=20000.0)
    r.modem.fail_next = ["busy", "busy"]
    r.reading(0)
    r.link.start()
    r.wait(lambda: r.outbox.depth == 0)
    assert [m.seq_low for m, _ in r.decoded()] == [0]
    assert "reset" not in r.modem.calls


def test_the_host_chooses_the_link_from_the_config(tmp_path):
    path = tmp_path / "river.yaml"
    path.write_text(
        json.dumps(
            {
                "device": {"id": DEVICE, "kind": "river"},
                "agent": "river",
                "link": "lorawan",
                "lorawan": {"modem": {"model": "rak3172", "port": "/dev/ttyUSB1", "data_rate": 3}},
                "outbox": {"path": str(tmp_path / "o.db")},
            }
        )
    )
    host = AgentFile.load(path, ["river"]).host
    assert host.lorawan.modem == ModemConfig(port="/dev/ttyUSB1", data_rate=3)
    for bad, key, expected in [
        ({"link": "lorawan", "lorawan": None}, "", "needs a lorawan section"),
        ({"lorawan": {"modem": {"data_rate": 0}}}, "lorawan.modem", "data_rate must be 2..5"),
        ({"lorawan": {"codec": "nope"}}, "lorawan", "unknown codec"),
        ({"lorawan": {"max_airtime_s_per_hour": 400}}, "lorawan", "max_airtime_s_per_hour"),
    ]:
        data = json.loads(path.read_text()) | bad
        if data.get("lorawan") is None:
            del data["lorawan"]
        path.write_text(json.dumps(data))
        with pytest.raises(ConfigError) as err:
            AgentFile.load(path, ["river"])
        assert err.value.key == key and expected in str(err.value)


def test_agent_check_names_the_modem_and_refuses_a_missing_app_key(tmp_path):
    key = tmp_path / "river-02.appkey"
    config = tmp_path / "river-02.yaml"
    text = (ROOT / "configs" / "river-02.yaml").read_text()
    config.write_text(text.replace("/etc/machimori/river-02.appkey", str(key)))

    def check():
        return subprocess.run(
            [sys.executable, "-m", "machimori", "agent", "check", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
        )

    missing = check()
    assert missing.returncode == 2
    assert "lorawan.modem.app_key_file: expected a readable file" in missing.stderr
    key.write_text("not a key")
    assert "32 hex digits" in check().stderr
    key.write_text("2B7E151628AED2A6ABF7158809CF4F3C\n")
    ok = check()
    assert ok.returncode == 0, ok.stderr
    assert "LoRaWAN AS923-1 via rak3172" in ok.stdout and "DR2" in ok.stdout
    assert "2B7E" not in ok.stdout + missing.stderr
