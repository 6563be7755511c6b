"""A simulated LoRaWAN river gauge site, whole: the river, the ultrasonic sensor and the RAK3172
modem on ptys, the keys the modem was provisioned with, and the files a technician would write
for it (the agent's config, the AppKey file, the gateway registry's entry).

The demo and the tests build their gauges from this, so what they run is what a site runs:

    forwarder = PacketForwarderSim(GATEWAY_EUI, ("127.0.0.1", 1700)).start()
    gauge = SimulatedLoraGauge(site, clock, forwarder, workdir)
    registry = {"devices": [gauge.registry_entry()]}          # the gateway's devices.yaml
    config = gauge.write_agent_config(clock_speed=clock.speed)  # machimori agent run --config
"""

from __future__ import annotations

import copy
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edge.protocol.river import WARNING_KEYS
from edge.runtime.clock import Clock
from sim.devices.lorawan_modem import Keys, ModemRadio
from sim.devices.packet_forwarder import PacketForwarderSim
from sim.devices.rak3172 import Rak3172Sim
from sim.scenarios import River, ScenarioSensor


@dataclass(frozen=True)
class GaugeSite:
    """Where a gauge stands and what its river does; levels in metres above the gauge datum."""

    device: str
    river: River
    mount_height_m: float
    levels: tuple[float, float, float, float]  # standby, caution, evacuation, danger
    observe_from_m: float
    flashy: bool = False
    dev_eui: int = field(default_factory=lambda: 0xAC1F09FF00000000 | secrets.randbits(24))
    app_key: bytes = field(default_factory=lambda: secrets.token_bytes(16), repr=False)


class SimulatedLoraGauge:
    """A site's hardware on ptys. ``sensor`` and ``modem`` are running; ``close()`` stops them.

    ``dev_nonce``: the modem's first DevNonce; a gateway whose state remembers an earlier run of
    the same DevEUI refuses DevNonces it has seen, so a fresh run passes a fresh value.
    """

    def __init__(
        self,
        site: GaugeSite,
        clock: Clock,
        forwarder: PacketForwarderSim,
        workdir: str | os.PathLike[str],
        *,
        rx_window_s: float = 1.0,
        dev_nonce: int = 0,
        seed: int | None = None,
        **sensor: Any,
    ) -> None:
        """``sensor``: ``ScenarioSensor`` options (faults, noise_mm, air_c, frame_period_s...)."""
        self.site = site
        self.workdir = Path(workdir)
        self.keys = Keys(site.dev_eui, site.app_key)
        self.sensor = ScenarioSensor(
            site.river,
            site.mount_height_m,
            clock,
            seed=seed,
            name=f"{site.device}-sensor",
            **sensor,
        )
        radio = ModemRadio(
            self.keys, forwarder, rx_window_s=rx_window_s, dev_nonce=dev_nonce, seed=seed
        )
        self.modem = Rak3172Sim(radio, name=f"{site.device}-modem")

    def registry_entry(self) -> dict[str, Any]:
        """The gateway registry's entry for this gauge (configs/devices.yaml format)."""
        return {
            "id": self.site.device,
            "kind": "river",
            "codec": "river-v1",
            "dev_eui": f"{self.keys.dev_eui:016X}",
            "otaa": {"join_eui": "0000000000000000", "app_key": self.keys.app_key.hex()},
        }

    def write_app_key(self) -> Path:
        secrets_dir = self.workdir / "secrets"
        secrets_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = secrets_dir / f"{self.site.device}.appkey"
        path.write_text(self.keys.app_key.hex().upper() + "\n")
        path.chmod(0o600)
        return path

    def fit(self, config: dict[str, Any], **host: Any) -> dict[str, Any]:
        """A config written for the real site (as ``machimori provision render`` writes it),
        pointed at this site's simulated hardware: the modem's and the sensor's ptys, the AppKey
        file, a simulated radio's timeouts, an outbox in the workdir. ``host``: top-level keys
        to add or replace (``clock_speed``...)."""
        config = copy.deepcopy(config)
        config["lorawan"]["modem"] |= {
            "port": self.modem.path,
            "app_key_file": str(self.write_app_key()),
            "command_timeout_s": 2.0,
            "send_timeout_s": 10.0,
            "join_timeout_s": 10.0,
        }
        config["river"]["sensor"] = {**config["river"].get("sensor", {}), "port": self.sensor.path}
        outbox = {"path": str(self.workdir / "outbox" / f"{self.site.device}.db")}
        config["outbox"] = {**config.get("outbox", {}), **outbox}
        return {**config, **host}

    def agent_config(self, *, river: dict[str, Any] | None = None, **host: Any) -> dict[str, Any]:
        """The agent's config, as configs/river-02.yaml but for this site's ptys. ``river`` adds
        to or replaces keys of the river section, ``host`` top-level keys (``clock_speed``...)."""
        site = self.site
        config = {
            "device": {"id": site.device, "kind": "river"},
            "agent": "river",
            "link": "lorawan",
            "lorawan": {
                "modem": {
                    "model": "rak3172",
                    "dev_eui": f"{self.keys.dev_eui:016X}",
                    "join_eui": "0000000000000000",
                },
                "retry_max_s": 300,
            },
            "river": {
                "sensor": {"model": "a02yyuw"},
                "mount_height_m": site.mount_height_m,
                "burst": 5,
                "min_valid": 3,
                "levels": dict(zip(WARNING_KEYS, site.levels, strict=True)),
                "reporting": {
                    "observe_from_m": site.observe_from_m,
                    "flashy": site.flashy,
                    "fast_interval_s": 120 if site.flashy else 300,
                },
                **(river or {}),
            },
        }
        return self.fit(config, **host)

    def write_agent_config(self, *, river: dict[str, Any] | None = None, **host: Any) -> Path:
        return self.write_config(self.agent_config(river=river, **host))

    def write_config(self, config: dict[str, Any]) -> Path:
        """Write an agent config (``agent_config`` or ``fit``) where ``machimori agent run``
        can be pointed at it."""
        path = self.workdir / "configs" / f"{self.site.device}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
        return path

    def close(self) -> None:
        self.sensor.close()
        self.modem.close()
