"""The ``machimori`` console script. Each subcommand lives in its package's own CLI module and is
imported only when used, so a river gauge never imports OpenCV or the gateway."""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module with main(argv, prog), one line for --help)
COMMANDS = {
    "agent": ("edge.cli", "run or check a field agent (river gauge, ...) from its config file"),
    "gateway": (
        "gateway.lorawan.cli",
        "LoRaWAN gateway: packet forwarders or ChirpStack in, MQTT out",
    ),
    "store": ("gateway.store.cli", "city store: MQTT ingest, SQLite/PostgreSQL, retention, HTTP"),
    "web": ("gateway.web.cli", "river page, staff page and API alone; staff passwords"),
    "provision": (
        "gateway.provision.cli",
        "devices from the city's catalogue to SD cards: secrets, broker files, revocation",
    ),
    "bus": (
        "gateway.services.bus_cli",
        "city buses: card registry (issue, revoke), GTFS feed check",
    ),
    "tracker": (
        "gateway.services.tracker_cli",
        "child trackers, city side: school arrivals, guardians' page, who sees which child",
    ),
    "routine": (
        "gateway.services.routine_cli",
        "children's learned routines: the alerts a positions file would raise (replay)",
    ),
    "demo": ("sim.demo", "run the whole system in simulation on this machine"),
    "hil": ("sim.hil.cli", "run a device's scenario against the simulators or a bench"),
    "sim": ("sim.city.cli", "the whole city in simulation, with a report (and --chaos)"),
}

USAGE = """usage: machimori <command> [options]

machimori connects a small city's field sensors to the city over MQTT.

commands:
{commands}

Run `machimori <command> --help` for a command's options.
"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    lines = "\n".join(f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items())
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE.format(commands=lines))
        return 0 if argv else 2
    if argv[0] == "--version":
        from edge.runtime.health import package_version

        print(package_version())
        return 0
    if argv[0] not in COMMANDS:
        print(f"machimori: unknown command {argv[0]!r}\n\n" + USAGE.format(commands=lines))
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.main(argv[1:], prog=f"machimori {argv[0]}")


if __name__ == "__main__":
    sys.exit(main())
