"""The river gauge on the bench: an ultrasonic sensor over water whose level the scenario sets,
and its link, MQTT or LoRaWAN (a RAK3172 through a packet forwarder to the city's gateway).

Steps: ``level: 1.2`` (the water now) or ``level: {to_m: 3.2, over_s: 1800}`` (a rise or fall over
scenario time); ``fault: {sensor: no_echo | spikes | stuck | unplug | replug | garbage | ok}``;
``fault: {gateway: kill}`` (LoRaWAN: the gateway SIGKILLed and started again), ``{gateway: down}``
and ``{gateway: up}`` (the modem loses its network: no ACK for its uplinks until it is back).

Bench options (``bench:``): ``link`` (mqtt or lorawan), ``mount_height_m``, ``levels`` (the four
warning levels, metres), ``observe_from_m``, ``interval_s``, ``flashy``, ``start_m``.
On a real bench the water is a flat target (a board, a bucket's surface) a person holds at the
distance a level means; faults the bench cannot make are skipped with the reason.
"""

from __future__ import annotations

import dataclasses
import math
import secrets
import threading
from typing import Any

from edge.protocol.river import WARNING_KEYS
from sim.broker import free_port
from sim.devices.packet_forwarder import PacketForwarderSim
from sim.devices.river_gauge import GaugeSite, SimulatedLoraGauge
from sim.hil.city import GATEWAY
from sim.hil.kinds import Outcome, Prompt, Setup, Skip
from sim.lorawan_gateway import wait_for_udp_gateway, write_gateway_config
from sim.scenarios import Fault, ScenarioSensor

FORWARDER_EUI = 0xAA555A00000000F1
SENSOR_FAULTS = ("no_echo", "spikes", "stuck")


class DrivenRiver:
    """A river whose level the scenario sets: straight lines between the points it was given."""

    def __init__(self, start_m: float) -> None:
        self._lock = threading.Lock()
        self._legs: list[tuple[float, float, float, float]] = [(0.0, start_m, 0.0, start_m)]

    def level_at(self, t: float) -> float:
        with self._lock:
            legs = self._legs
        t0, v0, t1, v1 = next((leg for leg in reversed(legs) if leg[0] <= t), legs[0])
        if t >= t1 or t1 == t0:
            return v1
        return v0 + (v1 - v0) * (t - t0) / (t1 - t0)

    def go(self, now: float, to_m: float, over_s: float = 0.0) -> None:
        here = self.level_at(now)
        with self._lock:
            self._legs = [*self._legs, (now, here, now + over_s, to_m)]


