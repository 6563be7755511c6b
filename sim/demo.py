"""``machimori demo``: the whole system in simulation on one machine, on the embedded defaults.

Real parts everywhere: a Mosquitto broker with per-device passwords and the ACL from
configs/mosquitto/acl, river gauge agents as separate processes reading simulated ultrasonic
sensors over ptys, and a city-side subscriber that prints what arrives. Time runs ``--speed``
times faster, so a 10-minute reporting cycle passes in seconds.
"""

from __future__ import annotations

import argparse
import json
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import yaml

from edge.protocol import Envelope, EnvelopeError, Status, Topic, TopicError
from edge.runtime.clock import Clock
from sim.broker import Mosquitto
from sim.devices.ultrasonic import UltrasonicSim
from sim.scenarios import FlashFlood

ROOT = Path(__file__).resolve().parents[1]
ACL = ROOT / "configs" / "mosquitto" / "acl"


@dataclass
class Gauge:
    device: str
    mount_height_m: float
    river: FlashFlood


GAUGES = [
    Gauge("river-01", 5.0, FlashFlood(base_m=0.6, peak_m=3.4, start_s=900)),
    Gauge("river-02", 4.0, FlashFlood(base_m=0.4, peak_m=2.2, start_s=1800)),
    Gauge("river-03", 4.5, FlashFlood(base_m=1.1, peak_m=4.0, start_s=600, rise_s=5400)),
]


@dataclass
class Seen:
    """What the city side has received from one device."""

    seqs: set[int] = field(default_factory=set)
    duplicates: int = 0
    last: dict[str, object] = field(default_factory=dict)
    status: str = "-"

    def gaps(self) -> int:
        return max(self.seqs) + 1 - min(self.seqs) - len(self.seqs) if self.seqs else 0


