"""``machimori sim city``: the whole city on this machine, with a report, and ``--chaos``."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from sim.city import netns
from sim.city.chaos import Chaos
from sim.city.fleet import City, FleetSize
from sim.city.report import city_report, format_report

EPILOG = """examples:
  machimori sim city                          # 10+10 gauges, 10 cameras, 120 s, 600x
  machimori sim city --duration 300 --chaos   # and break every part once, as root
  machimori sim city --mqtt-gauges 2 --lora-gauges 2 --cameras 1 --duration 60

Every process is real: Mosquitto with a password per device and the city's ACL, the store on
SQLite, the LoRaWAN gateway behind a simulated packet forwarder, and one `machimori agent run` per
device on simulated hardware. River time runs --speed times faster (600: a 10-minute reading
every second); cameras play their video in real time. At the end the agents stop (each flushes
its outbox), the city waits until the store holds what they sent, and the report shows per
device: sent, received, held (still on the device, to be sent), lost, repeats the store dropped,
stored twice, stored out of order, latency from measurement to the store's commit; then CPU and
memory per process. --chaos (root: network namespaces and a tmpfs) restarts and crashes the
broker, SIGKILLs the gateway, the store and agents, cuts one gauge's network and fills another's
disk, and prints the time the city took to recover from each. Exit 1 if anything was lost or
stored twice, or a fault was not recovered from."""


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Simulations of the whole system on one machine.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="{city}")
    city = sub.add_parser(
        "city",
        help="the whole city, with a report",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    city.add_argument("--mqtt-gauges", type=int, default=10, help="river gauges on MQTT (10)")
    city.add_argument("--lora-gauges", type=int, default=10, help="river gauges on LoRaWAN (10)")
    city.add_argument("--cameras", type=int, default=10, help="wildlife cameras (10)")
    city.add_argument("--duration", type=float, default=120, help="real seconds to run (120)")
    city.add_argument("--speed", type=float, default=600, help="clock speed-up (600)")
    city.add_argument("--chaos", action="store_true", help="break every part once meanwhile")
    city.add_argument("--seed", type=int, default=1, help="which agents the chaos picks")
    city.add_argument("--workdir", type=Path, help="keep configs, logs and databases here")
    return parser


def main(argv: list[str], prog: str = "machimori sim") -> int:
    args = _parser(prog).parse_args(argv)
    if args.chaos and (why := netns.available()) is not None:
        print(f"error: --chaos: {why}", file=sys.stderr)
        return 2
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="machimori-city-"))).resolve()
    size = FleetSize(args.mqtt_gauges, args.lora_gauges, args.cameras)
    city = City(workdir, args.speed, size, chaos=args.chaos)
    print(
        f"starting the city: {size.mqtt_gauges} MQTT gauges, {size.lora_gauges} LoRaWAN gauges, "
        f"{size.cameras} cameras, at {args.speed:g}x, in {workdir}",
        flush=True,
    )
    started = time.monotonic()
    chaos = Chaos(city, args.seed) if args.chaos else None
    try:
        city.start()
        print(
            f"running for {args.duration:g} s ({args.duration * args.speed / 3600:.1f} h "
            "of river time)...",
            flush=True,
        )

        def tick() -> None:
            city.processes.sample()
            for name in city.supervise():
                print(f"  {name} exited; restarted", flush=True)

        end = started + args.duration
        if chaos is not None:
            chaos.run(between_s=args.duration / (len(chaos.faults()) + 2), limit_s=60, tick=tick)
        while time.monotonic() < end:
            tick()
            time.sleep(1.0)
        print("stopping the agents (each flushes its outbox)...", flush=True)
        codes = city.stop()
        time.sleep(2.0)
        wall = time.monotonic() - started
        reports = city_report(city)
        print(format_report(reports, city.processes, wall))
    finally:
        city.close()
    bad_exit = {n: c for n, c in codes.items() if c != 0}
    if bad_exit:
        print(f"processes that did not stop cleanly: {bad_exit}")
    failed = [r.name for r in reports if r.lost or r.stored_twice]
    if chaos is not None:
        print(
            "chaos: "
            + "; ".join(
                f"{f.name}: " + (f"{f.recovered_s:.1f} s" if f.recovered_s is not None else "NOT")
                for f in chaos.results
            )
        )
        failed += [f.name for f in chaos.results if f.recovered_s is None]
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    if args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failed else 0
