"""``machimori tracker``: the city manages who sees which child; retention deletes on time."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import yaml

from gateway.services.tracker_cli import main
from gateway.services.tracker_config import load_config
from gateway.services.tracker_db import TrackerDb
from sim.child_day import JST, SCHOOL


def config_file(tmp_path):
    path = tmp_path / "tracker.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "database": "tracker.db",
                "outbox": "outbox.db",
                "schools": [
                    {
                        "id": "nagai-chuo",
                        "name": "長井市立中央小学校",
                        "circle": {"lat": SCHOOL[0], "lon": SCHOOL[1], "radius_m": 60},
                    }
                ],
            },
            allow_unicode=True,
        )
    )
    return path


def run(path, *args, stdin: str = "") -> tuple[int, str]:
    import contextlib
    import sys

    out = io.StringIO()
    old = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = main([args[0], "--config", str(path), *args[1:]])
    finally:
        sys.stdin = old
    return code, out.getvalue()


def test_registry_link_unlink_audit_and_a_bad_config(tmp_path):
    path = config_file(tmp_path)
    assert run(path, "child", "add", "hana-2031", "--school", "nagai-chuo")[0] == 0
    assert run(path, "child", "add", "ken", "--school", "nowhere")[0] == 2
    code, out = run(
        path, "device", "add", "phone-hana", "--child", "hana-2031", "--kind", "owntracks"
    )
    assert code == 0 and "token" in out
    pw = "a-long-password\n"
    assert run(path, "guardian", "add", "sato01", "--password-stdin", stdin=pw)[0] == 0
    assert run(path, "link", "sato01", "hana-2031")[0] == 0
    db = TrackerDb(load_config(path).database)
    assert db.children_of("sato01") == ["hana-2031"]
    db.positions_for("guardian.sato01", "hana-2031", 0, 1, 1)
    code, out = run(path, "audit", "--child", "hana-2031")
    assert code == 0 and "guardian.sato01\thana-2031\ttrack" in out
    assert run(path, "unlink", "sato01", "hana-2031")[0] == 0
    assert db.children_of("sato01") == []
    assert run(path, "unlink", "sato01", "hana-2031")[0] == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("retention: {positions_days: 0}\n")
    code, out = run(bad, "check")
    assert code == 2 and "retention" in out


def test_retention_deletes_positions_after_30_days_and_keeps_arrivals_longer(tmp_path):
    path = config_file(tmp_path)
    config = load_config(path)
    db = TrackerDb(config.database)
    db.add_child("hana", "nagai-chuo", 0)
    now = datetime(2026, 12, 1, 9, 0, tzinfo=JST)
    ms = lambda d: int((now - timedelta(days=d)).timestamp() * 1000)  # noqa: E731
    with db.tx() as cur:
        db.insert_positions(
            cur,
            [("hana", ms(d), "tracker-1", d, 38.1, 140.0, 5.0, "gnss") for d in (1, 29, 31, 60)],
        )
        for d in (31, 400):
            db.record_presence(cur, "hana", "nagai-chuo", "arrival", f"day-{d}", ms(d))
    removed = db.purge(config.retention, ms(0))
    assert removed["positions"] == 2 and removed["presence"] == 1
    kept = db.positions_for("test", "hana", 0, 2**62, ms(0))
    assert sorted(p.ts_ms for p in kept) == [ms(29), ms(1)]
