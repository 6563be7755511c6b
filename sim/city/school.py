"""The city's children in ``sim city``: the tracker service (``machimori tracker run``: school
arrivals, routines, notifications) with its registry of children, trackers and guardians; the
trackers, most of them in fleet processes (``sim/city/trackers.py``), a few as real tracker
agents with a GNSS receiver on a pty; and the guardians' end of the notifications, a webhook
receiver that checks each request's signature and keeps what it was told.

What the report asks of it after the run (``check``): every position the store holds is in the
service's database once; the arrivals it recorded are those a fresh pipeline makes of the same
positions (so a SIGKILL of the service neither lost nor invented one); every alert reached each
guardian of the child, and none twice.
"""

from __future__ import annotations

import bisect
import contextlib
import hmac
import json
import secrets
import sqlite3
import tempfile
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from edge.protocol import Envelope, utc_timestamp
from edge.protocol.tracker import POSITION
from gateway.services.notify import signature
from gateway.services.school import Pipeline
from gateway.services.tracker_config import load_config
from gateway.services.tracker_db import TrackerDb
from sim.child_day import Sky
from sim.city.trackers import children_day, tracker_name
from sim.city_children import SCHOOLS, lat_lon

SERVICE = "tracker-service"
# trackers per fleet process: each holds ~6 file descriptors (outbox, its WAL and shm, the
# socket, paho's wake-up pipe), and paho's loop uses select(), which takes none numbered 1024 or
# more: at 300 a process, most trackers' sockets were past it and never stayed connected
PER_PROCESS = 120
NOT_AT_SCHOOL_BY = "08:30"


def child_name(child: int) -> str:
    return f"child-{child:04d}"


class Guardians:
    """The webhook a city app or a LINE bridge would run: each signed request is kept."""

    def __init__(self, secret: bytes) -> None:
        self.secret = secret
        self.told: list[dict[str, Any]] = []
        self.bad = 0
        self._lock = threading.Lock()
        guardians = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                stamp = self.headers.get("X-Machimori-Timestamp", "")
                good = hmac.compare_digest(
                    signature(guardians.secret, stamp, body),
                    self.headers.get("X-Machimori-Signature", ""),
                )
                with guardians._lock:
                    if good:
                        told = json.loads(body)
                        told["delivery"] = self.headers.get("X-Machimori-Delivery")
                        guardians.told.append(told)
                    else:
                        guardians.bad += 1
                self.send_response(204 if good else 403)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/notify"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def sky_of(fixes: list[tuple[int, float, float]]) -> Any:
    """What a child's receiver sees: its day's positions, walked between in straight lines."""
    times = [f[0] for f in fixes]

    def where(moment: datetime) -> Sky:
        ms = moment.timestamp() * 1000
        i = bisect.bisect_right(times, ms)
        if i == 0 or i == len(fixes):
            t, x, y = fixes[max(0, min(i, len(fixes) - 1))]
        else:
            (t0, x0, y0), (t1, x1, y1) = fixes[i - 1], fixes[i]
            share = (ms - t0) / (t1 - t0) if t1 > t0 else 0.0
            x, y = x0 + (x1 - x0) * share, y0 + (y1 - y0) * share
        lat, lon = lat_lon(x, y)
        return Sky(lat, lon, True, 0.9, 10)

    return where


@dataclass
class SchoolReport:
    positions: int = 0
    missing: int = 0  # stored by the store, not by the service
    arrivals: int = 0
    replayed_arrivals: int = 0
    arrivals_differ: int = 0
    children: int = 0
    alerts: dict[str, int] = field(default_factory=dict)
    guardians_told: int = 0
    told_twice: int = 0  # the same alert to the same guardian in two deliveries
    repeated: int = 0  # a delivery sent again (its id the same: the receiver drops it)
    not_told: int = 0
    pending: int = 0
    bad_signatures: int = 0


def secret_file(path: Path) -> bytes:
    """A random secret in ``path`` (mode 0600), made once."""
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_bytes().strip()


def school_config(
    workdir: Path, mqtt: dict[str, Any], clock: dict[str, Any], webhook: str, port: int
) -> Path:
    """The tracker service's config: the six schools of ``sim/city_children.py``."""
    secret, session = workdir / "webhook.secret", workdir / "session.secret"
    secret_file(session)
    schools = []
    for i, (x, y) in enumerate(SCHOOLS):
        lat, lon = lat_lon(x, y)
        schools.append(
            {
                "id": f"school-{i}",
                "name": f"school {i}",
                "circle": {"lat": lat, "lon": lon, "radius_m": 100},
                "not_at_school_by": NOT_AT_SCHOOL_BY,
            }
        )
    config = {
        "database": str(workdir / "tracker.db"),
        "outbox": str(workdir / "outbox.db"),
        "mqtt": mqtt,
        "client_id": "machimori-tracker-city",
        "owntracks": False,
        "schools": schools,
        "notify": {
            "webhook": {"url": webhook, "secret_file": str(secret)},
            "retry_min_s": 0.5,
            "retry_max_s": 5.0,
        },
        "web": {"port": port, "secure_cookie": False, "session_secret_file": str(session)},
        **clock,
        "log_level": "info",
    }
    path = workdir / "tracker.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def register(database: Path, children: int, seed: int, day: Any) -> None:
    """Each child at its school, its tracker, one guardian linked to it (no names anywhere)."""
    kids = children_day(children, day, seed).kids
    db = TrackerDb(database)
    try:
        for i, kid in enumerate(kids):
            child = child_name(i)
            db.add_child(child, f"school-{kid.school}", 0)
            db.add_device(tracker_name(i), child, "tracker", None)
            db.add_guardian(f"guardian-{i:04d}", None, "ja", None)
            db.link(f"guardian-{i:04d}", child, 0)
    finally:
        db.close()