class CityConsole:
    """Subscribes as the city would and prints one line per message."""

    def __init__(self, broker: Mosquitto, password: str, quiet: bool) -> None:
        self.quiet = quiet
        self.devices: dict[str, Seen] = defaultdict(Seen)
        self.rejected = 0
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="city-console")
        self.client.username_pw_set("city", password)
        self.client.on_connect = lambda c, *_: c.subscribe("machimori/v1/#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            topic = Topic.parse(msg.topic)
            if topic.channel == "status":
                status = Status.from_json(msg.payload)
                with self.lock:
                    seen = self.devices[status.device]
                    changed, seen.status = seen.status != status.state, status.state
                if changed:  # the periodic health refresh is not news
                    self._print(f"{status.device:<10} status    {status.state}")
                return
            env = Envelope.from_json(msg.payload)
        except (TopicError, EnvelopeError) as exc:
            with self.lock:
                self.rejected += 1
            self._print(f"rejected   {msg.topic}: {exc}")
            return
        with self.lock:
            seen = self.devices[env.device]
            if env.seq in seen.seqs:
                seen.duplicates += 1
            seen.seqs.add(env.seq)
            seen.last = env.data
        measured = env.ts[11:16]
        self._print(
            f"{env.device:<10} {env.type:<9} {_describe(env.data):<28} "
            f"seq {env.seq:<4} measured {measured} UTC (simulated)"
        )

    def _print(self, line: str) -> None:
        if not self.quiet:
            print(f"  {time.strftime('%H:%M:%S')}  {line}", flush=True)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _describe(data: dict[str, object]) -> str:
    if "level_m" in data:
        return f"{data['level_m']:.3f} m above datum"
    if "missing" in data:
        return f"欠測 (missing: {data['missing']})"
    return json.dumps(data, ensure_ascii=False)[:28]


class Demo:
    def __init__(self, workdir: Path, speed: float, quiet: bool) -> None:
        self.workdir = workdir
        self.speed = speed
        self.quiet = quiet
        self.clock = Clock(speed)
        self.passwords = {g.device: secrets.token_urlsafe(16) for g in GAUGES}
        self.passwords["city"] = secrets.token_urlsafe(16)
        self.broker = Mosquitto(
            workdir=workdir / "broker", users=self.passwords, acl=ACL.read_text()
        )
        self.sims: list[UltrasonicSim] = []
        self.agents: dict[str, subprocess.Popen[bytes]] = {}

    def _sensor(self, gauge: Gauge) -> UltrasonicSim:
        def distance_mm() -> float:
            return (gauge.mount_height_m - gauge.river.level_at(self.clock.monotonic())) * 1000

        return UltrasonicSim("a02yyuw", distance_mm, noise_mm=3.0, seed=len(self.sims))

    def _agent_config(self, gauge: Gauge, sensor_path: str) -> Path:
        secret = self.workdir / "secrets" / f"{gauge.device}.mqtt"
        secret.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        secret.write_text(self.passwords[gauge.device])
        secret.chmod(0o600)
        config = {
            "device": {"id": gauge.device, "kind": "river"},
            "agent": "river",
            "mqtt": {
                "host": self.broker.host,
                "port": self.broker.port,
                "username": gauge.device,
                "password_file": str(secret),
                "reconnect_min_s": 0.5,
                "reconnect_max_s": 5.0,
            },
            "outbox": {"path": str(self.workdir / "outbox" / f"{gauge.device}.db")},
            "clock_speed": self.speed,
            "log_level": "info",
            "river": {
                "sensor": {"model": "a02yyuw", "port": sensor_path},
                "mount_height_m": gauge.mount_height_m,
                "interval_s": 600,
                "burst": 5,
                "min_valid": 3,
            },
        }
        path = self.workdir / "configs" / f"{gauge.device}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def start(self) -> CityConsole:
        self.broker.start()
        console = CityConsole(self.broker, self.passwords["city"], self.quiet)
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for gauge in GAUGES:
            sim = self._sensor(gauge)
            self.sims.append(sim)
            config = self._agent_config(gauge, sim.path)
            with open(logs / f"{gauge.device}.log", "ab") as log:
                self.agents[gauge.device] = subprocess.Popen(
                    [sys.executable, "-m", "machimori", "agent", "run", "--config", str(config)],
                    stdout=log,
                    stderr=log,
                )
        return console

    def stop_agents(self) -> None:
        for proc in self.agents.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.agents.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()

    def stop_hardware(self) -> None:
        for sim in self.sims:
            sim.close()
        self.broker.close()

    def banner(self) -> str:
        b = self.broker
        lines = [
            "machimori demo — the whole system in simulation on this machine",
            f"  broker       mosquitto on {b.host}:{b.port} (per-device passwords, ACL "
            f"{ACL.relative_to(ROOT)})",
            f"  river gauges {', '.join(g.device for g in GAUGES)}: agent processes reading "
            "simulated A02YYUW sensors on ptys",
            f"  time         {self.speed:g}x real time: one 10-minute reading every "
            f"{600 / self.speed:g} s",
            f"  files        {self.workdir}/ (configs, logs, outboxes; secrets/ is mode 0700)",
            f"  watch it     mosquitto_sub -h {b.host} -p {b.port} -u city "
            f"-P $(cat {self.workdir}/secrets/city.mqtt) -t 'machimori/v1/#' -v",
        ]
        return "\n".join(lines)


def summary(console: CityConsole, demo: Demo) -> str:
    lines = ["", "summary (what the city received):"]
    lines.append(f"  {'device':<10} {'messages':>8} {'seq':>9} {'lost':>5} {'dups':>5}  last")
    total = 0
    with console.lock:
        for device in sorted(console.devices):
            seen = console.devices[device]
            total += len(seen.seqs)
            span = f"{min(seen.seqs)}-{max(seen.seqs)}" if seen.seqs else "-"
            last = _describe(seen.last) if seen.last else "-"
            lines.append(
                f"  {device:<10} {len(seen.seqs):>8} {span:>9} {seen.gaps():>5} "
                f"{seen.duplicates:>5}  {last}; status {seen.status}"
            )
        lines.append(
            f"  {total} readings, {console.rejected} rejected; logs in {demo.workdir}/logs"
        )
    return "\n".join(lines)


def main(argv: list[str], prog: str = "machimori demo") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the whole system in simulation: broker, field agents on simulated "
        "hardware, and a city-side console showing every message as it arrives.",
    )
    parser.add_argument(
        "--duration", type=float, default=60, help="real seconds to run; 0 runs until Ctrl-C"
    )
    parser.add_argument("--speed", type=float, default=120, help="simulated time speed-up")
    parser.add_argument("--workdir", type=Path, default=Path("var/demo"), help="where files go")
    parser.add_argument("--quiet", action="store_true", help="print only the banner and summary")
    args = parser.parse_args(argv)
    for sub in ("outbox", "broker"):  # a fresh run: new seq counters, empty broker
        for old in (args.workdir / sub).glob("*"):
            old.unlink()
    demo = Demo(args.workdir.resolve(), args.speed, args.quiet)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    console = demo.start()
    print(demo.banner(), flush=True)
    print(
        "\nmessages as the city receives them (Ctrl-C to stop):"
        if not args.duration
        else f"\nmessages as the city receives them for {args.duration:g} s:",
        flush=True,
    )
    stop.wait(args.duration or None)
    print("\nstopping agents (SIGTERM: they flush their outbox and say offline)...", flush=True)
    demo.stop_agents()
    time.sleep(0.5)  # let the last messages and the offline status reach the console
    console.close()
    demo.stop_hardware()
    print(summary(console, demo))
    failed = [d for d, p in demo.agents.items() if p.returncode not in (0, None)]
    if failed:
        print(f"agents that exited with an error: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
