"""The simulated city: broker, store and LoRaWAN gateway as the city runs them, and the fleet of
field devices, each agent in its own process on its simulated hardware.

A device kind's fleet is one small function here that starts ``n`` devices and returns them as
:class:`Device` records (name, kind, its outbox file, how it links); the rest — supervision,
faults, the report — treats every device alike.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from edge.protocol.envelope import utc_timestamp
from edge.protocol.river import WARNING_KEYS
from edge.runtime.clock import Clock
from gateway.store.launch import RunningStore
from sim.broker import Mosquitto, free_port
from sim.city.diskfull import SmallDisk
from sim.city.netns import Partitionable
from sim.devices.camera import demo_camera
from sim.devices.packet_forwarder import PacketForwarderSim
from sim.devices.river_gauge import GaugeSite, SimulatedLoraGauge
from sim.hil.city import GATEWAY, CitySide
from sim.lorawan_gateway import wait_for_udp_gateway, write_gateway_config
from sim.processes import Processes
from sim.scenarios import BaseFlow, FlashFlood, ScenarioSensor

LEVELS = (1.0, 1.6, 2.2, 2.8)
FORWARDER_EUI = 0xAA555A00000000C1


@dataclass
class Device:
    name: str
    kind: str
    link: str  # mqtt, lorawan
    outbox: Path
    config: Path
    netns: Partitionable | None = None
    disk: SmallDisk | None = None


@dataclass
class FleetSize:
    mqtt_gauges: int = 10
    lora_gauges: int = 10
    cameras: int = 10


@dataclass
class City:
    workdir: Path
    speed: float
    size: FleetSize
    chaos: bool = False
    epoch: datetime = field(default_factory=lambda: datetime.now(UTC))
    devices: list[Device] = field(default_factory=list)
    hardware: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.clock = Clock(self.speed, epoch=self.epoch)
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
        }

    # -- the city's parts -----------------------------------------------------------------------
    def start(self) -> None:
        names = self._names()
        self.side = CitySide(
            self.workdir / "city",
            [*names["mqtt"], *names["camera"]],
            self.speed,
            self.lora_names,
            extra_hosts=tuple(p.host_address for p in self.partitions),
            clock_epoch=utc_timestamp(self.epoch),
        )
        self.processes.adopt("broker", self.broker.proc, self.broker.log_path)
        self._adopt_store()
        self._start_lora()
        for i, name in enumerate(names["mqtt"]):
            self._start_mqtt_gauge(i, name)
        for i, name in enumerate(names["camera"]):
            self._start_camera(i, name)

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
            "clock_speed": self.speed,
            "clock_epoch": utc_timestamp(self.epoch),
            "log_level": "info",
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
        for device in self.devices:
            codes[device.name] = self.processes.stop(device.name)
        if GATEWAY in self.processes.running:
            codes[GATEWAY] = self.processes.stop(GATEWAY)
        return codes

    def close(self) -> None:
        self.processes.sample()
        if self.side is not None:
            self.side.close()
        for part in self.hardware:
            part.close()
        for device in self.devices:
            if device.disk is not None:
                device.disk.close()
        for p in self.partitions:
            p.close()
