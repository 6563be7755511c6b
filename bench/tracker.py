"""Child tracker benchmark: the city side's fixes per second, the agent's footprint, bytes per day.

1. **City side, one core**: tracker envelopes (JSON bytes as they come off MQTT) for ``--children``
   children, each walking into and out of one of three schools, go through the whole school
   service in batches of 1,000 — envelope and position validation, storage with its index,
   geofencing with debounce, alerts and their notification rows — against the *bare ingest
   path* in the same run: the same bytes parsed as envelopes and stored, nothing else.
   Goal: 10,000 fixes/s (300,000 children at one fix every 30 s on one node).
2. **The agent**: ``machimori agent run`` as a separate process reading a simulated receiver on a
   pty at 1 Hz and sending through a real Mosquitto: its RSS and CPU share over ``--agent-s``.
3. **Data per child-day**: the agent's own reporting policy and message encoding over simulated
   school days (``sim/child_day.py``, several children), in messages and bytes including MQTT
   framing, against the naive "a position every 30 s" baseline.

    python bench/tracker.py [--children 3000] [--fixes 60] [--agent-s 20]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import paho.mqtt.client as mqtt  # noqa: E402
import psutil  # noqa: E402
import yaml  # noqa: E402

from edge.agents.tracker.config import ReportingConfig  # noqa: E402
from edge.agents.tracker.reporting import ReportingPolicy  # noqa: E402
from edge.drivers.gnss import Fix  # noqa: E402
from edge.protocol import Envelope, Topic, utc_timestamp  # noqa: E402
from edge.protocol.tracker import Position  # noqa: E402
from edge.runtime.clock import Clock  # noqa: E402
from gateway.services.school import Pipeline  # noqa: E402
from gateway.services.tracker_config import CircleConfig, FenceConfig, SchoolConfig  # noqa: E402
from gateway.services.tracker_db import TrackerDb  # noqa: E402
from sim.broker import Mosquitto  # noqa: E402
from sim.child_day import HOMES, JST, SCHOOL, ChildDay  # noqa: E402
from sim.devices.gnss_receiver import GnssReceiverSim  # noqa: E402

BATCH = 1000
M = 111_195.0
SCHOOLS = [
    SchoolConfig(
        f"school-{i}", f"school {i}", circle=CircleConfig(SCHOOL[0] + i * 0.02, SCHOOL[1], 80)
    )
    for i in range(3)
]


def payloads(children: int, fixes: int) -> list[bytes]:
    """Every child walks 600 m to its school at 1.2 m/s, fixes 30 s apart, in time order."""
    start = datetime(2026, 12, 1, 7, 30, tzinfo=JST)
    out = []
    for k in range(fixes):
        at = utc_timestamp(start + timedelta(seconds=30 * k))
        metres = max(0.0, 600 - 36 * k)
        for c in range(children):
            school = SCHOOLS[c % len(SCHOOLS)].circle
            assert school is not None
            data = Position(school.lat + metres / M, school.lon + (c % 50) * 1e-5, 5.0, 1.2).data()
            out.append(Envelope(f"kid-{c:06d}", k, at, "position", data).to_json())
    return out


def setup(path: Path, children: int) -> TrackerDb:
    db = TrackerDb(path)
    for c in range(children):
        db.add_child(f"child-{c:06d}", SCHOOLS[c % len(SCHOOLS)].id, 0)
        db.add_device(f"kid-{c:06d}", f"child-{c:06d}", "tracker", None)
        db.add_guardian(f"g-{c:06d}", f"g{c}@example.jp", "ja", None)
        db.link(f"g-{c:06d}", f"child-{c:06d}", 0)
    return db


def bare(db: TrackerDb, data: list[bytes]) -> float:
    started = time.process_time()
    for i in range(0, len(data), BATCH):
        rows = []
        for payload in data[i : i + BATCH]:
            env = Envelope.from_json(payload)
            d = env.data
            rows.append(
                ("c", env.ts_ms, env.device, env.seq, d["lat"], d["lon"], d.get("acc"), "gnss")
            )
        with db.tx() as cur:
            db.insert_positions(cur, rows)
    return time.process_time() - started


def full(db: TrackerDb, data: list[bytes]) -> tuple[float, Pipeline]:
    now = int(datetime(2026, 12, 1, 9, 0, tzinfo=JST).timestamp() * 1000)
    pipeline = Pipeline(db, SCHOOLS, FenceConfig(), JST, ["email", "webhook"], lambda: now)
    started = time.process_time()
    for i in range(0, len(data), BATCH):
        pipeline.handle([Envelope.from_json(p) for p in data[i : i + BATCH]])
    return time.process_time() - started, pipeline


def city_side(children: int, fixes: int, work: Path) -> None:
    data = payloads(children, fixes)
    n = len(data)
    t_bare = bare(setup(work / "bare.db", children), data)
    db = setup(work / "full.db", children)
    t_full, pipeline = full(db, data)
    arrivals = pipeline.counters.get("alert_school_arrival", 0)
    notes = db.notification_counts()["pending"]
    print(f"city side, one core, {n:,} fixes of {children:,} children:")
    print(f"  bare ingest (parse + store):          {n / t_bare:>9,.0f} fixes/s")
    print(
        f"  school service (validate, store, fence, alert, queue): {n / t_full:>9,.0f} fixes/s"
        f"  = {t_bare / t_full:.2f} of the bare path"
    )
    print(
        f"  arrivals decided: {arrivals:,} (of {children:,} children), "
        f"notifications queued: {notes:,}"
    )
    print(f"  goal 10,000 fixes/s: {'met' if n / t_full >= 10_000 else 'NOT met'}")


def agent(seconds: float, work: Path) -> None:
    child = ChildDay(date(2026, 12, 1), HOMES[0], seed=1)
    walking = Clock(1.0, start=datetime(2026, 12, 1, 7, 36, tzinfo=JST))  # on the way to school
    with Mosquitto() as broker, GnssReceiverSim(child.sky, walking, period_s=1.0) as receiver:
        config = {
            "device": {"id": "tracker-bench", "kind": "tracker"},
            "agent": "tracker",
            "mqtt": {"host": broker.host, "port": broker.port},
            "outbox": {"path": str(work / "agent-outbox.db"), "sync": "normal"},
            "tracker": {
                "gnss": {"port": receiver.path},
                "modem": None,
                "sos_pin": None,
                "battery": None,
                # the busiest pace all day (weekdays): a look every 15 s, as on the way to school
                "reporting": {"school_windows": ["00:00-23:59"], "night": "23:59-00:00"},
            },
        }
        path = work / "tracker.yaml"
        path.write_text(yaml.safe_dump(config))
        process = subprocess.Popen(
            [sys.executable, "-m", "machimori", "agent", "run", "--config", str(path)],
            stderr=subprocess.DEVNULL,
        )
        heard: list[bytes] = []
        listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-listener")
        listener.on_connect = lambda c, *_: c.subscribe("machimori/v1/tracker/+/telemetry", 1)
        listener.on_message = lambda _c, _u, msg: heard.append(msg.payload)
        listener.connect(broker.host, broker.port)
        listener.loop_start()
        try:
            proc = psutil.Process(process.pid)
            time.sleep(3)  # imports and first fix
            cpu0 = proc.cpu_times()
            wall0 = time.monotonic()
            time.sleep(seconds)
            cpu1 = proc.cpu_times()
            share = ((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system)) / (
                time.monotonic() - wall0
            )
            rss = proc.memory_info().rss
        finally:
            process.terminate()
            process.wait(10)
            listener.loop_stop()
        positions = sum(b'"type":"position"' in p for p in heard)
    print(
        f"agent process at its school-window pace (weekdays), NMEA at 1 Hz, over {seconds:g} s: "
        f"RSS {rss / 2**20:.1f} MiB, "
        f"CPU {100 * share:.2f} % of one core; {positions} positions sent"
    )


def mqtt_bytes(topic: str, payload: bytes) -> int:
    """PUBLISH QoS 1 (fixed header, topic, packet id, payload) plus its PUBACK (4 bytes)."""
    remaining = 2 + len(topic) + 2 + len(payload)
    length_bytes = 1 if remaining < 128 else 2 if remaining < 16384 else 3
    return 1 + length_bytes + remaining + 4


def day_of_data(children: int) -> None:
    topic = str(Topic("tracker", "tracker-0042", "telemetry"))
    config = ReportingConfig()
    totals = {"policy": [0, 0], "every 30 s": [0, 0]}
    for seed in range(children):
        child = ChildDay(date(2026, 12, 1), HOMES[seed % len(HOMES)], seed=seed)
        policy = ReportingPolicy(config)
        start = datetime(2026, 12, 1, 0, 0, tzinfo=JST)
        t, seq = 0.0, 0
        while t < 86400:
            at = start + timedelta(seconds=t)
            sky = child.sky(at)
            fix = (
                Fix(at.astimezone(UTC), sky.lat, sky.lon, hdop=sky.hdop, satellites=sky.satellites)
                if sky.fix
                else None
            )
            decision = policy.decide(fix, at, t)
            if decision.send and fix is not None:
                data = Position(
                    fix.lat,
                    fix.lon,
                    fix.accuracy_m,
                    fix.speed_mps,
                    "gnss",
                    decision.why,
                    fix.hdop,
                    fix.satellites,
                ).data()
                payload = Envelope(
                    "tracker-0042", seq, utc_timestamp(at), "position", data
                ).to_json()
                totals["policy"][0] += 1
                totals["policy"][1] += mqtt_bytes(topic, payload)
                seq += 1
            t += decision.next_in_s
        # state (battery + link) every 30 minutes
        state = Envelope(
            "tracker-0042",
            seq,
            utc_timestamp(start),
            "state",
            {
                "gnss": "fix",
                "pct": 81,
                "v": 3.92,
                "chg": False,
                "rssi": -85,
                "reg": "home",
                "sim": "ready",
                "cycles": 0,
            },
        ).to_json()
        totals["policy"][0] += 48
        totals["policy"][1] += 48 * mqtt_bytes(
            str(Topic("tracker", "tracker-0042", "telemetry")), state
        )
        naive = Envelope(
            "tracker-0042",
            1234,
            utc_timestamp(start),
            "position",
            Position(SCHOOL[0], SCHOOL[1], 4.5, 1.1, "gnss", "moving", 0.9, 8).data(),
        ).to_json()
        totals["every 30 s"][0] += 2880
        totals["every 30 s"][1] += 2880 * mqtt_bytes(topic, naive)
    p_msgs, p_bytes = (v / children for v in totals["policy"])
    n_msgs, n_bytes = (v / children for v in totals["every 30 s"])
    print(f"per child-day ({children} simulated school days, MQTT framing included, TLS not):")
    print(f"  adaptive policy: {p_msgs:,.0f} messages, {p_bytes / 1024:,.1f} KiB")
    print(
        f"  every 30 s:      {n_msgs:,.0f} messages, {n_bytes / 1024:,.1f} KiB "
        f"(the policy sends {p_bytes / n_bytes:.2f} of it)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, default=3000)
    parser.add_argument("--fixes", type=int, default=60, help="fixes per child (30 s apart)")
    parser.add_argument("--agent-s", type=float, default=20.0)
    parser.add_argument("--days", type=int, default=8, help="simulated child-days for bytes/day")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-tracker-") as tmp:
        work = Path(tmp)
        city_side(args.children, args.fixes, work)
        day_of_data(args.days)
        agent(args.agent_s, work)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
    sys.exit(main())
