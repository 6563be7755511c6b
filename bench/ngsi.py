"""The NGSI v2 view's cost for a city of ``--sites`` river gauges (three entities each) with a
week of 10-minute readings and ``--buses`` buses on the sample GTFS-JP feed: latency of the calls
a FIWARE platform makes, each requested alternately with its baseline (so a shared machine's load
weighs on both): the river page's own data call (``/api/v1/sites``, which reads the same sites),
and for the buses as Vehicles the GTFS-Realtime VehiclePositions feed they are made from; and the
CPU one notifier comparison costs (it runs every ``ngsi.poll_s``).

    python bench/ngsi.py [--sites 20] [--buses 8] [--requests 200]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.protocol import Envelope, Topic, utc_timestamp  # noqa: E402
from edge.protocol.gtfs import Feed  # noqa: E402
from gateway.store.config import HttpConfig, IngestConfig, StoreConfig, TransitConfig  # noqa: E402
from gateway.store.intake import Batch, classify  # noqa: E402
from gateway.store.service import StoreService  # noqa: E402

WEEK = 7 * 144  # 10-minute readings
FEED = Path(__file__).resolve().parents[1] / "sim" / "transit" / "feed"


def sites_file(path: Path, n: int) -> None:
    sites = [
        {
            "device": f"river-{i:02d}",
            "name": f"観測所{i}",
            "river": "最上川",
            "lat": 38.05 + i * 0.005,
            "lon": 140.0 + (i % 5) * 0.01,
            "levels_m": {"standby": 1.0, "caution": 1.5, "evacuation": 2.0, "danger": 2.5},
            "sensor_height_m": 5.0,
        }
        for i in range(1, n + 1)
    ]
    path.write_text(yaml.safe_dump({"sites": sites}, allow_unicode=True))


def seed(service: StoreService, n: int) -> None:
    now = time.time()
    batch = Batch(received_ms=int(now * 1000))
    for i in range(1, n + 1):
        device = f"river-{i:02d}"
        for k in range(WEEK):
            at = utc_timestamp_at(now - (WEEK - 1 - k) * 600)
            level = round(0.5 + (i % 6) * 0.4 + (k % 30) / 100, 3)
            env = Envelope(device, k, at, "level", {"level_m": level, "valid": 9, "samples": 9})
            batch.add(classify(str(Topic("river", device, "telemetry")), env.to_json(), 10**6))
    service.store.write(batch)


def seed_buses(service: StoreService, n: int) -> None:
    """``n`` buses, each with an hour of 5-second positions along the route's stops."""
    stops = list(Feed.load(FEED).stops.values())
    trips = sorted(Feed.load(FEED).trips)
    now = time.time()
    batch = Batch(received_ms=int(now * 1000))
    for b in range(n):
        device = f"bus-{b + 1:02d}"
        for k in range(720):
            stop = stops[(b + k // 60) % len(stops)]
            data = {
                "lat": stop.lat,
                "lon": stop.lon,
                "speed_mps": float(k % 10),
                "bearing_deg": float(k % 360),
                "route_id": "M1",
                "trip_id": trips[b % len(trips)],
                "stop_id": stop.id,
                "stop_sequence": 1,
                "status": "IN_TRANSIT_TO",
                "on_board": k % 30,
                "seats": 20,
                "capacity": 40,
            }
            at = utc_timestamp_at(now - (719 - k) * 5)
            env = Envelope(device, k, at, "position", data)
            batch.add(classify(str(Topic("bus", device, "telemetry")), env.to_json(), 10**6))
    service.store.write(batch)


def utc_timestamp_at(seconds: float) -> str:
    from datetime import UTC, datetime

    return utc_timestamp(datetime.fromtimestamp(seconds, UTC))


def _once(url: str) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(url, timeout=30) as answer:
        answer.read()
    return (time.perf_counter() - start) * 1000


def paired(url: str, baseline: str, n: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """(p50, p99) of ``url`` and of ``baseline``, requested alternately, so that a shared
    machine's load swings weigh on both alike."""
    ours, theirs = [], []
    for _ in range(n):
        ours.append(_once(url))
        theirs.append(_once(baseline))

    def cut(times: list[float]) -> tuple[float, float]:
        times.sort()
        return statistics.median(times), times[int(len(times) * 0.99) - 1]

    return cut(ours), cut(theirs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=20, help="river gauges in the city")
    parser.add_argument("--buses", type=int, default=8, help="buses in the city")
    parser.add_argument("--requests", type=int, default=200, help="requests per call measured")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        sites_file(base / "sites.yaml", args.sites)
        config = StoreConfig(
            database=f"sqlite:///{base / 'store.db'}",
            images_dir=base / "images",
            sites_file=base / "sites.yaml",
            ingest=IngestConfig(enabled=False),
            http=HttpConfig(port=0),
            transit=TransitConfig(gtfs=FEED),
        )
        service = StoreService(config)
        service.start()
        try:
            seed(service, args.sites)
            seed_buses(service, args.buses)
            url = service.url
            assert url is not None
            print(
                f"city: {args.sites} gauges, {3 * args.sites} NGSI entities, a week of readings; "
                f"{args.buses} buses with an hour of positions"
            )
            sites, feed = url + "api/v1/sites", url + "gtfs-rt/vehicle-positions.pb"
            vehicles = "ngsi/v2/entities?type=Vehicle&q=" + quote("serviceStatus==onRoute")
            calls = {
                "all entities (limit=1000)": ("ngsi/v2/entities?limit=1000", sites),
                "q=floodLevelStatus==Danger": (
                    "ngsi/v2/entities?type=FloodMonitoring&q=" + quote("floodLevelStatus==Danger"),
                    sites,
                ),
                "near;maxDistance:2000, keyValues": (
                    "ngsi/v2/entities?type=FloodMonitoring&georel="
                    + quote("near;maxDistance:2000")
                    + "&geometry=point&coords="
                    + quote("38.1,140.02")
                    + "&options=keyValues",
                    sites,
                ),
                "one attribute's value": (
                    "ngsi/v2/entities/urn:ngsi-ld:FloodMonitoring:river-01"
                    "/attrs/floodLevelStatus/value",
                    sites,
                ),
                "Vehicles q=serviceStatus==onRoute, keyValues": (
                    vehicles + "&options=keyValues",
                    feed,
                ),
            }
            for name, (path, baseline) in calls.items():
                (p50, p99), (b50, b99) = paired(url + path, baseline, args.requests)
                print(
                    f"  NGSI {name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
                    f"GET /{baseline.removeprefix(url)} alternately: p50 {b50:.1f} ms, "
                    f"p99 {b99:.1f} ms; x{p50 / b50:.2f}"
                )
            notifier = service.http.notifier if service.http else None
            assert notifier is not None
            start = time.process_time()
            rounds = 20
            for _ in range(rounds):
                notifier.check()
            cpu_ms = (time.process_time() - start) * 1000 / rounds
            poll_s = config.ngsi.poll_s
            print(
                f"  notifier: {cpu_ms:.1f} ms CPU per comparison, every {poll_s:g} s "
                f"= {cpu_ms / poll_s / 10:.2f} % of a core"
            )
        finally:
            service.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
