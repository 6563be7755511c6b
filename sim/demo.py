"""``machimori demo``: the whole system in simulation on one machine, on the embedded defaults.

The city is provisioned first, as a technician would: ``machimori provision`` imports the
catalogue configs/demo-city.csv, writes the broker's password file and ACL, the gateway's
registry and the store's river sites, and renders each device's config and secrets.
Real parts everywhere, each in its own process as in the field: Mosquitto with a password per
device and the generated least-privilege ACL; the city store with its river page, staff page and
API on SQLite; the LoRaWAN gateway with a simulated packet forwarder; river gauges reading
simulated ultrasonic sensors on ptys, two over MQTT and two over RAK3172 modems on ptys; a
wildlife camera classifying a simulated video with the real model; a city bus on the sample GTFS-JP
feed (``sim/transit/``) with riders tapping passes on a simulated RDM6300 and cash riders entered
on its tablet. River time runs ``--speed`` times faster so a flood passes in a minute; the bus runs
on timetable time at 20x; the camera in real time.
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
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from edge.protocol.river import WARNING_KEYS
from edge.runtime.clock import Clock
from gateway.store.launch import RunningStore, start_store
from sim.broker import Mosquitto, free_port
from sim.child_day import HOMES, JST, SCHOOL, ChildDay
from sim.demo_console import CityConsole
from sim.devices.camera import demo_camera
from sim.devices.cellular_modem import CellularModemSim
from sim.devices.gnss_receiver import GnssReceiverSim
from sim.devices.packet_forwarder import PacketForwarderSim
from sim.devices.river_gauge import GaugeSite, SimulatedLoraGauge
from sim.lorawan_gateway import wait_for_udp_gateway
from sim.scenarios import BaseFlow, FlashFlood, River, ScenarioSensor, flood_through_all_levels
from sim.transit.demo_bus import DEVICE as BUS
from sim.transit.demo_bus import SPEED as BUS_SPEED
from sim.transit.demo_bus import DemoBus

ROOT = Path(__file__).resolve().parents[1]
CATALOGUE = ROOT / "configs" / "demo-city.csv"
GATEWAY_ID = "gw-01"  # the catalogue's gateway: the ACL gives it its LoRaWAN devices' topics
STORE_USER = "city"
FORWARDER_EUI = 0xAA555A0000000001
CAMERA = "camera-01"
# Three children's trackers; the third reads the GNSS inside its SIM7600 modem by AT command.
TRACKERS = ["tracker-01", "tracker-02", "tracker-03"]
TRACKER_SERVICE = "school-service"  # the catalogue's service identity: reads all, writes alerts
GUARDIAN = ("hogosha01", "mimamori-demo")  # the demo guardian's login, linked to child-01


class DemoCity:
    """The demo's provisioning home, made with the ``machimori provision`` CLI (each step in
    ``logs/provision.log``), and what its files say: passwords, keys, rendered configs."""

    def __init__(self, workdir: Path, broker: Mosquitto) -> None:
        self.workdir = workdir
        self.home = workdir / "provision"
        self.out = workdir / "city"
        self._run(
            "init", "--city", "machimori demo", "--no-tls", "--broker-host", broker.host,
            "--broker-port", str(broker.port), "--outputs", str(self.out),
            "--reload-command", "",
        )  # fmt: skip
        self._run("import", str(CATALOGUE))
        self._run("sync")
        from gateway.provision.home import Home

        self.catalogue = Home(self.home).catalogue

    def _run(self, *args: str) -> None:
        logs = self.workdir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        with open(logs / "provision.log", "ab") as log:
            command = [sys.executable, "-m", "machimori", "provision", "--home", str(self.home)]
            done = subprocess.run([*command, *args], stdout=log, stderr=log)
        if done.returncode != 0:
            raise RuntimeError(f"provision {args[0]} failed: see {logs / 'provision.log'}")

    def render(self, device: str) -> Path:
        """The device's files as under / (``provision render``); returns its /etc/machimori."""
        root = self.workdir / "devices" / device
        self._run("render", device, "--out", str(root))
        return root / "etc" / "machimori"

    def password_file(self, user: str) -> Path:
        return self.render(user) / f"{user}.mqtt"

    def password(self, user: str) -> str:
        return self.password_file(user).read_text().strip()

    def config(self, device: str) -> dict[str, Any]:
        name = "camera.yaml" if device == CAMERA else f"{device}.yaml"
        return yaml.safe_load((self.render(device) / name).read_text(encoding="utf-8"))

    def levels(self) -> dict[str, tuple[float, float, float, float]]:
        """The four warning levels of each gauge, as the catalogue has them."""
        return {
            e.id: tuple(getattr(e.levels, k) for k in WARNING_KEYS)
            for e in self.catalogue
            if e.levels is not None
        }

    def lora_keys(self, device: str) -> tuple[int, bytes]:
        """(DevEUI, AppKey) a modem is provisioned with: the catalogue's and the vault's."""
        entry = self.catalogue.get(device)
        assert entry.lorawan is not None
        app_key = (self.render(device) / f"{device}.appkey").read_text().strip()
        return int(entry.lorawan.dev_eui, 16), bytes.fromhex(app_key)


