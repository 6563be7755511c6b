"""``machimori routine replay``: tracker envelopes in (JSON lines, as on MQTT), the alerts the
service would have raised out; bad lines are counted, not fatal; --help a technician can use."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from edge.protocol import Envelope, utc_timestamp
from machimori.cli import main
from sim.city_children import lat_lon
from tests.routine.test_routine_model import AFTER_4_WEEKS, MONDAY
from tests.routine.tracks import HOME, SCHOOL, Day, routine


def envelopes(days: list[Day], device: str) -> list[str]:
    lines = []
    for day in days:
        for ts, x, y in day.fixes:
            lat, lon = lat_lon(x, y)
            moment = datetime.fromtimestamp(ts / 1000, UTC)
            data = {"lat": round(lat, 5), "lon": round(lon, 5), "acc": 6.0, "src": "gnss"}
            env = Envelope(device, ts // 1000, utc_timestamp(moment), "position", data)
            lines.append(env.to_json().decode())
    return lines


def test_replay_writes_the_alerts_of_each_device(tmp_path, capsys):
    # Wednesday 4 November (the Tuesday is 文化の日: a holiday, judged as a Sunday)
    odd = Day(AFTER_4_WEEKS + timedelta(days=2)).stay("07:40").walk(SCHOOL).stay("10:00")
    odd.walk((1500.0, 2000.0), lost=True).stay("12:00").walk(HOME).stay("23:59")
    usual = routine(MONDAY, 5)
    a = envelopes([*routine(MONDAY, 4), odd], "tracker-a")
    b = envelopes(usual, "tracker-b")
    lines = sorted(a + b, key=lambda line: json.loads(line)["ts"])
    lines.insert(100, "not json")
    lines.insert(200, json.dumps({"v": 1, "device": "tracker-a", "seq": 1, "ts": "x"}))
    state = {"v": 1, "device": "tracker-b", "seq": 9, "ts": "2026-10-05T00:00:00.000Z"}
    lines.insert(300, json.dumps(state | {"type": "state", "data": {"battery": 80}}))
    positions = tmp_path / "export.jsonl"
    positions.write_text("\n".join(lines) + "\n")
    out = tmp_path / "alerts.jsonl"
    assert main(["routine", "replay", "--positions", str(positions), "--out", str(out)]) == 0
    alerts = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(x["device"], x["event"], x["kind"]) for x in alerts][:1] == [
        ("tracker-a", "raise", "place")
    ]
    assert all(x["device"] == "tracker-a" for x in alerts)  # b kept to her routine
    first = alerts[0]
    assert set(first) == {"device", "ts", "event", "kind", "reason", "since", "key"}
    assert first["since"] <= first["ts"] and "ふだん" in first["reason"]["ja"]
    summary = capsys.readouterr().err
    assert "of 2 device(s)" in summary and "rejected 2" in summary and "skipped 1" in summary


def test_replay_help_and_a_missing_file(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["routine", "replay", "--help"])
    assert stop.value.code == 0 and "--positions" in capsys.readouterr().out
    code = main(["routine", "replay", "--positions", str(tmp_path / "no"), "--out", "-"])
    assert code == 2 and "error:" in capsys.readouterr().err
