"""The gateway process: LoRaWAN in (UDP packet forwarders, or ChirpStack), envelopes out (MQTT).

Threads and their boundaries:

- the asyncio event loop owns UDP, deduplication and the network server; it writes accepted
  uplinks to the outbox and session store (SQLite) before answering a device, so an ACK is
  never sent for a reading that is not on disk;
- ``MqttUplink``'s two threads drain the outbox to the city's broker (QoS 1) and publish the
  retained status, whose health carries the LoRaWAN counters; a device's reading leaves the
  outbox only when the store's acknowledgement for that device (``machimori/v1/+/+/ack``) covers
  it, so a broker crash loses nothing the gateway has acknowledged over the air;
- paho's network thread delivers commands (``machimori/v1/+/+/cmd``) for registered devices,
  which are encoded with the device's codec into the persistent downlink queue; in ChirpStack
  mode a second paho client reads ChirpStack's integration the same way.

The outbox and the store are the only things the threads share, and both lock.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from edge.protocol import Envelope, EnvelopeError, Topic
from edge.runtime.clock import Clock
from edge.runtime.config import ConfigError
from edge.runtime.health import Health
from edge.runtime.uplink import MqttConfig, MqttUplink
from gateway.lorawan.chirpstack import ChirpStackError, parse_uplink_event
from gateway.lorawan.config import GatewayConfig
from gateway.lorawan.dedup import Deduplicator, Frame
from gateway.lorawan.forward import Forwarder, Uplink
from gateway.lorawan.network import NetworkServer
from gateway.lorawan.registry import Registry
from gateway.lorawan.server import PacketForwarderServer, serve
from gateway.lorawan.sessions import SessionStore
from gateway.lorawan.stats import Stats

log = logging.getLogger(__name__)
KIND = "gateway"
COMMANDS = "machimori/v1/+/+/cmd"
ACKS = "machimori/v1/+/+/ack"  # the broker's ACL narrows this to the gateway's own devices


class GatewayHealth(Health):
    """The status health of an agent, plus the LoRaWAN counters."""

    def __init__(self, clock: Clock, stats: Stats) -> None:
        super().__init__(clock)
        self.stats = stats

    def snapshot(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return super().snapshot({**(extra or {}), "lorawan": self.stats.snapshot()})


class GatewayService:
    """One gateway, built from its config. ``run(stop)`` blocks until ``stop`` is set."""

    def __init__(self, config: GatewayConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.id = config.gateway.id
        self.clock = clock or Clock()
        self.stats = Stats(self.clock)
        self.health = GatewayHealth(self.clock, self.stats)
        self._registry_stamp = _stamp(config.registry)
        self.registry = Registry.load(config.registry, need_keys=config.mode == "udp")
        self.outbox = config.outbox.open(self.id)
        self.store = SessionStore(config.state.path, sync=config.state.sync)
        # The gateway speaks for its LoRaWAN devices: it takes every device's commands.
        self.uplink = MqttUplink(
            config.mqtt,
            KIND,
            self.id,
            self.outbox,
            self.health,
            self.clock,
            on_message=self._device_command,
            subscriptions=(COMMANDS, ACKS) if config.mqtt.confirm == "store" else (COMMANDS,),
        )
        self.forwarder = Forwarder(self.outbox, self.store, self.stats, self.clock)
        self.network = NetworkServer(
            self.registry,
            self.store,
            config.lorawan.settings,
            self.stats,
            self.forwarder.forward,
            self.forwarder.command_outcome,
            self.clock,
        )
        self.network.output_batch = self.outbox.batch
        self.ready = threading.Event()  # set once UDP is bound (or ChirpStack subscribed)
        self.udp_port: int | None = None
        self._chirpstack: mqtt.Client | None = None
        self._applications: dict[int, str] = {}  # DevEUI -> ChirpStack application id

    # -- running --------------------------------------------------------------------------------
    def run(self, stop: threading.Event) -> None:
        """Serve until ``stop`` is set, then flush the outbox, say offline, and close."""
        self.uplink.start()
        try:
            if self.config.mode == "chirpstack":
                self._run_chirpstack(stop)
            else:
                asyncio.run(self._serve_udp(stop))
        finally:
            self.uplink.stop(self.config.flush_timeout_s)
            self.outbox.close()
            self.store.close()

    async def _serve_udp(self, stop: threading.Event) -> None:
        loop = asyncio.get_running_loop()
        dedup = Deduplicator(loop, self.config.lorawan.dedup_window_s, self._frames, self.stats)
        server = PacketForwarderServer(
            self.stats,
            dedup.add,
            allowed_gateways=self.config.udp.allowed,
            plan=self.config.lorawan.settings.mac.plan,
        )
        self.network.transmitter = server
        transport = await serve(server, self.config.udp.bind, self.config.udp.port)
        self.udp_port = transport.get_extra_info("sockname")[1]
        log.info("listening for packet forwarders", extra={"fields": {"port": self.udp_port}})
        self.ready.set()
        done = loop.run_in_executor(None, stop.wait)
        try:
            # The registry is checked on this loop, between batches, so a frame is never handled
            # half with the old registry and half with the new.
            while not done.done():
                await asyncio.wait([done], timeout=self.config.registry_check_s)
                self.reload_registry()
            await asyncio.sleep(self.config.lorawan.dedup_window_s)  # let open windows close
        finally:
            transport.close()

    def _frames(self, frames: list[Frame]) -> None:
        self.network.handle_batch(frames)
        self.uplink.wake.set()  # once a batch: the MQTT pump takes what the batch queued

    def _run_chirpstack(self, stop: threading.Event) -> None:
        cs = self.config.chirpstack
        source = _subscriber(cs.mqtt, f"machimori-{self.id}-chirpstack", cs.topic)
        source.on_message = lambda _c, _u, msg: self._chirpstack_event(msg.topic, msg.payload)
        self._chirpstack = source
        source.on_subscribe = lambda *_: self.ready.set()
        source.connect_async(cs.mqtt.host, cs.mqtt.port, cs.mqtt.keepalive_s)
        source.loop_start()
        try:
            while not stop.wait(self.config.registry_check_s):
                self.reload_registry()
        finally:
            source.disconnect()
            source.loop_stop()

    def reload_registry(self) -> bool:
        """Re-read the registry if its file changed since it was read (provisioning's sync
        replaces it atomically). A file that does not parse is logged and counted, and the
        registry in use stays. Returns whether a new registry was adopted."""
        stamp = _stamp(self.config.registry)
        if stamp == self._registry_stamp:
            return False
        self._registry_stamp = stamp
        try:
            registry = Registry.load(self.config.registry, need_keys=self.config.mode == "udp")
        except ConfigError as exc:
            self.stats.reject("registry.invalid")
            self.health.error(f"registry not reloaded: {exc}")
            log.error("registry not reloaded", extra={"fields": {"error": str(exc)}})
            return False
        dropped = self.network.use_registry(registry) if self.config.mode == "udp" else []
        self.registry = registry
        self.stats.count("registry.reloads")
        fields = {"devices": len(registry.devices), "dropped": dropped}
        log.info("registry reloaded", extra={"fields": fields})
        return True

    # -- ChirpStack -----------------------------------------------------------------------------
    def _chirpstack_event(self, topic: str, payload: bytes) -> None:
        """One ChirpStack uplink event; stored in the outbox before paho acknowledges it."""
        try:
            event = parse_uplink_event(payload)
            device = self.registry.by_eui.get(event.dev_eui)
            if device is None:
                raise ChirpStackError("unknown_device", f"{event.dev_eui:016x}")
            parts = topic.split("/")  # application/{id}/device/{dev_eui}/event/up
            if len(parts) > 1 and parts[0] == "application":
                self._applications[event.dev_eui] = parts[1]
            if not event.fport:  # an empty or MAC-only uplink: nothing to forward
                self.stats.count("chirpstack.no_application_payload")
                return
            self.forwarder.forward(Uplink(device, event.fport, event.data, event.radio))
            self.uplink.wake.set()
            self.stats.count("chirpstack.uplinks")
        except ChirpStackError as exc:
            self.stats.reject(f"chirpstack.{exc.reason}")
            log.info("chirpstack event rejected", extra={"fields": {"reason": exc.reason}})
        except Exception:
            self.stats.reject("internal.chirpstack")
            log.exception("chirpstack event handling failed")

    # -- commands -------------------------------------------------------------------------------
    def _device_command(self, topic: str, payload: bytes) -> None:
        """A city command for one of our LoRaWAN devices becomes a queued downlink."""
        try:
            target = Topic.parse(topic)
        except ValueError:
            return
        device = self.registry.by_id.get(target.device)
        if device is None or target.kind != device.kind:
            return  # a device that is not ours (MQTT-connected, or another gateway's)
        try:
            command = Envelope.from_json(payload)
            if command.device != device.id:
                raise EnvelopeError("device", f"{command.device!r} on the topic of {device.id!r}")
            fport, data = device.payload_codec.encode_command(command.type, command.data)
            if self.config.mode == "chirpstack":
                self._chirpstack_downlink(device.dev_eui_int, fport, data)
            else:
                self.network.enqueue(
                    device, fport, data, command=command.type, command_seq=command.seq
                )
        except (ValueError, OverflowError) as exc:  # EnvelopeError, CodecError, queue limits
            self.stats.reject("cmd.rejected")
            self.health.error(f"command for {device.id} rejected: {exc}")
            log.warning("command rejected", extra={"fields": {"device": device.id, "error": exc}})
            return
        self.stats.count("cmd.queued")
        log.info("downlink queued", extra={"fields": {"device": device.id, "fport": fport}})

    def _chirpstack_downlink(self, dev_eui: int, fport: int, data: bytes) -> None:
        """Enqueue through ChirpStack's MQTT command topic; its application id is learnt from
        the device's uplinks, as the city's registry does not know it."""
        application = self._applications.get(dev_eui)
        if application is None or self._chirpstack is None:
            raise ValueError(
                "no uplink from this device yet: its ChirpStack application is unknown"
            )
        eui = f"{dev_eui:016x}"
        body = {"devEui": eui, "confirmed": False, "fPort": fport}
        body["data"] = base64.b64encode(data).decode("ascii")
        topic = f"application/{application}/device/{eui}/command/down"
        self._chirpstack.publish(topic, json.dumps(body), qos=1)


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What tells a replaced or rewritten file from the one read: inode, size, mtime."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


def _subscriber(config: MqttConfig, client_id: str, topic: str) -> mqtt.Client:
    """A persistent-session QoS 1 subscriber: the broker keeps events while we are away, and
    paho acknowledges each one only after its handler returned."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        clean_session=False,
        protocol=mqtt.MQTTv311,
    )
    if config.username is not None:
        client.username_pw_set(config.username, config.password())
    if config.tls is not None:
        tls = config.tls
        client.tls_set(
            ca_certs=str(tls.ca_file) if tls.ca_file else None,
            certfile=str(tls.cert_file) if tls.cert_file else None,
            keyfile=str(tls.key_file) if tls.key_file else None,
        )
    client.reconnect_delay_set(config.reconnect_min_s, config.reconnect_max_s)
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    return client