@dataclass(frozen=True)
class MqttGauge:
    """A gauge with its own LTE/Ethernet link: the agent speaks MQTT itself."""

    device: str
    mount_height_m: float
    river: River


def stations(city: DemoCity) -> tuple[list, list]:
    """Four gauges: two floods through every level (one per link), a small rise, a calm river.
    Mount heights and LoRaWAN keys are the catalogue's."""
    levels = city.levels()
    lora = {d: city.lora_keys(d) for d in ("river-02", "river-04")}
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
            dev_eui=lora["river-02"][0],
            app_key=lora["river-02"][1],
        ),
        GaugeSite(
            "river-04",
            FlashFlood(base_m=0.4, peak_m=1.7, start_s=900, rise_s=3600, fall_s=7200),
            3.6,
            levels["river-04"],
            observe_from_m=0.8,
            dev_eui=lora["river-04"][0],
            app_key=lora["river-04"][1],
        ),
    ]
    return mqtt_gauges, lora_gauges


class Demo:
    def __init__(self, workdir: Path, speed: float, quiet: bool) -> None:
        self.workdir = workdir
        self.speed = speed
        self.quiet = quiet
        self.clock = Clock(speed)
        files = workdir / "city" / "mosquitto"  # what `provision sync` writes, before it runs
        self.broker = Mosquitto(
            workdir=workdir / "broker", password_file=files / "passwd", acl_file=files / "acl"
        )
        self.city = DemoCity(workdir, self.broker)
        self.mqtt_gauges, self.lora_sites = stations(self.city)
        self.hardware: list[Any] = []  # simulators to close
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.store: RunningStore | None = None
        self.bus: DemoBus | None = None
        self.tracker_url = ""

    # -- files the provisioning CLI rendered, fitted to this machine ---------------------------
    def _mqtt(self, mqtt: dict[str, Any], user: str) -> dict[str, Any]:
        """A rendered mqtt section (or a city identity's), with its secret where render put
        it and a demo's quick reconnects."""
        return {
            **mqtt,
            "host": self.broker.host,
            "port": self.broker.port,
            "username": user,
            "password_file": str(self.city.password_file(user)),
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
            STORE_USER,
            self.city.password(STORE_USER),
            clock_speed=self.speed,
            refresh_s=5,
            sites_file=self.city.out / "sites.yaml",
            # the bus runs on timetable time, not now: its positions stay in the feed
            transit={"gtfs": str(ROOT / "sim" / "transit" / "feed"), "stale_after_s": 86400},
        )
        self._start_trackers()
        self._start_gateway_and_lora_gauges()
        for gauge in self.mqtt_gauges:
            self._start_mqtt_gauge(gauge)
        self._start_camera()
        self._start_bus()

    def _start_mqtt_gauge(self, gauge: MqttGauge) -> None:
        sensor = ScenarioSensor(
            gauge.river, gauge.mount_height_m, self.clock, seed=len(self.hardware)
        )
        self.hardware.append(sensor)
        config = self.city.config(gauge.device)
        config["mqtt"] = self._mqtt(config["mqtt"], gauge.device)
        config["outbox"] = {"path": str(self.workdir / "outbox" / f"{gauge.device}.db")}
        config |= {"clock_speed": self.speed, "log_level": "info"}
        config["river"]["sensor"]["port"] = sensor.path
        config["river"] |= {"burst": 5, "min_valid": 3}
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
        config = {
            "gateway": {"id": GATEWAY_ID},
            "mode": "udp",
            "registry": str(self.city.out / "devices.yaml"),  # written by `provision sync`
            "udp": {"bind": "127.0.0.1", "port": udp_port},
            # the city's eight-channel AS923-1 plan: the gauges take it from the CFList
            "lorawan": {"channels_mhz": [922.0, 922.2, 922.4, 922.6, 922.8, 923.0]},
            "mqtt": self._mqtt({}, GATEWAY_ID),
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
            config = self.city.config(gauge.site.device)
            config["river"] |= {"burst": 5, "min_valid": 3}
            config["river"]["reporting"] |= {"flashy": gauge.site.flashy}
            if gauge.site.flashy:
                config["river"]["reporting"]["fast_interval_s"] = 120
            fitted = gauge.fit(config, clock_speed=self.speed, log_level="info")
            agent = gauge.write_config(fitted)
            self._spawn(gauge.site.device, "agent", "run", "--config", str(agent))

    def _start_camera(self) -> None:
        config = self.city.config(CAMERA)
        config["mqtt"] = self._mqtt(config["mqtt"], CAMERA)
        config["outbox"] = {"path": str(self.workdir / "outbox" / f"{CAMERA}.db")}
        config["log_level"] = "info"
        config["camera"] = demo_camera(self.workdir)  # a simulated video instead of /dev/video0
        self._spawn(CAMERA, "agent", "run", "--config", str(self._write_config(CAMERA, config)))

    def _start_bus(self) -> None:
        assert self.store is not None
        self.bus = bus = DemoBus(self.workdir)
        self.hardware.append(bus)
        bus.register_passes(f"sqlite:///{self.store.workdir / 'store.db'}")
        config = self.city.config(BUS)  # the catalogue's bus, rendered by `provision render`
        config["mqtt"] = self._mqtt(config["mqtt"], BUS)
        secret = self.city.render(BUS) / "card-secret"  # the city's card secret, mode 0600
        secret.write_bytes(bus.secret)
        secret.chmod(0o600)
        config = bus.agent_config(config, secret)
        self._spawn(BUS, "agent", "run", "--config", str(self._write_config(BUS, config)))
        bus.start_riders()

    def _start_trackers(self) -> None:
        """The tracker service with its registry, and three children walking to school on the
        demo's clock: they leave home a simulated minute after the start, the third 40 minutes
        late (so its guardian is told it is not at school by the deadline). Today counts as a
        school day for the demo school whatever the calendar says."""
        from gateway.api.auth import hash_password
        from gateway.services.tracker_db import TrackerDb

        start = self.clock.now().astimezone(JST)
        today, leave = start.date(), (start + timedelta(minutes=1)).time()
        deadline = start + timedelta(minutes=30)  # the punctual children arrive in ~20
        work = self.workdir / "tracker"
        db = TrackerDb(work / "tracker.db")
        guardian, password = GUARDIAN
        db.add_guardian(guardian, None, "ja", hash_password(password))
        for i, device in enumerate(TRACKERS):
            child = f"child-{i + 1:02d}"
            db.add_child(child, "nagai-chuo", 0)
            db.add_device(device, child, "tracker", None)
        db.link(guardian, "child-01", 0)
        db.close()
        session = work / "session.secret"  # signs the guardians' cookies
        session.write_text(secrets.token_hex(32))
        session.chmod(0o600)
        port = free_port()
        config = {
            "database": str(work / "tracker.db"),
            "outbox": str(work / "outbox.db"),
            "mqtt": self._mqtt({}, TRACKER_SERVICE),
            "owntracks": False,  # no phones in the demo
            "client_id": "machimori-tracker-demo",
            "schools": [
                {
                    "id": "nagai-chuo",
                    "name": "長井市立中央小学校",
                    "circle": {"lat": SCHOOL[0], "lon": SCHOOL[1], "radius_m": 80},
                    "not_at_school_by": f"{deadline:%H:%M}",
                    "extra_days": [today.isoformat()],
                }
            ],
            "web": {
                "port": port,
                "secure_cookie": False,
                "session_secret_file": str(session),
            },
            "clock_speed": self.speed,
            "log_level": "info",
        }
        path = self._write_config(TRACKER_SERVICE, config)
        self._spawn(TRACKER_SERVICE, "tracker", "run", "--config", str(path))
        self.tracker_url = f"http://127.0.0.1:{port}/"
        wait_for_http(self.tracker_url + "healthz", self.processes[TRACKER_SERVICE])
        morning = self.clock
        (self.workdir / "dev").mkdir(parents=True, exist_ok=True)
        for i, device in enumerate(TRACKERS):
            late = 40.0 if i == 2 else 0.0
            day = ChildDay(today, HOMES[i], leave_home=leave, late_min=late, seed=i)
            gnss: dict[str, Any]
            if i == 2:  # this one's position comes from its modem's GNSS
                modem = CellularModemSim(
                    position=lambda sky=day.sky: _position(sky, morning),
                    name=f"modem-{device}",
                    link_dir=self.workdir / "dev",
                )
                self.hardware.append(modem)
                gnss = {"source": "sim7600"}
                modem_config: dict[str, Any] | None = {"port": modem.path}
            else:
                receiver = GnssReceiverSim(
                    day.sky,
                    morning,
                    period_s=0.1,
                    name=f"gnss-{device}",
                    link_dir=self.workdir / "dev",
                )
                self.hardware.append(receiver)
                gnss, modem_config = {"port": receiver.path}, None
            battery = self.workdir / "dev" / f"battery-{device}"
            battery.mkdir(parents=True, exist_ok=True)
            for name, value in (
                ("capacity", "87"),
                ("voltage_now", "3950000"),
                ("status", "Discharging"),
            ):
                (battery / name).write_text(value + "\n")
            config = self.city.config(device)  # as `machimori provision render` wrote it
            config["mqtt"] = self._mqtt(config["mqtt"], device)
            config["outbox"] = {"path": str(self.workdir / "outbox" / f"{device}.db")}
            config |= {"clock_speed": self.speed, "log_level": "info"}
            config |= {
                "tracker": {
                    "gnss": gnss,
                    "modem": modem_config,
                    "sos_pin": None,
                    "battery": str(battery),
                    # the demo runs at any hour: its school window is now, and its night is
                    # half a day away, so the children are looked at as on a school morning
                    "reporting": {
                        "school_windows": [f"{start:%H:%M}-{start + timedelta(hours=3):%H:%M}"],
                        "night": f"{start + timedelta(hours=12):%H:%M}-"
                        f"{start + timedelta(hours=12, minutes=1):%H:%M}",
                    },
                },
            }
            self._spawn(device, "agent", "run", "--config", str(self._write_config(device, config)))

    def stop(self, console: CityConsole) -> list[str]:
        """Agents first (they flush their outboxes), then the gateway, then the store."""
        failed = []
        order = [n for n in self.processes if n != GATEWAY_ID]
        order += [GATEWAY_ID] if GATEWAY_ID in self.processes else []  # a start cut short
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
                f"  sightings    {s.url}sightings   (harmful animals the camera saw, no photos)",
                f"  API          {s.url}docs   NGSI v2: {s.url}ngsi/v2/entities "
                f"(FIWARE clients: {s.url}ngsi)",
                f"  broker       mosquitto on {b.host}:{b.port}, a password per device and a "
                f"least-privilege ACL from `machimori provision` ({CATALOGUE.relative_to(ROOT)})",
                f"  gauges       {', '.join(gauges)} over MQTT; {', '.join(lora)} over LoRaWAN "
                f"(RAK3172 sims -> packet forwarder -> {GATEWAY_ID})",
                f"  camera       {CAMERA}: simulated video, wildlife-v1.tflite on the device",
                f"  bus          {BUS} on route M1 of sim/transit/feed at {BUS_SPEED:g}x timetable "
                "time: RDM6300 and GNSS on ptys, riders tapping passes",
                f"    tablet     {self.bus.tablet_url if self.bus else '-'}   (the driver's page)",
                f"    GTFS-RT    {s.url}gtfs-rt/vehicle-positions.pb   "
                f"{s.url}gtfs-rt/trip-updates.pb",
                f"    ridership  {s.url}staff/ridership?from=2026-01-01T00:00:00Z (staff login)",
                f"  children     {', '.join(TRACKERS)} walk to school at {self.speed:g}x "
                "(GNSS sims on ptys; the third by its SIM7600's AT+CGPSINFO, and late)",
                f"  guardian     {self.tracker_url}   login {GUARDIAN[0]} / {GUARDIAN[1]} "
                "(sees child-01 only)",
                f"  time         rivers at {self.speed:g}x (a 10-minute cycle every "
                f"{600 / self.speed:g} s); the camera in real time",
                f"  files        {self.workdir}/ (provision/ with secrets/ 0700, city/, devices/, "
                "configs, logs, outboxes)",
                f"  watch it     mosquitto_sub -h {b.host} -p {b.port} -u {STORE_USER} "
                f"-P $(cat {self.city.password_file(STORE_USER)}) -t 'machimori/v1/#' -v",
            ]
        )


