"""What every field agent runs inside: config, clock, outbox, uplink, health, commands, signals.

An agent is a class with a ``Config`` dataclass (its own YAML section, named after the agent) and a
``run(stop)`` method; it publishes through :class:`AgentHost` and never touches MQTT or SQLite.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, Protocol

from edge.protocol import Envelope, EnvelopeError, Topic, utc_timestamp
from edge.protocol.envelope import parse_timestamp
from edge.protocol.topics import check_device_id
from edge.runtime.clock import Clock
from edge.runtime.config import ConfigError, build, load_yaml
from edge.runtime.health import Health
from edge.runtime.lora_link import LoraLink, LorawanConfig
from edge.runtime.outbox import Outbox, Sync, WhenFull
from edge.runtime.uplink import MqttConfig, MqttUplink

log = logging.getLogger(__name__)


@dataclass
class DeviceConfig:
    id: str
    kind: Literal["river", "camera", "bus", "tracker"]

    def __post_init__(self) -> None:
        check_device_id(self.id)


@dataclass
class OutboxConfig:
    path: Path = Path("/var/lib/machimori/outbox.db")
    max_messages: int = 100_000
    max_bytes: int = 64 * 1024 * 1024
    when_full: WhenFull = "drop_oldest"  # or refuse_new; see edge/runtime/outbox.py
    sync: Sync = "full"  # full survives power loss; normal only a crash, and is faster

    def open(self, device: str) -> Outbox:
        return Outbox(
            self.path,
            device,
            max_messages=self.max_messages,
            max_bytes=self.max_bytes,
            when_full=self.when_full,
            sync=self.sync,
        )


@dataclass
class HostConfig:
    device: DeviceConfig
    agent: str
    link: Literal["mqtt", "lorawan"] = "mqtt"  # how messages leave: a broker, or a LoRa modem
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    lorawan: LorawanConfig | None = None
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    clock_speed: float = 1.0  # >1 only in simulation: the agent's schedule runs that much faster
    # simulation only: the moment the clock starts at (RFC 3339), e.g. a bus demo's timetable hour
    clock_start: str | None = None
    # simulation only: the ISO 8601 UTC instant a sped-up clock counts from, shared by every
    # process of a simulated city so their timestamps agree (None: from the agent's start)
    clock_epoch: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    flush_timeout_s: float = 5.0  # on SIGTERM, how long queued messages get to leave

    def __post_init__(self) -> None:
        if self.link == "lorawan" and self.lorawan is None:
            raise ValueError("link: lorawan needs a lorawan section (modem, keys, codec)")
        if self.clock_start is not None:
            self.start_time()
        if self.clock_epoch is not None:
            parse_timestamp(self.clock_epoch, "clock_epoch")

    def start_time(self) -> datetime | None:
        if self.clock_start is None:
            return None
        try:
            start = datetime.fromisoformat(self.clock_start.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError("clock_start must be an RFC 3339 time with its offset") from None
        if start.tzinfo is None:
            raise ValueError("clock_start must be an RFC 3339 time with its offset")
        return start


class Agent(Protocol):
    def run(self, stop: threading.Event) -> None: ...


@dataclass
class AgentFile:
    """A parsed agent config file: the host part and the agent's own section, still raw."""

    path: Path
    host: HostConfig
    section: dict[str, Any]

    @classmethod
    def load(cls, path: str | Path, agents: Iterable[str]) -> AgentFile:
        """Parse ``path``; ``agents`` are the agent names this build knows."""
        data = load_yaml(path)
        agent, known = data.get("agent"), list(agents)
        if agent not in known:
            raise ConfigError(path, "agent", f"one of {', '.join(known)}", agent)
        section = data.pop(agent, {})
        return cls(Path(path), build(HostConfig, data, file=path), section)

    def agent_config(self, config_cls: type) -> Any:
        return build(config_cls, self.section, file=self.path, key=self.host.agent)


class AgentHost:
    def __init__(self, config: HostConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.device = config.device.id
        self.kind = config.device.kind
        epoch = parse_timestamp(config.clock_epoch) if config.clock_epoch else None
        self.clock = clock or Clock(config.clock_speed, config.start_time(), epoch=epoch)
        self.health = Health(self.clock)
        self.outbox = config.outbox.open(self.device)
        self.uplink: MqttUplink | LoraLink
        if config.link == "lorawan" and config.lorawan is not None:
            self.uplink = LoraLink(
                config.lorawan, self.device, self.outbox, self.health, self.clock, self._command
            )
        else:
            self.uplink = MqttUplink(
                config.mqtt,
                self.kind,
                self.device,
                self.outbox,
                self.health,
                self.clock,
                on_message=lambda _topic, payload: self._command(payload),
            )
        self._handlers: dict[str, Callable[[Envelope], None]] = {}
        self.stop = threading.Event()

    def publish(
        self, channel: str, type: str, data: dict[str, Any], at: datetime | None = None
    ) -> Envelope:
        """Queue one reading or event durably; it is sent as soon as the link allows."""
        envelope = self.outbox.add(
            Topic(self.kind, self.device, channel),
            type,
            data,
            utc_timestamp(at or self.clock.now()),
        )
        self.uplink.wake.set()
        return envelope

    def publish_image(self, event_id: str, jpeg: bytes) -> None:
        self.outbox.add_raw(Topic(self.kind, self.device, "image", event_id), jpeg)
        self.uplink.wake.set()

    def on_command(self, type: str, handler: Callable[[Envelope], None]) -> None:
        self._handlers[type] = handler

    def _command(self, payload: bytes) -> None:
        """A city-to-device message. A bad one is counted and logged; it never stops the agent."""
        try:
            envelope = Envelope.from_json(payload)
            if envelope.device != self.device:
                raise EnvelopeError("device", f"addressed to {envelope.device!r}")
            handler = self._handlers.get(envelope.type)
            if handler is None:
                known = ", ".join(sorted(self._handlers)) or "none"
                raise EnvelopeError("type", f"unknown command {envelope.type!r} (known: {known})")
            handler(envelope)
        except (ValueError, TypeError) as exc:  # EnvelopeError, or a handler refusing its data
            self.health.count("cmd_rejected")
            self.health.error(f"command rejected: {exc}")
            log.warning("command rejected", extra={"fields": {"error": str(exc)}})
            return
        self.health.count("cmd_applied")

    def run(self, agent: Agent) -> None:
        """Run ``agent`` until SIGTERM/SIGINT or until it returns, then shut down cleanly.

        Signals reach only the main thread; an agent run on another (several simulated gauges
        in one process) is stopped by setting ``stop``.
        """
        in_main = threading.current_thread() is threading.main_thread()
        previous = {
            sig: signal.signal(sig, lambda *_: self.stop.set())
            for sig in (signal.SIGTERM, signal.SIGINT)
            if in_main
        }
        self.uplink.start()
        try:
            agent.run(self.stop)
        finally:
            self.stop.set()
            self.uplink.stop(self.config.flush_timeout_s)
            self.outbox.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