def stored_positions(store_db: Path) -> int:
    """Children's positions the store holds."""
    with contextlib.closing(
        sqlite3.connect(f"file:{store_db}?mode=ro", uri=True, timeout=10)
    ) as db:
        return db.execute(
            "SELECT COUNT(*) FROM messages WHERE kind = 'tracker' AND type = ?", (POSITION,)
        ).fetchone()[0]


def service_state(config_path: Path) -> tuple[int, int]:
    """Positions the tracker service holds, and its notifications still queued."""
    service = TrackerDb(load_config(config_path).database)
    try:
        held = service._all("SELECT COUNT(*) FROM positions")[0][0]
        return held, service.notification_counts()["pending"]
    finally:
        service.close()


def check(config_path: Path, store_db: Path, guardians: Guardians, day: str) -> SchoolReport:
    """What the service made of the day, against the store and a replay (see the module doc)."""
    config = load_config(config_path)
    report = SchoolReport(bad_signatures=guardians.bad)
    with contextlib.closing(
        sqlite3.connect(f"file:{store_db}?mode=ro", uri=True, timeout=10)
    ) as db:
        stored = set(
            db.execute(
                "SELECT device, seq FROM messages WHERE kind = 'tracker' AND type = ?", (POSITION,)
            )
        )
    service = TrackerDb(config.database)
    try:
        rows = service._all(
            "SELECT device, seq, ts_ms, lat, lon, acc, src FROM positions ORDER BY device, seq"
        )
        held = {(r[0], r[1]) for r in rows}
        report.positions, report.missing = len(held), len(stored - held)
        days = {day}
        arrivals = {
            (child, s.id, day)
            for s in config.schools
            for day in days
            for child, kind, _ in service.presence(s.id, day)
            if kind == "arrival"
        }
        report.children = sum(len(service.children_at(s.id)) for s in config.schools)
        alerts = service.alerts()
        report.alerts = dict(Counter(a.kind for a in alerts))
        report.pending = service.notification_counts()["pending"]
        replayed = _replay(config, config.database, rows, days)
    finally:
        service.close()
    report.arrivals, report.replayed_arrivals = len(arrivals), len(replayed)
    report.arrivals_differ = len(arrivals ^ replayed)
    deliveries = {t["delivery"]: t for t in guardians.told}
    report.repeated = len(guardians.told) - len(deliveries)
    told = Counter((t["alert"], t["guardian"]) for t in deliveries.values())
    report.guardians_told = len(told)
    report.told_twice = sum(n - 1 for n in told.values())
    expected = {(a.id, f"guardian-{a.child.removeprefix('child-')}") for a in alerts}
    report.not_told = len(expected - set(told))
    return report


def _replay(config: Any, database: Path, rows: list[Any], days: set[str]) -> set[tuple]:
    """The arrivals a pipeline that was never killed makes of the positions, in seq order."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "replay.db"
        with (
            contextlib.closing(sqlite3.connect(database)) as source,
            contextlib.closing(sqlite3.connect(copy)) as target,
        ):
            source.backup(target)
        db = TrackerDb(copy)
        try:
            with db.tx() as cur:
                for table in ("positions", "presence", "fence_state", "alerts", "notifications"):
                    cur.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
            pipeline = Pipeline(
                db, config.schools, config.fence, ZoneInfo(config.timezone), [], lambda: 0
            )
            envelopes = [
                Envelope(
                    device,
                    seq,
                    utc_timestamp(datetime.fromtimestamp(ts_ms / 1000, UTC)),
                    POSITION,
                    {"lat": lat, "lon": lon, "src": src} | ({"acc": acc} if acc else {}),
                )
                for device, seq, ts_ms, lat, lon, acc, src in rows
            ]
            pipeline.handle(envelopes)
            return {
                (child, s.id, day)
                for s in config.schools
                for day in days
                for child, kind, _ in db.presence(s.id, day)
                if kind == "arrival"
            }
        finally:
            db.close()


def format_school(report: SchoolReport) -> str:
    r = report
    alerts = ", ".join(f"{k} {v}" for k, v in sorted(r.alerts.items())) or "none"
    return "\n".join(
        [
            f"tracker service: {r.positions} positions held, {r.missing} the store holds and it "
            f"does not; school arrivals {r.arrivals} of {r.children} children (a replay of the "
            f"same positions: {r.replayed_arrivals}, differing {r.arrivals_differ})",
            f"  alerts: {alerts}; guardians told {r.guardians_told}, twice {r.told_twice}, "
            f"not told {r.not_told}, still queued {r.pending}; deliveries repeated (same id) "
            f"{r.repeated}, bad signatures {r.bad_signatures}",
        ]
    )
