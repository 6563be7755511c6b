"""The public sightings page (クマ出没情報) and its open data: harmful animals only, placed at the
centre of a grid square and never at the camera, without images or camera ids; as a list and a
map in Chromium, as JSON, and as Smart Data Models Alert entities."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from store_helpers import SITES, Running, at, get, get_json, start, store_config
from test_store_sdm import fits

from edge.protocol import Envelope, Topic
from gateway.api.sightings import coarse
from gateway.store.intake import Batch, classify

NO_TILES = "http://127.0.0.1:9/tiles/{z}/{x}/{y}.png"
CAMERAS = {c["device"]: c for c in yaml.safe_load(SITES.read_text())["cameras"]}


def detection(run: Running, device: str, seq: int, minutes_ago: float, **data) -> None:
    env = Envelope(device, seq, at(minutes_ago), "detection", {"event_id": f"ev-{seq}", **data})
    batch = Batch(received_ms=0)
    batch.add(classify(str(Topic("camera", device, "event")), env.to_json(), 10**6))
    run.store.write(batch)


@pytest.fixture
def wild(tmp_path: Path) -> Iterator[Running]:
    config = store_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}")
    config.http.map_tiles = NO_TILES
    run = start(config)
    detection(run, "camera-01", 0, 90, label="bear", harmful=True, confidence=0.9)
    detection(run, "camera-02", 0, 30, label="boar", harmful=True, confidence=0.8)
    detection(run, "camera-02", 1, 20, label="person", harmful=False, confidence=0.9)
    detection(run, "camera-99", 0, 10, label="bear", harmful=True)  # not a listed camera
    detection(run, "camera-01", 1, 15 * 24 * 60, label="bear", harmful=True)  # 15 days ago
    yield run
    run.stop()


def test_a_point_goes_to_the_centre_of_its_grid_square():
    lat, lon = 38.1322, 139.9987
    centre = coarse(lat, lon, 1000)
    assert centre != (lat, lon)
    from gateway.api.ngsi.geo import haversine_m

    assert haversine_m((lat, lon), centre) <= 1000 / 2**0.5 + 1  # within the square
    # every point of the same square lands on the same centre
    assert coarse(lat + 0.001, lon + 0.001, 1000) == centre
    assert coarse(*centre, 1000) == centre
    assert coarse(lat, lon, 5000) != centre


def test_only_harmful_animals_from_listed_cameras_recently_coarsened(wild):
    found = get_json(wild.url + "api/v1/sightings")
    assert [(s["species"], s["species_ja"], s["place"]) for s in found] == [
        ("boar", "イノシシ", "野川上流 河川敷"),
        ("bear", "クマ", "草岡地区 山際"),
    ]
    bear = found[1]
    camera = CAMERAS["camera-01"]
    assert (bear["lat"], bear["lon"]) == coarse(camera["lat"], camera["lon"], 1000)
    assert (bear["lat"], bear["lon"]) != (camera["lat"], camera["lon"])
    assert bear["grid_m"] == 1000
    text = get(wild.url + "api/v1/sightings")[2].decode()
    for secret in ("camera-0", "ev-", str(camera["lat"]), str(camera["lon"]), "image"):
        assert secret not in text


def test_sightings_are_alert_entities_of_the_smart_data_model(wild):
    alerts = get_json(wild.url + "ngsi/v2/entities?type=Alert&options=keyValues")
    assert [a["name"] for a in alerts] == ["イノシシ", "クマ"]
    bear = alerts[1]
    assert bear["category"] == "security" and bear["severity"] == "high"
    assert bear["areaServed"] == "草岡地区 山際"
    camera = CAMERAS["camera-01"]
    assert bear["location"]["coordinates"] == list(coarse(camera["lat"], camera["lon"], 1000))[::-1]
    assert "camera" not in bear["id"]
    for alert in alerts:
        fits("Alert", alert)
    danger = get_json(wild.url + "ngsi/v2/entities?type=Alert&q=severity==high&attrs=name")
    assert [a["name"]["value"] for a in danger] == ["クマ"]


def test_the_sightings_page_lists_and_maps_without_images(wild, tab):
    tab.goto(wild.url + "sightings")
    lines = tab.evaluate(
        "[...document.querySelectorAll('ol.sightings li')].map(li =>"
        " [li.querySelector('.sp').textContent, li.querySelector('.pl').textContent])"
    )
    assert lines == [["イノシシ", "野川上流 河川敷"], ["クマ", "草岡地区 山際"]]
    assert tab.wait_for("document.querySelectorAll('#map path.marker').length === 2")
    images = tab.evaluate(
        "[...document.images].filter(i => !i.classList.contains('leaflet-tile')).length"
    )
    assert images == 0  # no photo, ever
    text = tab.evaluate("document.body.innerText")
    assert "camera-0" not in text and "1000m四方" in text
    tab.evaluate("document.querySelector('a.switch').click()")
    tab.wait_for("document.documentElement.lang === 'en'")
    assert "wild boar" in tab.evaluate("document.querySelector('ol.sightings').innerText")


def test_no_sightings_says_so(tmp_path: Path):
    run = start(store_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}"))
    try:
        page = get(run.url + "sightings")[2].decode()
        assert "この14日間、出没の確認はありません。" in page
        assert json.loads(get(run.url + "api/v1/sightings")[2]) == []
    finally:
        run.stop()
