"""The simulated city: broker, store, LoRaWAN gateway and tracker service as the city runs them,
and the fleets of field devices: gauges, cameras and buses each an agent in its own process on its
simulated hardware; child trackers a few as real agents, the rest many to a process
(``sim/city/trackers.py``).

The city's clock starts at 06:30 on a school day that has buses (the last one up to today), so
a run of the default length sees the buses' first trips and the children walk to school, and
the city has half an hour of its time to start up before the first child leaves home.

A device kind's fleet is one small function here that starts ``n`` devices and returns them as
:class:`Device` records (name, kind, its outbox file, how it links); the rest — supervision,
faults, the report — treats every device alike.
"""

from __future__ import annotations

import secrets
import time as time_module
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import yaml

from edge.protocol.envelope import utc_timestamp
from edge.protocol.gtfs import Feed
from edge.protocol.river import WARNING_KEYS
from edge.runtime.clock import Clock
from gateway.store.launch import RunningStore
from sim.broker import Mosquitto, free_port
from sim.city import school
from sim.city.buses import trips_of
from sim.city.diskfull import SmallDisk
from sim.city.netns import Partitionable
from sim.city.trackers import children_day, tracker_name
from sim.city_children import JST, Calendar
from sim.demo import wait_for_http
from sim.devices.camera import demo_camera
from sim.devices.gnss_receiver import GnssReceiverSim
from sim.devices.packet_forwarder import PacketForwarderSim
from sim.devices.river_gauge import GaugeSite, SimulatedLoraGauge
from sim.hil.city import GATEWAY, CitySide
from sim.lorawan_gateway import wait_for_udp_gateway, write_gateway_config
from sim.processes import Processes
from sim.scenarios import BaseFlow, FlashFlood, ScenarioSensor
from sim.transit.demo_bus import FEED, ROUTE, DemoBus

BUS_CONFIG = Path(__file__).resolve().parents[2] / "configs" / "bus-01.yaml"

LEVELS = (1.0, 1.6, 2.2, 2.8)
FORWARDER_EUI = 0xAA555A00000000C1


@dataclass
class Device:
    name: str
    kind: str
    link: str  # mqtt, lorawan
    outbox: Path
    config: Path | None
    netns: Partitionable | None = None
    disk: SmallDisk | None = None
    process: str = ""  # the process it runs in (its own name, or a tracker fleet's)

    def __post_init__(self) -> None:
        self.process = self.process or self.name


@dataclass
class FleetSize:
    mqtt_gauges: int = 10
    lora_gauges: int = 10
    cameras: int = 10
    buses: int = 8
    trackers: int = 1200
    real_trackers: int = 2  # of the trackers, run as tracker agents on a GNSS pty

    def __post_init__(self) -> None:
        if not 0 <= self.real_trackers <= self.trackers:
            raise ValueError("real trackers: 0..trackers")


def city_morning(today: date) -> datetime:
    """06:30 (JST) of the last school day up to ``today`` with buses on the sample feed."""
    feed, calendar = Feed.load(FEED), Calendar()
    for back in range(30):
        day = today - timedelta(days=back)
        if calendar.school_day(day) and feed.trips_on(ROUTE, day):
            return datetime.combine(day, time(6, 30), JST)
    raise RuntimeError("no school day with buses in the last 30 days")


