"""``machimori agent``: run a field agent, or check its config file before deploying it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge.agents import AGENTS, load_agent
from edge.runtime import logs
from edge.runtime.config import ConfigError
from edge.runtime.host import AgentFile, AgentHost

EPILOG = """examples:
  machimori agent check --config /etc/machimori/river-03.yaml
  machimori agent run --config /etc/machimori/river-03.yaml

The config file names the device (id, kind), the agent, the MQTT broker, the outbox and the
agent's own section; see configs/ for annotated examples. Exit status 2 means the config file is
wrong: the message names the file, the key and what was expected."""


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=f"Field agents ({', '.join(AGENTS)}).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="{run,check}")
    for action, text in (
        ("run", "run the agent until stopped (SIGTERM/Ctrl-C stop it cleanly)"),
        ("check", "validate the config file and print what it would run, then exit"),
    ):
        p = sub.add_parser(action, help=text, description=text)
        p.add_argument("--config", required=True, type=Path, help="agent config file (YAML)")
        p.add_argument(
            "--log-level",
            choices=logs.LEVELS,
            help="override the config's log_level (default: warning, i.e. quiet)",
        )
    return parser


def load(path: Path) -> tuple[AgentFile, type, object]:
    file = AgentFile.load(path, AGENTS)
    lora = file.host.lorawan
    if file.host.link == "lorawan" and lora is not None:  # a missing key file fails here, not later
        key = "lorawan.modem.app_key_file"
        try:
            lora.modem.app_key()
        except OSError as exc:
            raise ConfigError(path, key, f"a readable file ({exc.strerror})") from exc
        except ValueError as exc:
            raise ConfigError(path, key, "a file holding an AppKey of 32 hex digits") from exc
    agent_cls = load_agent(file.host.agent)
    agent_config = file.agent_config(agent_cls.Config)
    check_files = getattr(agent_config, "check_files", None)  # files the section names
    if check_files is not None:
        try:
            check_files()
        except ValueError as exc:
            raise ConfigError(path, file.host.agent, str(exc)) from exc
    return file, agent_cls, agent_config


def main(argv: list[str], prog: str = "machimori agent") -> int:
    args = _parser(prog).parse_args(argv)
    try:
        file, agent_cls, agent_config = load(args.config)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    host_cfg = file.host
    if args.action == "check":
        print(f"{args.config}: ok — {host_cfg.agent} agent for {host_cfg.device.id}")
        lora = host_cfg.lorawan
        if host_cfg.link == "lorawan" and lora is not None:
            modem = lora.modem
            where = f"{modem.model} on {modem.port}"
            print(f"  link     LoRaWAN AS923-1 via {where}, DR{modem.data_rate}, {lora.codec}")
        else:
            print(f"  broker   {host_cfg.mqtt.host}:{host_cfg.mqtt.port}")
        print(f"  outbox   {host_cfg.outbox.path} (max {host_cfg.outbox.max_messages} messages)")
        return 0
    logs.setup(args.log_level or host_cfg.log_level)
    host = AgentHost(host_cfg)
    host.run(agent_cls(host, agent_config))
    return 0
