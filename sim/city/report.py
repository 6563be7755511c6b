"""What the city received, per device, from the store's own tables and each device's outbox:
sent (seqs the device issued), received (distinct seqs stored), lost (issued and not stored, less
what the device still holds and will send), repeats (copies the store received and dropped),
stored twice (must be 0), out of order (seqs stored after a higher one: measured on arrival
order); latency p50/p99 from measurement to the store's commit; CPU and memory per process."""

from __future__ import annotations

import contextlib
import sqlite3
import statistics
from dataclasses import dataclass
from pathlib import Path

from sim.city.fleet import City, Device
from sim.processes import Processes


@dataclass
class DeviceReport:
    name: str
    kind: str
    link: str
    sent: int
    received: int
    held: int  # still in the device's outbox, unconfirmed
    lost: int
    repeats: int
    stored_twice: int
    out_of_order: int
    latencies_s: list[float]


def issued_and_held(outbox: Path, device: str | None = None) -> tuple[int, set[int]]:
    """How many seqs an outbox issued, and the seqs it still holds (of ``device``: the gateway's
    outbox holds many devices' messages)."""
    if not outbox.exists():
        return 0, set()
    with contextlib.closing(sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=5)) as db:
        row = db.execute("SELECT value FROM meta WHERE key = 'next_seq'").fetchone()
        query = "SELECT seq FROM message WHERE seq IS NOT NULL"
        args: tuple[str, ...] = ()
        if device is not None:
            query, args = query + " AND device = ?", (device,)
        held = {r[0] for r in db.execute(query, args)}
    return (int(row[0]) if row else 0), held


def store_rows(store_db: Path, device: str) -> tuple[list[tuple[int, int, int]], int]:
    """(seq, ts_ms, received_ms) in commit order, and the repeats the store dropped."""
    with contextlib.closing(
        sqlite3.connect(f"file:{store_db}?mode=ro", uri=True, timeout=10)
    ) as db:
        rows = db.execute(
            "SELECT seq, ts_ms, received_ms FROM messages WHERE device = ? AND channel != 'image'"
            " ORDER BY rowid",
            (device,),
        ).fetchall()
        dup = db.execute("SELECT duplicates FROM devices WHERE device = ?", (device,)).fetchone()
    return rows, int(dup[0]) if dup else 0


def device_report(
    device: Device, store_db: Path, speed: float, gateway_outbox: Path
) -> DeviceReport:
    sent, held = issued_and_held(device.outbox)
    if device.link == "lorawan":  # acknowledged over the air: the gateway holds it now
        held |= issued_and_held(gateway_outbox, device.name)[1]
    rows, repeats = store_rows(store_db, device.name)
    seqs = [r[0] for r in rows]
    received = len(set(seqs))
    top, out_of_order = -1, 0
    for seq in seqs:
        out_of_order += seq < top
        top = max(top, seq)
    stored = set(seqs)
    held -= stored
    lost = sum(1 for s in range(sent) if s not in stored and s not in held)
    latencies = [(r[2] - r[1]) / 1000 / speed for r in rows]
    return DeviceReport(
        device.name,
        device.kind,
        device.link,
        sent,
        received,
        len(held),
        lost,
        repeats,
        len(seqs) - received,
        out_of_order,
        latencies,
    )


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def city_report(city: City) -> list[DeviceReport]:
    assert city.store is not None
    db = city.store.workdir / "store.db"
    gateway_outbox = city.workdir / "gateway" / "outbox.db"
    return [device_report(d, db, city.speed, gateway_outbox) for d in city.devices]


def format_report(reports: list[DeviceReport], processes: Processes, wall_s: float) -> str:
    lines = [
        f"{'device':<12} {'link':<8} {'sent':>6} {'recv':>6} {'held':>5} {'lost':>5} "
        f"{'repeat':>6} {'twice':>5} {'order':>5} {'p50 ms':>8} {'p99 ms':>8}"
    ]
    shown = [r for r in reports if r.kind != "tracker"]
    trackers = [r for r in reports if r.kind == "tracker"]
    # a fleet of trackers is summed up below: here the first few, and any with a fault
    shown += trackers[:3] + [r for r in trackers[3:] if r.lost or r.stored_twice or r.held]
    for r in shown:
        p50, p99 = (percentile(r.latencies_s, q) * 1000 for q in (50, 99))
        lines.append(
            f"{r.name:<12} {r.link:<8} {r.sent:>6} {r.received:>6} {r.held:>5} {r.lost:>5} "
            f"{r.repeats:>6} {r.stored_twice:>5} {r.out_of_order:>5} "
            f"{p50:>8.0f} {p99:>8.0f}"
        )
    lines.append("")
    kinds = sorted({(r.kind, r.link) for r in reports})
    for kind, link in kinds:
        group = [r for r in reports if (r.kind, r.link) == (kind, link)]
        lat = [x for r in group for x in r.latencies_s]
        lines.append(
            f"{kind}/{link}: {len(group)} devices, sent {sum(r.sent for r in group)}, "
            f"received {sum(r.received for r in group)}, held {sum(r.held for r in group)}, "
            f"lost {sum(r.lost for r in group)}, repeats {sum(r.repeats for r in group)}, "
            f"stored twice {sum(r.stored_twice for r in group)}, "
            f"out of order {sum(r.out_of_order for r in group)}, latency p50 "
            f"{percentile(lat, 50) * 1000:.0f} ms, p99 {percentile(lat, 99) * 1000:.0f} ms"
        )
    lines.append("")
    lines.append(f"{'process':<12} {'CPU s':>8} {'% core':>7} {'peak RSS MiB':>13} {'restarts':>8}")
    total_cpu = 0.0
    for name, m in sorted(processes.running.items()):
        u = m.usage
        total_cpu += u.cpu_s
        lines.append(
            f"{name:<12} {u.cpu_s:>8.1f} {100 * u.cpu_s / wall_s:>7.1f} "
            f"{u.peak_rss / 2**20:>13.1f} {u.restarts:>8}"
        )
    lines.append(
        f"all processes: {total_cpu:.1f} CPU s in {wall_s:.0f} s = {total_cpu / wall_s:.2f} cores"
    )
    return "\n".join(lines)
