"""The HTTP API on each backend, as a client uses it: what it answers, who may see what, and a
clear 4xx (never a 500) for a bad request."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from store_helpers import JPEG, at, get, get_json, login


def test_devices_with_status_and_measured_loss(api):
    (river,) = get_json(api.url + "api/v1/devices")  # the camera and the child: staff only
    assert river["device"] == "river-01" and river["state"] == "online"
    assert (river["received"], river["lost"], river["last_seq"]) == (7 * 144 - 1, 1, 1007)
    assert river["last_seq_issued"] == 1010  # the gauge has issued 3 more than arrived yet
    assert get_json(api.url + "api/v1/devices/river-01") == river
    staff = login(api.url)
    kinds = {d["device"]: d["kind"] for d in get_json(api.url + "api/v1/devices", staff)}
    assert kinds == {"cam-01": "camera", "kid-07": "tracker", "river-01": "river"}


def test_latest_values(api):
    (latest,) = get_json(api.url + "api/v1/latest")
    assert latest["device"] == "river-01" and latest["seq"] == 1007
    assert latest["data"]["level_m"] == 1.0 and latest["ts"] == at(0).replace("Z", "") + "Z"
    staff = login(api.url)
    # positions of children: not even staff read them here (the tracker service audits views)
    assert get_json(api.url + "api/v1/latest?kind=tracker", staff) == []
    assert {r["device"] for r in get_json(api.url + "api/v1/latest", staff)} == {
        "cam-01",
        "river-01",
    }


def test_children_s_positions_are_never_public(api):
    for path in (
        "api/v1/latest?kind=tracker",
        "api/v1/latest?device=kid-07",
        "api/v1/devices?kind=tracker",
        "api/v1/events?kind=tracker",
    ):
        assert get_json(api.url + path) == [], path
    assert get(api.url + "api/v1/devices/kid-07")[0] == 404
    assert get(api.url + "api/v1/devices/kid-07/series?type=position&field=lat")[0] == 404
    csv_text = get(api.url + "api/v1/export.csv?kind=tracker")[2].decode("utf-8-sig")
    assert csv_text.count("\n") == 1  # the header only
    geo = json.loads(get(api.url + "api/v1/export.geojson")[2])
    assert geo["features"] == []
    staff = login(api.url)
    geo = json.loads(get(api.url + "api/v1/export.geojson?kind=tracker", staff)[2])
    assert geo["features"] == []  # staff neither: only the tracker service's audited views
    assert get_json(api.url + "api/v1/devices/kid-07", staff)["kind"] == "tracker"  # its health
    assert get(api.url + "api/v1/devices/kid-07/series?type=position&field=lat", staff)[0] == 404


def test_series_with_range_and_downsampling(api):
    start = at(60).replace(":", "%3A")
    end = at(0).replace(":", "%3A")
    raw = get_json(api.url + f"api/v1/devices/river-01/series?from={start}&to={end}")
    values = [p["value"] for p in raw["points"]]
    assert len(values) == 6 and values[1] is None  # the 欠測 reading is a gap, not a number
    assert values[0] == pytest.approx(1.006) and raw["step_s"] is None
    week = get_json(api.url + f"api/v1/devices/river-01/series?from={at(7 * 1440)}&step=86400")
    assert 7 <= len(week["points"]) <= 8
    assert sum(p["count"] for p in week["points"]) == 7 * 144 - 2
    assert all(p["min"] <= p["value"] <= p["max"] for p in week["points"])
    asked = datetime.now(UTC)
    default = get_json(api.url + "api/v1/devices/river-01/series")  # the last 24 hours
    start, end = (datetime.fromisoformat(default[k]) for k in ("start", "end"))
    assert end - start == timedelta(days=1) and abs(end - asked) < timedelta(minutes=1)
    # the seed's NOW was taken when the tests started: a loaded run asks minutes later, and
    # readings older than a day have left the window by then
    q = f"from={default['start']}&to={default['end']}".replace(":", "%3A").replace("+", "%2B")
    explicit = get_json(api.url + f"api/v1/devices/river-01/series?{q}")
    assert default["points"] == explicit["points"] and 140 <= len(default["points"]) <= 144


def test_events_link_their_image_and_the_image_is_staff_only(api):
    assert get_json(api.url + "api/v1/events") == []  # camera events are not public
    staff = login(api.url)
    (event,) = get_json(api.url + "api/v1/events", staff)
    assert event["data"]["label"] == "bear" and event["image"] == "/api/v1/images/cam-01/ev-1"
    status, headers, body = get(api.url + event["image"][1:], staff)
    assert status == 200 and headers["content-type"] == "image/jpeg" and body == JPEG
    assert get(api.url + event["image"][1:])[0] == 404


def test_csv_export_opens_in_a_spreadsheet(api):
    status, headers, body = get(
        api.url + f"api/v1/export.csv?device=river-01&fields=level_m,valid&from={at(30)}"
    )
    assert status == 200 and headers["content-type"].startswith("text/csv")
    assert body.startswith("\ufeff".encode())  # Excel then reads the UTF-8 right
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert [r["seq"] for r in rows] == ["1004", "1005", "1006", "1007"]  # from is inclusive
    assert rows[-1]["level_m"] == "1.0" and json.loads(rows[-1]["data"])["valid"] == 9
    assert list(rows[0])[:7] == ["device", "kind", "seq", "ts", "received", "channel", "type"]


def test_sites_and_their_geojson(api):
    sites = get_json(api.url + "api/v1/sites")["sites"]
    assert [s["device"] for s in sites] == ["river-01", "river-02", "river-03", "river-04"]
    assert sites[0]["state"] == "normal" and sites[0]["level_m"] == 1.0
    assert sites[1]["state"] == "missing" and sites[1]["missing"] == "no_data"
    geo = json.loads(get(api.url + "api/v1/sites.geojson")[2])
    assert geo["features"][0]["geometry"] == {"type": "Point", "coordinates": [140.0561, 38.1052]}


def test_rejected_messages_are_for_staff(api):
    assert get(api.url + "api/v1/rejections")[0] == 401
    body = get_json(api.url + "api/v1/rejections", login(api.url))
    assert body["counts"][0]["reason"] == "bad_json" and body["counts"][0]["count"] == 1
    assert body["recent"][0]["payload"] == "{broken"


@pytest.mark.parametrize(
    "path, status, words",
    [
        ("api/v1/devices?kind=boat", 422, "river"),
        ("api/v1/devices/River%2001", 422, "pattern"),
        ("api/v1/devices/river-99", 404, "river-99"),
        ("api/v1/latest?type=Level", 422, "pattern"),
        ("api/v1/devices/river-01/series?from=yesterday", 422, "pattern"),
        ("api/v1/devices/river-01/series?from=2026-02-30T10:00:00Z", 400, "not a real date"),
        ("api/v1/devices/river-01/series?to=1795341600", 422, "pattern"),
        ("api/v1/devices/river-01/series?from=2026-11-22T10:00:00", 422, "pattern"),
        (
            "api/v1/devices/river-01/series?from=2026-11-22T10:00:00Z&to=2026-11-21T10:00:00Z",
            400,
            "before",
        ),
        ("api/v1/devices/river-01/series?from=2000-01-01T00:00:00Z&step=1", 400, "buckets"),
        ("api/v1/devices/river-01/series?step=0", 422, "greater"),
        ("api/v1/devices/river-01/series?field=level-m", 422, "pattern"),
        ("api/v1/devices/river-01/series?limit=100000", 422, "less"),
        ("api/v1/events?limit=-1", 422, "greater"),
        ("api/v1/export.csv?fields=a,b%20c", 422, "pattern"),
        ("api/v1/images/cam-01/..%2Fetc", 404, "Not Found"),
        ("api/v1/rejections?reason=%00", 422, "pattern"),
        (
            "api/v1/devices/river-01/series?from=9999-12-31T23:59:59Z&to=9999-12-31T23:59:59.5Z",
            200,
            "points",
        ),
    ],
)
def test_bad_parameters_get_a_4xx_with_a_message(api, path, status, words):
    got, headers, body = get(api.url + path)
    assert got == status, body
    assert headers["content-type"].startswith("application/json")
    assert words in body.decode()


def test_health(api):
    health = get_json(api.url + "healthz")
    assert health["ok"] is True and health["database"] in ("sqlite", "postgresql")
