"""``machimori sim city``: the whole city on this machine, with a report, and ``--chaos``;
``machimori sim trackers``: one process of simulated child trackers, as ``sim city`` runs them."""

from __future__ import annotations

import argparse
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

from sim.city import netns, school
from sim.city.buses import FRESH_EVERY_S, Freshness, ridership_summary
from sim.city.chaos import Chaos
from sim.city.fleet import City, FleetSize
from sim.city.report import city_report, format_report

EPILOG = """examples:
  machimori sim city                          # the whole city: 10+10 gauges, 10 cameras,
                                              # 8 buses, 1,200 trackers; 360 s at 20x
  machimori sim city --duration 400 --chaos   # and break every part once, as root
  machimori sim city --mqtt-gauges 2 --lora-gauges 2 --cameras 1 --buses 2 --trackers 20 \
      --duration 90 --speed 60

Every process is real: Mosquitto with a password per device and the city's ACL, the store on
SQLite (with the buses' GTFS-Realtime feed and ridership), the LoRaWAN gateway behind a simulated
packet forwarder, the tracker service (school arrivals, routines, guardians' notices to a
webhook), one `machimori agent run` per gauge, camera and bus on simulated hardware, and the
child trackers: --real-trackers of them as tracker agents on a GNSS pty, the others 120 to a
process, each still with its own MQTT login, connection and durable outbox.

The city's clock starts at 06:30 on the last school day with buses and runs --speed times
faster (20: the morning's school run and first bus trips in 360 s; a gauge's 10-minute reading
every 30 s); cameras play their video in real time. At the end the agents stop (each flushes its
outbox), the city waits until the store holds what they sent, and the report shows per device
(per fleet for the trackers): sent, received, held (still on the device, to be sent), lost,
repeats the store dropped, stored twice, stored out of order, latency from measurement to the
store's commit; what the services made of it (school arrivals against a replay, guardians told,
GTFS-Realtime freshness, ridership); then CPU and memory per process. --chaos (root: network
namespaces and a tmpfs) restarts and crashes the broker, SIGKILLs the gateway, the store, the
tracker service, agents and a tracker process, cuts one gauge's network and fills another's disk,
and prints the time the city took to recover from each. Exit 1 if anything was lost or stored
twice, a guardian was told twice or not at all, or a fault was not recovered from."""

# Devices back off up to reconnect_max_s (60 s) between attempts to reach a broker: a fault is
# "not recovered from" only past three times that; the time it took is what the report prints.
RECOVERY_LIMIT_S = 180.0


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
    city.add_argument("--buses", type=int, default=8, help="city buses (8)")
    city.add_argument("--trackers", type=int, default=1200, help="child trackers (1200)")
    city.add_argument(
        "--real-trackers", type=int, default=2, help="of them, tracker agents on a GNSS pty (2)"
    )
    city.add_argument("--duration", type=float, default=360, help="real seconds to run (360)")
    city.add_argument("--speed", type=float, default=20, help="clock speed-up (20)")
    city.add_argument("--chaos", action="store_true", help="break every part once meanwhile")
    city.add_argument("--seed", type=int, default=1, help="which agents the chaos picks")
    city.add_argument("--workdir", type=Path, help="keep configs, logs and databases here")
    trackers = sub.add_parser(
        "trackers",
        help="simulated child trackers in one process (sim city starts these)",
        description="Run the trackers a `sim city` config names, until SIGTERM.",
    )
    trackers.add_argument("--config", type=Path, required=True, help="written by sim city")
    return parser


def main(argv: list[str], prog: str = "machimori sim") -> int:
    args = _parser(prog).parse_args(argv)
    if args.action == "trackers":
        from sim.city.trackers import main as trackers

        return trackers(args.config)
    if args.chaos and (why := netns.available()) is not None:
        print(f"error: --chaos: {why}", file=sys.stderr)
        return 2
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="machimori-city-"))).resolve()
    try:
        size = FleetSize(
            args.mqtt_gauges,
            args.lora_gauges,
            args.cameras,
            args.buses,
            args.trackers,
            min(args.real_trackers, args.trackers),
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    # the broker (which inherits it) holds a connection per device: 1,200 trackers and more
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    city = City(workdir, args.speed, size, chaos=args.chaos, seed=args.seed)
    print(
        f"starting the city: {size.mqtt_gauges} MQTT gauges, {size.lora_gauges} LoRaWAN gauges, "
        f"{size.cameras} cameras, {size.buses} buses, {size.trackers} trackers "
        f"({size.real_trackers} as agents on a pty), at {args.speed:g}x from "
        f"{city.start_at:%Y-%m-%d %H:%M} JST, in {workdir}",
        flush=True,
    )
    started = time.monotonic()
    chaos = Chaos(city, args.seed) if args.chaos else None
    freshness = Freshness()
    try:
        city.start()
        print(
            f"running for {args.duration:g} s ({args.duration * args.speed / 3600:.1f} h "
            "of city time)...",
            flush=True,
        )
        next_look = 0.0

        def tick() -> None:
            nonlocal next_look
            city.processes.sample()
            for name in city.supervise():
                print(f"  {name} exited; restarted", flush=True)
            if size.buses and time.monotonic() >= next_look and city.store is not None:
                next_look = time.monotonic() + FRESH_EVERY_S
                freshness.sample(city.store.url + "gtfs-rt/vehicle-positions.pb", city.clock)

        end = started + args.duration
        if chaos is not None:
            between = args.duration / (len(chaos.faults()) + 2)
            chaos.run(between_s=between, limit_s=RECOVERY_LIMIT_S, tick=tick)
        while time.monotonic() < end:
            tick()
            time.sleep(1.0)
        print("stopping the agents (each flushes its outbox)...", flush=True)
        end_ms = int(city.clock.now().timestamp() * 1000)
        codes = city.stop()
        time.sleep(2.0)
        wall = time.monotonic() - started
        reports = city_report(city)
        print(format_report(reports, city.processes, wall))
        told = None
        if city.school_config is not None and city.guardians is not None:
            told = city.school_report()
            print(school.format_school(told))
        if size.buses:
            print(freshness.summary())
            start_ms = int(city.start_at.timestamp() * 1000)
            print(ridership_summary(city.store_url(), start_ms, end_ms, "Asia/Tokyo"))
    finally:
        city.close()
    bad_exit = {n: c for n, c in codes.items() if c != 0}
    if bad_exit:
        print(f"processes that did not stop cleanly: {bad_exit}")
    failed = [r.name for r in reports if r.lost or r.stored_twice]
    if told is not None and (told.missing or told.arrivals_differ or told.told_twice):
        failed.append("tracker service")
    if told is not None and (told.not_told or told.pending):
        failed.append("guardians not told")
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
