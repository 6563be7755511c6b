"""``machimori demo``: the whole system in simulation on one machine, on the embedded defaults.

Real parts everywhere, each in its own process as in the field: Mosquitto with a password per
device and the ACL of configs/mosquitto/acl; the city store with its river page, staff page and
API on SQLite; the LoRaWAN gateway with a simulated packet forwarder; river gauges reading
simulated ultrasonic sensors on ptys, two over MQTT and two over RAK3172 modems on ptys; a
wildlife camera classifying a simulated video with the real model. River time runs ``--speed``
times faster so a flood passes in a minute; the camera runs in real time.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edge.protocol.river import WARNING_KEYS
from edge.runtime.clock import Clock
from gateway.store.launch import RunningStore, start_store
from sim.broker import Mosquitto, free_port
from sim.demo_console import CityConsole
from sim.devices.camera import demo_camera
from sim.devices.packet_forwarder import PacketForwarderSim
from sim.devices.river_gauge import GaugeSite, SimulatedLoraGauge
from sim.scenarios import BaseFlow, FlashFlood, River, ScenarioSensor, flood_through_all_levels

ROOT = Path(__file__).resolve().parents[1]
ACL = ROOT / "configs" / "mosquitto" / "acl"
SITES = ROOT / "configs" / "sites.yaml"
GATEWAY_ID = "gw-01"  # configs/mosquitto/acl gives this user its devices' topics
FORWARDER_EUI = 0xAA555A0000000001
CAMERA = "camera-01"


def site_levels() -> dict[str, tuple[float, float, float, float]]:
    """The four warning levels of each site, from the same file the river page reads."""
    sites = yaml.safe_load(SITES.read_text(encoding="utf-8"))["sites"]
    return {s["device"]: tuple(s["levels_m"][k] for k in WARNING_KEYS) for s in sites}


@dataclass(frozen=True)
class MqttGauge:
    """A gauge with its own LTE/Ethernet link: the agent speaks MQTT itself."""

    device: str
    mount_height_m: float
    river: River


def stations(levels: dict[str, tuple[float, float, float, float]]) -> tuple[list, list]:
    """Four gauges: two floods through every level (one per link), a small rise, a calm river."""
    mqtt_gauges = [
        MqttGauge(
            "river-01",
            4.5,
            flood_through_all_levels(
                levels["river-01"], base_m=0.7, start_s=600, rise_s=3000, fall_s=6000
            ),
        ),
        MqttGauge("river-03", 4.5, BaseFlow(base_m=0.9)),
    ]
    lora_gauges = [
        GaugeSite(
            "river-02",
            flood_through_all_levels(
                levels["river-02"], base_m=0.5, start_s=1200, rise_s=3000, fall_s=6000
            ),
            4.1,
            levels["river-02"],
            observe_from_m=0.9,
            flashy=True,
        ),
        GaugeSite(
            "river-04",
            FlashFlood(base_m=0.4, peak_m=1.7, start_s=900, rise_s=3600, fall_s=7200),
            3.6,
            levels["river-04"],
            observe_from_m=0.8,
        ),
    ]
    return mqtt_gauges, lora_gauges


class Demo:
    def __init__(self, workdir: Path, speed: float, quiet: bool) -> None:
        self.workdir = workdir
        self.speed = speed
        self.quiet = quiet
        self.clock = Clock(speed)
        self.levels = site_levels()
        self.mqtt_gauges, self.lora_sites = stations(self.levels)
        users = [g.device for g in self.mqtt_gauges] + [CAMERA, GATEWAY_ID, "city"]
        self.passwords = {user: secrets.token_urlsafe(16) for user in users}
        self.broker = Mosquitto(
            workdir=workdir / "broker", users=self.passwords, acl=ACL.read_text()
        )
        self.hardware: list[Any] = []  # simulators to close
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.store: RunningStore | None = None

    # -- files a technician would write -------------------------------------------------------
    def _secret(self, name: str, text: str) -> Path:
        path = self.workdir / "secrets" / name
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(text)
        path.chmod(0o600)
        return path

    def _mqtt(self, user: str) -> dict[str, Any]:
        return {
            "host": self.broker.host,
            "port": self.broker.port,
            "username": user,
            "password_file": str(self._secret(f"{user}.mqtt", self.passwords[user])),
            "reconnect_min_s": 0.5,
            "reconnect_max_s": 5.0,
            "status_interval_s": 10.0,
        }

    def _write_config(self, name: str, config: dict[str, Any]) -> Path:
        path = self.workdir / "configs" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
        return path

    def _spawn(self, name: str, *args: str) -> None:
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", "machimori", *args], stdout=log, stderr=log
            )

    # -- the parts ------------------------------------------------------------------------------
    def start(self) -> None:
        """Everything but the broker, which the city console subscribes to first."""
        self.store = start_store(
            self.workdir / "store",
            self.broker.host,
            self.broker.port,
            "city",
            self.passwords["city"],
            clock_speed=self.speed,
            refresh_s=5,
        )
        self._start_gateway_and_lora_gauges()
        for gauge in self.mqtt_gauges:
            self._start_mqtt_gauge(gauge)
        self._start_camera()

    def _start_mqtt_gauge(self, gauge: MqttGauge) -> None:
        sensor = ScenarioSensor(
            gauge.river, gauge.mount_height_m, self.clock, seed=len(self.hardware)
        )
        self.hardware.append(sensor)
        config = {
            "device": {"id": gauge.device, "kind": "river"},
            "agent": "river",
            "mqtt": self._mqtt(gauge.device),
            "outbox": {"path": str(self.workdir / "outbox" / f"{gauge.device}.db")},
            "clock_speed": self.speed,
            "log_level": "info",
            "river": {
                "sensor": {"model": "a02yyuw", "port": sensor.path},
                "mount_height_m": gauge.mount_height_m,
                "burst": 5,
                "min_valid": 3,
                "levels": dict(zip(WARNING_KEYS, self.levels[gauge.device], strict=True)),
                "reporting": {"observe_from_m": 1.0},
            },
        }
        self._spawn(
            gauge.device, "agent", "run", "--config", str(self._write_config(gauge.device, config))
        )

    def _start_gateway_and_lora_gauges(self) -> None:
        udp_port = free_port()
        forwarder = PacketForwarderSim(FORWARDER_EUI, ("127.0.0.1", udp_port), keepalive_s=1.0)
        gauges = [
            SimulatedLoraGauge(
                site,
                self.clock,
                forwarder,
                self.workdir,
                dev_nonce=secrets.randbits(15),
                frame_period_s=0.05,
            )
            for site in self.lora_sites
        ]
        registry = self.workdir / "configs" / "devices.yaml"
        registry.parent.mkdir(parents=True, exist_ok=True)
        registry.write_text(yaml.safe_dump({"devices": [g.registry_entry() for g in gauges]}))
        registry.chmod(0o600)  # it holds the AppKeys
        config = {
            "gateway": {"id": GATEWAY_ID},
            "mode": "udp",
            "registry": str(registry),
            "udp": {"bind": "127.0.0.1", "port": udp_port},
            "mqtt": self._mqtt(GATEWAY_ID),
            "outbox": {"path": str(self.workdir / "gateway" / "outbox.db")},
            "state": {"path": str(self.workdir / "gateway" / "state.db")},
            "log_level": "info",
        }
        path = self._write_config(GATEWAY_ID, config)
        self._spawn(GATEWAY_ID, "gateway", "run", "--config", str(path))
        wait_for_udp_gateway(
            self.workdir / "logs" / f"{GATEWAY_ID}.log", self.processes[GATEWAY_ID]
        )
        forwarder.start()
        self.hardware += [forwarder, *gauges]
        for gauge in gauges:
            agent = gauge.write_agent_config(clock_speed=self.speed, log_level="info")
            self._spawn(gauge.site.device, "agent", "run", "--config", str(agent))

    def _start_camera(self) -> None:
        config = {
            "device": {"id": CAMERA, "kind": "camera"},
            "agent": "camera",
            "mqtt": self._mqtt(CAMERA),
            "outbox": {"path": str(self.workdir / "outbox" / f"{CAMERA}.db")},
            "log_level": "info",
            "camera": demo_camera(self.workdir),
        }
        self._spawn(CAMERA, "agent", "run", "--config", str(self._write_config(CAMERA, config)))

    def stop(self, console: CityConsole) -> list[str]:
        """Agents first (they flush their outboxes), then the gateway, then the store."""
        failed = []
        order = [n for n in self.processes if n != GATEWAY_ID] + [GATEWAY_ID]
        for name in order:
            proc = self.processes[name]
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            if code != 0:
                failed.append(name)
        time.sleep(0.5)  # the last messages and offline statuses reach the console
        console.close()
        if self.store is not None:
            self.store.stop()
        for part in self.hardware:
            part.close()
        self.broker.close()
        return failed

    def banner(self) -> str:
        b, s = self.broker, self.store
        assert s is not None
        gauges = [g.device for g in self.mqtt_gauges]
        lora = [g.device for g in self.lora_sites]
        return "\n".join(
            [
                "machimori demo — the whole system in simulation on this machine",
                f"  river page   {s.url}   (Japanese; ?lang=en for English)",
                f"  staff page   {s.staff_url}   login {s.staff_user} / {s.staff_password}",
                f"  API          {s.url}openapi.json   NGSI v2: {s.url}ngsi/v2/entities",
                f"  broker       mosquitto on {b.host}:{b.port}, a password per device, "
                f"ACL {ACL.relative_to(ROOT)}",
                f"  gauges       {', '.join(gauges)} over MQTT; {', '.join(lora)} over LoRaWAN "
                f"(RAK3172 sims -> packet forwarder -> {GATEWAY_ID})",
                f"  camera       {CAMERA}: simulated video, wildlife-v1.tflite on the device",
                f"  time         rivers at {self.speed:g}x (a 10-minute cycle every "
                f"{600 / self.speed:g} s); the camera in real time",
                f"  files        {self.workdir}/ (configs, logs, outboxes; secrets/ is 0700)",
                f"  watch it     mosquitto_sub -h {b.host} -p {b.port} -u city "
                f"-P $(cat {self.workdir}/secrets/city.mqtt) -t 'machimori/v1/#' -v",
            ]
        )


def wait_for_udp_gateway(log: Path, proc: subprocess.Popen[bytes], timeout_s: float = 20) -> None:
    """The gateway logs when its UDP socket is bound; the forwarder must not start before."""
    deadline = time.monotonic() + timeout_s
    while "listening for packet forwarders" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the gateway did not start:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)


def main(argv: list[str], prog: str = "machimori demo") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Run the whole system in simulation: broker, store and pages, LoRaWAN "
        "gateway, river gauges and a wildlife camera on simulated hardware, and a city-side "
        "console showing every message as it arrives.",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=90,
        help="real seconds to run (default 90); 0: until Ctrl-C",
    )
    parser.add_argument(
        "--speed", type=float, default=120, help="river time speed-up (default 120)"
    )
    parser.add_argument("--workdir", type=Path, default=Path("var/demo"), help="where files go")
    parser.add_argument("--quiet", action="store_true", help="print only the banner and summary")
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()
    for stale in ("outbox", "broker", "gateway", "store", "configs", "secrets"):  # a fresh run
        shutil.rmtree(workdir / stale, ignore_errors=True)
    demo = Demo(workdir, args.speed, args.quiet)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(
        "starting: broker, store, gateway, gauges, camera (rendering its video once)...", flush=True
    )
    demo.broker.start()
    console = CityConsole(demo.broker, "city", demo.passwords["city"], args.quiet)
    demo.start()
    print(demo.banner(), flush=True)
    length = "until Ctrl-C" if not args.duration else f"for {args.duration:g} s"
    print(f"\nmessages as the city receives them {length} (! marks events):", flush=True)
    stop.wait(args.duration or None)
    print("\nstopping: agents flush their outboxes and say offline, then gateway and store...")
    failed = demo.stop(console)
    print(console.summary())
    if failed:
        print(f"processes that exited with an error: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0