class RiverBench:
    def __init__(self, setup: Setup) -> None:
        o = setup.options
        self.setup = setup
        self.link = o.get("link", "mqtt")
        self.mount_height_m = float(o.get("mount_height_m", 4.5))
        self.levels = tuple(float(v) for v in o.get("levels", (1.0, 1.6, 2.2, 2.8)))
        self.observe_from_m = float(o.get("observe_from_m", self.levels[0]))
        self.interval_s = float(o.get("interval_s", 600))
        self.flashy = bool(o.get("flashy", False))
        self.in_process = False
        self.real = setup.target == "real"
        self.river = DrivenRiver(float(o.get("start_m", 0.5)))
        self.sensor: ScenarioSensor | None = None
        self.gauge: SimulatedLoraGauge | None = None
        self.forwarder: PacketForwarderSim | None = None
        if self.real:
            if "sensor" not in setup.ports:
                raise ValueError("a real gauge needs --port sensor=/dev/tty...")
            if self.link == "lorawan":
                raise ValueError(
                    "a real LoRaWAN gauge needs a real concentrator: run the scenario with "
                    "link: mqtt, or point a packet forwarder at the city's gateway by hand"
                )
        elif self.link == "lorawan":
            self._start_radio()
        else:
            self.sensor = self._sensor()

    def _sensor(self, **kw: Any) -> ScenarioSensor:
        return ScenarioSensor(
            self.river,
            self.mount_height_m,
            self.setup.clock,
            seed=self.setup.seed,
            name=f"{self.setup.device}-sensor",
            frame_period_s=0.02,
            **kw,
        )

    def _start_radio(self) -> None:
        s = self.setup
        udp_port = free_port()
        self.forwarder = PacketForwarderSim(FORWARDER_EUI, ("127.0.0.1", udp_port), keepalive_s=1)
        site = GaugeSite(
            s.device,
            self.river,
            self.mount_height_m,
            self.levels,  # type: ignore[arg-type]
            self.observe_from_m,
            self.flashy,
        )
        self.gauge = SimulatedLoraGauge(
            site,
            s.clock,
            self.forwarder,
            s.workdir,
            dev_nonce=secrets.randbits(15),
            seed=s.seed,
            frame_period_s=0.02,
        )
        self.sensor = self.gauge.sensor
        config = write_gateway_config(
            s.workdir,
            GATEWAY,
            [self.gauge.registry_entry()],
            udp_port,
            s.city.mqtt_section(GATEWAY),
        )
        managed = s.processes.spawn("gateway", "gateway", "run", "--config", str(config))
        wait_for_udp_gateway(managed.log, managed.proc)
        self.forwarder.start()

    def agent_config(self) -> dict[str, Any]:
        river = {
            "sensor": {
                "model": "a02yyuw",
                "port": self.setup.ports["sensor"] if self.real else self.sensor.path,
            },
            "mount_height_m": self.mount_height_m,
            "interval_s": self.interval_s,
            "burst": 5,
            "min_valid": 3,
            "levels": dict(zip(WARNING_KEYS, self.levels, strict=True)),
            "reporting": {
                "observe_from_m": self.observe_from_m,
                "flashy": self.flashy,
                "fast_interval_s": 120 if self.flashy else 300,
            },
        }
        if self.gauge is not None:
            lora = self.gauge.agent_config()
            return {"agent": "river", "link": "lorawan", "lorawan": lora["lorawan"], "river": river}
        return {"agent": "river", "river": river}

    def act(self, action: str, value: Any) -> Outcome:
        if action == "level":
            to_m, over_s = (
                (float(value["to_m"]), float(value.get("over_s", 0)))
                if isinstance(value, dict)
                else (float(value), 0.0)
            )
            if self.real:
                distance = self.mount_height_m - to_m
                return Prompt(
                    f"hold a flat target {distance:.2f} m below the sensor's face "
                    f"(water level {to_m:.2f} m) and keep it there"
                )
            self.river.go(self.setup.clock.monotonic(), to_m, over_s)
            return None
        part, what = next(iter(value.items()))
        if part == "sensor":
            return self._sensor_fault(what)
        if part == "gateway" and what in ("kill", "down", "up"):
            if self.gauge is None:
                return Skip("this gauge sends over MQTT: it has no LoRaWAN gateway")
            if what in ("kill", "down"):  # down: the modem hears no network until "up"
                self.setup.processes.kill("gateway")
            if what in ("kill", "up"):
                self.setup.processes.restart("gateway")
            return None
        raise ValueError(f"unknown river fault {value!r}")

    def _sensor_fault(self, what: str) -> Outcome:
        if self.real:
            prompts = {
                "no_echo": "point the sensor at open sky (nothing to echo off)",
                "ok": "point the sensor back at the target",
                "unplug": "unplug the sensor's cable",
                "replug": "plug the sensor's cable back in",
            }
            if what in prompts:
                return Prompt(prompts[what])
            return Skip(f"a real sensor cannot be made to send {what!r} frames on the bench")
        sensor = self.sensor
        assert sensor is not None
        now = self.setup.clock.monotonic()
        if what in SENSOR_FAULTS:
            sensor.faults = (*sensor.faults, Fault(what, now, math.inf))  # type: ignore[arg-type]
        elif what == "ok":
            sensor.faults = tuple(
                dataclasses.replace(f, end_s=now) if f.end_s > now else f for f in sensor.faults
            )
        elif what == "unplug":
            sensor.unplug()
        elif what == "replug":
            sensor.replug()
        elif what == "garbage":
            sensor.inject_garbage(64)
        else:
            raise ValueError(f"unknown sensor fault {what!r}")
        return None

    def close(self) -> None:
        for part in (self.gauge, self.sensor, self.forwarder):
            if part is not None:
                part.close()


class RiverKind:
    name = "river"
    actions = frozenset({"level", "fault"})
    port_names = ("sensor",)
    users = ()

    def open(self, setup: Setup) -> RiverBench:
        return RiverBench(setup)


KIND = RiverKind()
