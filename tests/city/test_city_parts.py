"""The parts ``sim city`` judges the services with (fast; the whole city is the slow test): the
guardians' webhook keeps only signed notices and tells a repeated delivery from a second notice;
the buses share the day's trips; a real tracker's GNSS plays its child's day."""

from __future__ import annotations

import urllib.error
import urllib.request
from datetime import UTC, datetime

import pytest

from gateway.services.notify import send_webhook
from gateway.services.tracker_config import WebhookConfig
from gateway.services.tracker_db import AlertRow, Pending
from sim.city.buses import trips_of
from sim.city.school import Guardians, sky_of
from sim.city_children import lat_lon


def _pending(delivery: int, alert: int) -> Pending:
    row = AlertRow(alert, "child-0001", "school_arrival", "2026-12-01", 0, {"school": "school-0"})
    return Pending(delivery, row, "guardian-0001", None, "ja", "webhook", 1)


def test_the_guardians_webhook_keeps_signed_notices_and_refuses_forged_ones(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret-for-the-test")
    guardians = Guardians(b"s3cret-for-the-test")
    try:
        config = WebhookConfig(url=guardians.url, secret_file=secret)
        send_webhook(config, _pending(1, 10), "t", "b")
        send_webhook(config, _pending(1, 10), "t", "b")  # the same delivery again
        send_webhook(config, _pending(2, 10), "t", "b")  # the same alert, a second notice
        forged = tmp_path / "forged"
        forged.write_text("not-the-secret")
        with pytest.raises(urllib.error.HTTPError):
            send_webhook(WebhookConfig(guardians.url, forged), _pending(3, 11), "t", "b")
        assert [(t["delivery"], t["alert"]) for t in guardians.told] == [
            ("1", 10),
            ("1", 10),
            ("2", 10),
        ]
        assert guardians.bad == 1
    finally:
        guardians.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(guardians.url, timeout=1)


def test_the_buses_share_the_days_trips_out_and_back():
    assert [trips_of(b, 17) for b in range(3)] == [slice(0, 2), slice(2, 4), slice(4, 6)]
    assert trips_of(8, 17) == slice(0, 2)  # more buses than pairs: round again


def test_a_real_trackers_sky_walks_between_its_childs_fixes():
    t0 = int(datetime(2026, 12, 1, tzinfo=UTC).timestamp() * 1000)
    where = sky_of([(t0, 0.0, 0.0), (t0 + 60_000, 100.0, 0.0)])
    half = where(datetime.fromtimestamp((t0 + 30_000) / 1000, UTC))
    lat, lon = lat_lon(50.0, 0.0)
    assert half.fix and abs(half.lat - lat) < 1e-9 and abs(half.lon - lon) < 1e-9
    after = where(datetime.fromtimestamp((t0 + 120_000) / 1000, UTC))
    assert abs(after.lon - lat_lon(100.0, 0.0)[1]) < 1e-9  # stays where the day's fixes end