def _position(sky: Any, clock: Clock) -> tuple[float, float, datetime] | None:
    """What the simulated modem's GNSS answers now: the sky's fix, or none indoors."""
    now = clock.now()
    seen = sky(now)
    return (seen.lat, seen.lon, now) if seen.fix else None


def wait_for_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """Until ``url`` answers (the tracker service has subscribed by then, so no position sent
    after this is missed)."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, OSError):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not answer") from None
            time.sleep(0.2)


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
    fresh = ("outbox", "broker", "gateway", "store", "configs", "secrets", "provision", "city")
    for stale in (*fresh, "devices", "tracker", "dev"):  # a fresh run, a freshly provisioned city
        shutil.rmtree(workdir / stale, ignore_errors=True)
    demo = Demo(workdir, args.speed, args.quiet)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(
        "starting: broker, store, child trackers, gateway, gauges, camera (rendering its video "
        "once), bus...",
        flush=True,
    )
    demo.broker.start()
    console = CityConsole(demo.broker, STORE_USER, demo.city.password(STORE_USER), args.quiet)
    try:
        demo.start()
    except BaseException:
        # a part that did not come up: stop what did, so no agent outlives the demo holding
        # its ptys (a later run's simulators would find their ports locked)
        demo.stop(console)
        raise
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
