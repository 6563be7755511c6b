"""The tracker agent: its reporting policy, and the whole device on real ports — a simulated
receiver on a pty, an SOS button on a gpiozero mock pin, positions through the outbox and the
real broker into the store."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, date, datetime, timedelta

import pytest

from edge.agents.tracker import TrackerAgent, TrackerConfig
from edge.agents.tracker.config import GnssConfig, ModemConfig, ReportingConfig
from edge.agents.tracker.reporting import ReportingPolicy, distance_m
from edge.drivers.gnss import Fix
from edge.protocol.tracker import Position
from edge.runtime.clock import Clock
from edge.runtime.host import AgentHost, DeviceConfig, HostConfig, OutboxConfig
from edge.runtime.uplink import MqttConfig
from gateway.store.db import Filter
from sim.child_day import HOMES, JST, ChildDay
from sim.devices.cellular_modem import CellularModemSim
from sim.devices.gnss_receiver import GnssReceiverSim
from tests.store.store_helpers import start, store_config, wait_until
from tests.tracker.tracker_rig import start_tracker

DAY = date(2026, 12, 1)  # a Tuesday


def fix_at(lat: float, lon: float, at: datetime, speed: float | None = None) -> Fix:
    return Fix(ts=at.astimezone(UTC), lat=lat, lon=lon, hdop=1.0, satellites=8, speed_mps=speed)


def local(hh: int, mm: int, day: date = DAY) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=JST)


def north(lat: float, metres: float) -> float:
    return lat + metres / 111_195.0


def test_policy_still_child_sends_only_heartbeats():
    policy = ReportingPolicy(ReportingConfig())
    lat, lon = HOMES[0]
    sends, t = [], 0.0
    start_at = local(10, 0, date(2026, 12, 5))  # a Saturday: no school window
    while t < 3600:
        d = policy.decide(fix_at(north(lat, (t % 7) - 3), lon, start_at), start_at, t)
        if d.send:
            sends.append((t, d.why))
        t += d.next_in_s
    assert sends[0] == (0.0, "first")
    assert [why for _, why in sends[1:]] == ["still"] * (len(sends) - 1)
    gaps = [b - a for (a, _), (b, _) in zip(sends, sends[1:], strict=False)]
    assert gaps and all(900 <= g <= 900 + 120 for g in gaps)  # a heartbeat per 15 min (+ a look)


def test_policy_moving_child_sends_every_50_m_and_school_windows_are_finer():
    policy = ReportingPolicy(ReportingConfig())
    lat, lon = HOMES[0]
    day = local(16, 0, date(2026, 12, 5))  # Saturday afternoon, walking 1.2 m/s
    t, sends = 0.0, []
    while t < 600:
        d = policy.decide(fix_at(north(lat, 1.2 * t), lon, day, 1.2), day, t)
        sends += [t] if d.send else []
        t += d.next_in_s
    gaps = [b - a for a, b in zip(sends, sends[1:], strict=False)]
    # a send per 50 m, late by at most one look (30 s at 1.2 m/s)
    assert all(g * 1.2 >= 50 for g in gaps) and len(sends) >= 720 / (50 + 1.2 * 30)
    school = ReportingPolicy(ReportingConfig())
    morning = local(8, 0)
    t, n = 0.0, 0
    while t < 600:
        d = school.decide(fix_at(north(lat, 1.2 * t), lon, morning, 1.2), morning, t)
        n += d.send
        assert d.next_in_s == 15.0
        t += d.next_in_s
    assert n > len(sends)


def test_policy_reports_where_a_walk_ended_once_so_the_city_can_confirm_arrival():
    policy = ReportingPolicy(ReportingConfig())
    lat, lon = HOMES[0]
    day = local(16, 0, date(2026, 12, 5))
    t, sends = 0.0, []
    while t < 1200:  # 5 minutes walking north, then standing still at the club's door
        metres = 1.2 * min(t, 300.0)
        d = policy.decide(fix_at(north(lat, metres), lon, day, 1.2 if t < 300 else 0.0), day, t)
        sends += [(t, d.why)] if d.send else []
        t += d.next_in_s
    after = [(at, why) for at, why in sends if at > 330]
    assert [why for _, why in after] == ["still"]  # once, not every look
    assert 300 + 90 <= after[0][0] <= 300 + 90 + 120


def test_policy_night_is_sparse_and_sos_is_immediate():
    policy = ReportingPolicy(ReportingConfig())
    lat, lon = HOMES[1]
    night = local(23, 0)
    first = policy.decide(fix_at(lat, lon, night), night, 0.0)
    second = policy.decide(fix_at(lat, lon, night), night, 600.0)
    assert first.send and not second.send and second.next_in_s == 600.0
    policy.sos(601.0)
    sos = policy.decide(fix_at(lat, lon, night), night, 601.0)
    assert sos.send and sos.why == "sos" and sos.next_in_s == 15.0


def test_position_data_is_minimised_and_checked():
    data = Position(38.1079123456, 140.0327987654, 4.5, 1.234, "gnss", "school", 0.9, 8).data()
    assert data == {
        "lat": 38.10791,
        "lon": 140.0328,
        "src": "gnss",
        "why": "school",
        "acc": 4.5,
        "spd": 1.2,
        "hdop": 0.9,
        "sats": 8,
    }
    assert Position.from_data(data).lat == 38.10791
    for bad, field in (({**data, "lat": 91}, "data.lat"), ({**data, "name": "x"}, "data.name")):
        with pytest.raises(ValueError, match=field):
            Position.from_data(bad)


@pytest.mark.parametrize("seed", [1, 2])
def test_tracker_on_a_pty_reaches_the_store_and_sos_goes_at_once(tmp_path, broker, pins, seed):
    device = f"tracker-e2e-{seed}"
    clock = Clock(60.0, start=local(7, 34))
    child = ChildDay(DAY, HOMES[seed % len(HOMES)], seed=seed)
    store = start(store_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", broker))
    with GnssReceiverSim(child.sky, clock, period_s=0.2, seed=seed) as receiver:
        host, runner = start_tracker(tmp_path, broker, clock, receiver.path, device)
        try:
            # about 14 simulated minutes: the walk to school
            rows = wait_until(lambda: positions(store, device, 8), 60, "positions in the store")
            assert {r["src"] for r in rows} == {"gnss"}
            for r in rows:  # each stored position lies near the child's true path that day
                truth = [child.truth(t) for t in _minutes_around(r["ts"])]
                assert min(distance_m(r["lat"], r["lon"], la, lo) for la, lo, _ in truth) < 120
            pins.pin(27).drive_low()  # the SOS button, to ground
            pressed = time.monotonic()
            sos = Filter(device=device, type="sos")
            wait_until(lambda: store.store.messages(sos, 1), 5, "the SOS event")
            assert time.monotonic() - pressed < 5.0  # the next look would be minutes away
        finally:
            host.stop.set()
            runner.join(10)
            store.stop()
        assert receiver.errors == []


def positions(store, device: str, n: int) -> list[dict] | None:
    rows = store.store.messages(Filter(device=device, type="position"), 10_000)
    out = [dict(row.data, ts=row.ts_ms) for row in rows]
    return out if len(out) >= n else None


def _minutes_around(ts_ms: int) -> list[datetime]:
    at = datetime.fromtimestamp(ts_ms / 1000, UTC)
    return [at + timedelta(seconds=s) for s in range(-120, 121, 10)]


def test_tracker_with_the_modem_s_gnss_reports_positions_battery_and_link(tmp_path, broker, watch):
    """The third kind of tracker: no NMEA receiver, the SIM7600's own GNSS by AT, a fuel gauge
    in sysfs; the state message carries battery and link, the positions say src modem."""
    clock = Clock(60.0, start=local(7, 34))
    child = ChildDay(DAY, HOMES[1], seed=9)

    def where():
        sky = child.sky(clock.now())
        return (sky.lat, sky.lon, clock.now()) if sky.fix else None

    battery = tmp_path / "battery"
    battery.mkdir()
    for name, value in (("capacity", "64"), ("voltage_now", "3812000"), ("status", "Charging")):
        (battery / name).write_text(value + "\n")
    seen = watch(broker, "machimori/v1/tracker/#")
    with CellularModemSim("sim7600", position=where) as modem:
        host = AgentHost(
            HostConfig(
                device=DeviceConfig("tracker-modem", "tracker"),
                agent="tracker",
                mqtt=MqttConfig(host=broker.host, port=broker.port, confirm="broker"),
                outbox=OutboxConfig(path=tmp_path / "outbox.db", sync="normal"),
            ),
            clock,
        )
        config = TrackerConfig(
            gnss=GnssConfig(source="sim7600"),
            modem=ModemConfig(port=modem.path),
            sos_pin=None,
            battery=str(battery),
        )
        runner = threading.Thread(target=host.run, args=(TrackerAgent(host, config),))
        runner.start()
        try:
            messages = seen.collect(
                lambda m: sum(b'"position"' in x.payload for x in m) >= 3, timeout_s=40
            )
        finally:
            host.stop.set()
            runner.join(10)
        assert modem.errors == []
    bodies = [json.loads(m.payload) for m in messages if m.topic.endswith("/telemetry")]
    positions = [b["data"] for b in bodies if b["type"] == "position"]
    assert len(positions) >= 3 and {p["src"] for p in positions} == {"modem"}
    state = next(b["data"] for b in bodies if b["type"] == "state")
    assert state | {} == {
        "gnss": state["gnss"],
        "pct": 64,
        "v": 3.81,
        "chg": True,
        "rssi": -85,
        "reg": "home",
        "sim": "ready",
        "cycles": 0,
    }