@dataclass
class City:
    workdir: Path
    speed: float
    size: FleetSize
    chaos: bool = False
    seed: int = 1
    epoch: datetime = field(default_factory=lambda: datetime.now(UTC))
    devices: list[Device] = field(default_factory=list)
    hardware: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.start_at = city_morning(datetime.now(JST).date())
        self.clock = Clock(self.speed, self.start_at, epoch=self.epoch)
        self.guardians: school.Guardians | None = None
        self.school_config: Path | None = None
        self.processes = Processes(self.workdir / "logs")
        self.lora_names = self._names()["lora"]
        self.partitions: list[Partitionable] = []
        if self.chaos:  # the first MQTT gauge lives behind a link the chaos can cut
            self.partitions.append(Partitionable(0))
        self.side: CitySide | None = None

    @property
    def broker(self) -> Mosquitto:
        assert self.side is not None
        return self.side.broker

    @property
    def store(self) -> RunningStore | None:
        return self.side.store if self.side is not None else None

    def _names(self) -> dict[str, list[str]]:
        s = self.size
        return {
            "mqtt": [f"river-m{i:02d}" for i in range(s.mqtt_gauges)],
            "lora": [f"river-l{i:02d}" for i in range(s.lora_gauges)],
            "camera": [f"camera-{i:02d}" for i in range(s.cameras)],
            "bus": [f"bus-{i + 1:02d}" for i in range(s.buses)],
            "tracker": [tracker_name(i) for i in range(s.trackers)],
        }

    # -- the city's parts -----------------------------------------------------------------------
    def start(self) -> None:
        names = self._names()
        self.side = CitySide(
            self.workdir / "city",
            [*names["mqtt"], *names["camera"], *names["bus"], *names["tracker"]],
            self.speed,
            self.lora_names,
            extra_hosts=tuple(p.host_address for p in self.partitions),
            clock_epoch=utc_timestamp(self.epoch),
            clock_start=utc_timestamp(self.start_at),
            transit={"gtfs": str(FEED), "stale_after_s": 600},
        )
        self.processes.adopt("broker", self.broker.proc, self.broker.log_path)
        self._adopt_store()
        if self.size.trackers:
            self._start_school()
            self._start_trackers()
        self._start_lora()
        for i, name in enumerate(names["mqtt"]):
            self._start_mqtt_gauge(i, name)
        for i, name in enumerate(names["camera"]):
            self._start_camera(i, name)
        buses = [self._start_bus(i, name) for i, name in enumerate(names["bus"])]
        for bus in buses:  # once each agent's tablet answers, its riders come
            bus.start_riders(timeout_s=60)

    def start_store(self) -> None:
        assert self.side is not None
        self.side.start_store()
        self._adopt_store()

    def _adopt_store(self) -> None:
        store = self.store
        assert store is not None
        self.processes.adopt("store", store.process, store.workdir / "store.log")

    def mqtt_section(self, user: str, **where: Any) -> dict[str, Any]:
        """A field device's settings: keepalive short enough to notice a cut network soon."""
        assert self.side is not None
        return self.side.mqtt_section(
            user,
            reconnect_min_s=0.5,
            reconnect_max_s=4.0,
            keepalive_s=10,
            status_interval_s=60.0,
            confirm_timeout_s=10.0,
            **where,
        )

    def _host_keys(self, name: str, kind: str) -> dict[str, Any]:
        return {
            "device": {"id": name, "kind": kind},
            **self.clock_keys(),
            "log_level": "info",
        }

    def clock_keys(self) -> dict[str, Any]:
        """The city's clock, for every process's config: the same time everywhere."""
        return {
            "clock_speed": self.speed,
            "clock_epoch": utc_timestamp(self.epoch),
            "clock_start": utc_timestamp(self.start_at),
        }

    def _write(self, name: str, config: dict[str, Any]) -> Path:
        path = self.workdir / "configs" / f"{name}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def _river(self, i: int) -> Any:
        """Every third gauge sees a storm through all four levels; the rest a calm river."""
        if i % 3 == 0:
            return FlashFlood(0.6, 3.0, start_s=1800 + 600 * i, rise_s=3 * 3600, fall_s=6 * 3600)
        return BaseFlow(base_m=0.5 + 0.05 * i)

    def _start_mqtt_gauge(self, i: int, name: str) -> None:
        sensor = ScenarioSensor(
            self._river(i), 4.5, self.clock, seed=i, name=f"{name}-sensor", frame_period_s=0.05
        )
        self.hardware.append(sensor)
        netns = self.partitions[0] if self.partitions and i == 0 else None
        disk = None
        outbox = self.workdir / "outbox" / f"{name}.db"
        if self.chaos and i == 1:  # the second lives on a disk the chaos can fill
            disk = SmallDisk(self.workdir / "disks" / name)
            outbox = disk.path / "outbox.db"
        where = {"host": netns.host_address, "port": self.side.extra_port} if netns else {}
        mqtt = self.mqtt_section(name, **where)
        config = {
            **self._host_keys(name, "river"),
            "agent": "river",
            "mqtt": mqtt,
            "outbox": {"path": str(outbox), "sync": "normal"},
            "river": {
                "sensor": {"model": "a02yyuw", "port": sensor.path},
                "mount_height_m": 4.5,
                "interval_s": 600,
                "burst": 3,
                "min_valid": 2,
                "levels": dict(zip(WARNING_KEYS, LEVELS, strict=True)),
                # every reading sent: the report counts messages, not the policy's silence
                "reporting": {"observe_from_m": 0.0},
            },
        }
        path = self._write(name, config)
        prefix = netns.prefix if netns else ()
        self.processes.spawn(name, "agent", "run", "--config", str(path), prefix=prefix)
        self.devices.append(Device(name, "river", "mqtt", outbox, path, netns, disk))

    def _start_lora(self) -> None:
        if not self.lora_names:
            return
        udp_port = free_port()
        forwarder = PacketForwarderSim(FORWARDER_EUI, ("127.0.0.1", udp_port), keepalive_s=1.0)
        gauges = []
        for i, name in enumerate(self.lora_names):
            site = GaugeSite(name, self._river(i), 4.1, LEVELS, observe_from_m=0.0)
            gauges.append(
                SimulatedLoraGauge(
                    site,
                    self.clock,
                    forwarder,
                    self.workdir,
                    dev_nonce=secrets.randbits(15),
                    seed=100 + i,
                    frame_period_s=0.05,
                )
            )
        config = write_gateway_config(
            self.workdir,
            GATEWAY,
            [g.registry_entry() for g in gauges],
            udp_port,
            self.mqtt_section(GATEWAY),
        )
        managed = self.processes.spawn(GATEWAY, "gateway", "run", "--config", str(config))
        wait_for_udp_gateway(managed.log, managed.proc)
        forwarder.start()
        self.hardware += [forwarder, *gauges]
        for gauge in gauges:
            name = gauge.site.device
            config = gauge.agent_config(
                river={"interval_s": 600, "burst": 3, "min_valid": 2},
                **self._host_keys(name, "river"),
            )
            config["outbox"]["sync"] = "normal"
            path = self._write(name, config)
            self.processes.spawn(name, "agent", "run", "--config", str(path))
            outbox = Path(config["outbox"]["path"])
            self.devices.append(Device(name, "river", "lorawan", outbox, path))

    def _start_camera(self, i: int, name: str) -> None:
        section = demo_camera(self.workdir)  # rendered once, shared by every camera
        section["storage"] = {"dir": str(self.workdir / "camera" / name), "max_bytes": 50 * 2**20}
        config = {
            **self._host_keys(name, "camera"),
            "agent": "camera",
            "mqtt": self.mqtt_section(name),
            "outbox": {"path": str(self.workdir / "outbox" / f"{name}.db"), "sync": "normal"},
            "camera": section,
        }
        path = self._write(name, config)
        self.processes.spawn(name, "agent", "run", "--config", str(path))
        self.devices.append(
            Device(name, "camera", "mqtt", path.parent.parent / "outbox" / f"{name}.db", path)
        )

    # -- buses ----------------------------------------------------------------------------------
    def _start_bus(self, i: int, name: str) -> DemoBus:
        assert self.store is not None
        day_trips = Feed.load(FEED).trips_on(ROUTE, self.start_at.date())
        bus = DemoBus(
            self.workdir / "bus",
            seed=i + 1,
            device=name,
            trips=trips_of(i, len(day_trips)),
            clock=self.clock,
        )
        self.hardware.append(bus)
        bus.register_passes(f"sqlite:///{self.store.workdir / 'store.db'}")
        secret = self.workdir / "city" / "secrets" / f"{name}.card-secret"
        secret.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        secret.write_bytes(bus.secret)
        secret.chmod(0o600)
        rendered = yaml.safe_load(BUS_CONFIG.read_text(encoding="utf-8"))
        config = bus.agent_config(rendered, secret) | {
            **self._host_keys(name, "bus"),
            "agent": "bus",
            "mqtt": self.mqtt_section(name),
        }
        config["outbox"] |= {"sync": "normal"}
        config["bus"]["tablet"] = {"bind": "127.0.0.1", "port": bus.tablet_port}
        path = self._write(name, config)
        self.processes.spawn(name, "agent", "run", "--config", str(path))
        self.devices.append(Device(name, "bus", "mqtt", Path(config["outbox"]["path"]), path))
        return bus

    # -- children -------------------------------------------------------------------------------
    def _start_school(self) -> None:
        """The tracker service and its registry, before any tracker sends."""
        assert self.side is not None
        work = self.workdir / "school"
        work.mkdir(parents=True, exist_ok=True)
        school.register(work / "tracker.db", self.size.trackers, self.seed, self.start_at.date())
        self.guardians = school.Guardians(school.secret_file(work / "webhook.secret"))
        port = free_port()
        self.school_config = school.school_config(
            work, self.mqtt_section("city"), self.clock_keys(), self.guardians.url, port
        )
        managed = self.processes.spawn(
            school.SERVICE, "tracker", "run", "--config", str(self.school_config)
        )
        wait_for_http(f"http://127.0.0.1:{port}/healthz", managed.proc)

    def _start_trackers(self) -> None:
        size = self.size
        day = self.start_at.date()
        real = size.real_trackers
        fixes = children_day(size.trackers, day, self.seed).day(day) if real else []
        (self.workdir / "dev").mkdir(parents=True, exist_ok=True)
        for i in range(real):
            name = tracker_name(i)
            mine = [(t, x, y) for t, child, x, y, _ in fixes if child == i]
            receiver = GnssReceiverSim(
                school.sky_of(mine), self.clock, period_s=0.2, name=f"gnss-{name}",
                link_dir=self.workdir / "dev",
            )  # fmt: skip
            self.hardware.append(receiver)
            outbox = self.workdir / "outbox" / f"{name}.db"
            config = {
                **self._host_keys(name, "tracker"),
                "agent": "tracker",
                "mqtt": self.mqtt_section(name),
                "outbox": {"path": str(outbox), "sync": "normal"},
                "tracker": {"gnss": {"port": receiver.path}, "modem": None, "sos_pin": None},
            }
            path = self._write(name, config)
            self.processes.spawn(name, "agent", "run", "--config", str(path))
            self.devices.append(Device(name, "tracker", "mqtt", outbox, path))
        for first in range(real, size.trackers, school.PER_PROCESS):
            count = min(school.PER_PROCESS, size.trackers - first)
            fleet = f"trackers-{first:04d}"
            mqtt = self.mqtt_section("city")
            for key in ("username", "password_file"):
                mqtt.pop(key)
            # a tracker's own link settings (configs/tracker-0042.yaml): over LTE a long
            # keepalive and a rare status save radio wake-ups, and 1,200 of them the broker
            mqtt |= {"keepalive_s": 300, "status_interval_s": 1800.0}
            config = {
                "children": size.trackers,
                "first": first,
                "count": count,
                "day": day.isoformat(),
                "seed": self.seed,
                **self.clock_keys(),
                "mqtt": mqtt,
                "secrets_dir": str(self.workdir / "city" / "secrets"),
                "outbox_dir": str(self.workdir / "outbox"),
                "log_level": "info",
            }
            for i in range(first, first + count):
                self.mqtt_section(tracker_name(i))  # writes its password file
            path = self._write(fleet, config)
            self.processes.spawn(fleet, "sim", "trackers", "--config", str(path))
            for i in range(first, first + count):
                name = tracker_name(i)
                outbox = self.workdir / "outbox" / f"{name}.db"
                self.devices.append(Device(name, "tracker", "mqtt", outbox, None, process=fleet))

    def store_url(self) -> str:
        assert self.store is not None
        return f"sqlite:///{self.store.workdir / 'store.db'}"

    def school_report(self, limit_s: float = 60.0) -> school.SchoolReport:
        """Once the service has every position the store holds and told every guardian (or
        ``limit_s`` passed), it stops, and its day is checked."""
        assert self.school_config is not None and self.guardians is not None
        assert self.store is not None
        store_db = self.store.workdir / "store.db"
        deadline = time_module.monotonic() + limit_s
        while time_module.monotonic() < deadline:
            held, pending = school.service_state(self.school_config)
            if held >= school.stored_positions(store_db) and not pending:
                break
            time_module.sleep(1.0)
        self.processes.stop(school.SERVICE)
        day = self.start_at.date().isoformat()
        return school.check(self.school_config, store_db, self.guardians, day)

    def supervise(self) -> list[str]:
        """Restart agents and the gateway that exited (systemd's Restart=always); their names."""
        restarted = []
        for name, managed in self.processes.running.items():
            if name in ("broker", "store") or managed.proc.poll() is None:
                continue
            self.processes.restart(name)
            restarted.append(name)
        return restarted

    def stop(self) -> dict[str, int]:
        """Agents first (each flushes), then the gateway, the store, the broker; exit codes."""
        codes = {}
        for process in dict.fromkeys(d.process for d in self.devices):
            codes[process] = self.processes.stop(process, timeout_s=60)
        if GATEWAY in self.processes.running:
            codes[GATEWAY] = self.processes.stop(GATEWAY)
        return codes

    def close(self) -> None:
        self.processes.sample()
        for name in list(self.processes.running):  # whatever a failed start or a test left
            if name not in ("broker", "store"):
                self.processes.stop(name, timeout_s=10)
        if self.guardians is not None:
            self.guardians.close()
        if self.side is not None:
            self.side.close()
        for part in self.hardware:
            part.close()
        for device in self.devices:
            if device.disk is not None:
                device.disk.close()
        for p in self.partitions:
            p.close()
