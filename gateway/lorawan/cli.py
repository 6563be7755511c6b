"""``machimori gateway``: run the LoRaWAN gateway, check its files, look at and reset sessions."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from edge.runtime import logs
from edge.runtime.config import ConfigError
from gateway.lorawan import region
from gateway.lorawan.config import GatewayConfig
from gateway.lorawan.registry import Registry
from gateway.lorawan.sessions import SessionStore

EPILOG = """examples:
  machimori gateway check --config /etc/machimori/gateway.yaml
  machimori gateway run --config /etc/machimori/gateway.yaml
  machimori gateway run --config /etc/machimori/gateway.yaml --chirpstack
  machimori gateway sessions --config /etc/machimori/gateway.yaml
  machimori gateway forget --config /etc/machimori/gateway.yaml river-07

Two ways in. Default (mode: udp): the LoRa concentrator's packet forwarder (lora_pkt_fwd) sends
to this host on UDP port 1700 -- set server_address and serv_port_up/serv_port_down in its
global_conf.json -- and this gateway is the LoRaWAN network server. With --chirpstack (mode:
chirpstack) an existing ChirpStack v4 stays the network server and this gateway reads its MQTT
integration. Either way each reading is published to the city's broker as the device's own
message, and the gateway's health is retained on machimori/v1/gateway/<id>/status.

The config file names the device registry (written by provisioning; it holds keys, keep it mode
0600 and out of git); see configs/gateway.yaml and configs/devices.yaml. Exit status 2 means a
file is wrong: the message names the file, the key and what was expected."""


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="LoRaWAN gateway: packet forwarders or ChirpStack in, MQTT envelopes out.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="{run,check,sessions,forget}")
    actions = {
        "run": "run the gateway until stopped (SIGTERM/Ctrl-C stop it cleanly)",
        "check": "validate the config file and device registry, print a summary, then exit",
        "sessions": "list each device's activation, DevAddr and frame counters (never keys)",
        "forget": "drop a device's session, with the gateway stopped: an OTAA device must "
        "join again, an ABP device's frame counters start over (after it lost them)",
    }
    for action, text in actions.items():
        p = sub.add_parser(action, help=text, description=text)
        p.add_argument("--config", required=True, type=Path, help="gateway config file (YAML)")
        if action in ("run", "check"):
            p.add_argument(
                "--chirpstack",
                action="store_true",
                help="read uplinks from ChirpStack's MQTT integration (overrides 'mode')",
            )
        if action == "run":
            p.add_argument(
                "--log-level",
                choices=logs.LEVELS,
                help="override the config's log_level (default: warning, i.e. quiet)",
            )
        if action == "forget":
            p.add_argument("device", help="device id, as in the registry")
    return parser


def main(argv: list[str], prog: str = "machimori gateway") -> int:
    args = _parser(prog).parse_args(argv)
    try:
        config = GatewayConfig.load(args.config)
        if getattr(args, "chirpstack", False):
            config.mode = "chirpstack"
        registry = Registry.load(config.registry, need_keys=config.mode == "udp")
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    if args.action == "check":
        return _check(args.config, config, registry)
    if args.action == "run":
        return _run(config, args.log_level)
    store = SessionStore(config.state.path, sync=config.state.sync)
    try:
        if args.action == "sessions":
            return _sessions(store, registry)
        return _forget(store, registry, args.device)
    finally:
        store.close()


def _check(path: Path, config: GatewayConfig, registry: Registry) -> int:
    where = (
        f"UDP {config.udp.bind}:{config.udp.port}"
        if config.mode == "udp"
        else f"ChirpStack at {config.chirpstack.mqtt.host}:{config.chirpstack.mqtt.port}"
    )
    otaa = sum(d.otaa is not None for d in registry.devices)
    abp = sum(d.abp is not None for d in registry.devices)
    print(f"{path}: ok — gateway {config.gateway.id}, {config.mode} mode")
    print(f"  uplinks   {where}")
    plan = config.lorawan.settings.mac.plan.frequencies_hz
    print(f"  channels  {', '.join(f'{hz / 1e6:g}' for hz in plan)} MHz (AS923-1)")
    print(f"  broker    {config.mqtt.host}:{config.mqtt.port}")
    print(
        f"  registry  {config.registry}: {len(registry.devices)} devices ({otaa} OTAA, {abp} ABP)"
    )
    print(f"  state     {config.state.path}")
    print(f"  outbox    {config.outbox.path}")
    return 0


def _run(config: GatewayConfig, log_level: str | None) -> int:
    from gateway.lorawan.service import GatewayService  # paho and asyncio only for the real thing

    logs.setup(log_level or config.log_level)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        GatewayService(config).run(stop)
    except OSError as exc:
        where = f"{config.udp.bind}:{config.udp.port}"
        print(f"gateway: cannot serve packet forwarders on UDP {where}: {exc}", file=sys.stderr)
        return 1
    return 0


def _sessions(store: SessionStore, registry: Registry) -> int:
    sessions = {s.dev_eui: s for s in store.sessions()}
    header = ("device", "dev_eui", "mode", "dev_addr", "fcnt_up", "fcnt_down", "last_seq")
    rows = [(*header, "channels", "tx_dbm", "battery", "margin_db", "since")]
    for device in registry.devices:
        session = sessions.get(device.eui)
        last_seq = store.last_seq(device.id)
        rows.append(
            (
                device.id,
                device.eui,
                "otaa" if device.otaa else "abp" if device.abp else "-",
                f"{session.dev_addr:08x}" if session else "-",
                _text(session.fcnt_up if session else None),
                _text(session.fcnt_down if session else None),
                _text(last_seq),
                _text(sum(1 for hz in session.mac.channels if hz) if session else None),
                _text(region.tx_power_dbm(session.mac.tx_power) if session else None),
                _text(session.mac.battery if session else None),
                _text(session.mac.margin_db if session else None),
                session.activated_at if session else "not activated",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return 0


def _text(value: int | None) -> str:
    return "-" if value is None else str(value)


def _forget(store: SessionStore, registry: Registry, device_id: str) -> int:
    device = registry.by_id.get(device_id)
    if device is None:
        print(f"gateway: no device {device_id!r} in the registry", file=sys.stderr)
        return 2
    if not store.forget(device.eui):
        print(f"{device_id}: had no session")
        return 0
    then = "it must join again" if device.otaa else "its counters restart at the next start"
    print(f"{device_id}: session dropped; {then}")
    return 0
