"""The river page in a storm, in headless Chromium on a phone: the overview (every gauge as one
line in its level's colour, worst first), the map with its markers when no tile can be loaded,
the four levels next to each chart, 欠測 in plain words, the offline notice in the city's time
zone, the API documentation at /docs, and the staff page in words."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from store_helpers import (
    STAFF_PASSWORD,
    STAFF_USER,
    Running,
    at,
    seed_four_states,
    start,
    store_config,
)

from edge.protocol import Envelope, Topic
from gateway.store.intake import Batch, classify

# the JMA warning colours of the page's stylesheet
COLOURS = {
    "danger": "rgb(170, 0, 170)",
    "caution": "rgb(242, 231, 0)",
    "missing": "rgb(122, 122, 122)",
    "normal": "rgb(232, 238, 245)",
}
NO_TILES = "http://127.0.0.1:9/tiles/{z}/{x}/{y}.png"  # nothing listens: every tile fails


@pytest.fixture
def storm(tmp_path: Path) -> Iterator[Running]:
    config = store_config(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", refresh_s=1)
    config.http.map_tiles = NO_TILES
    run = start(config)
    seed_four_states(run.store)
    yield run
    run.stop()


def test_the_overview_shows_every_gauge_worst_first_in_its_colour(storm, tab):
    tab.goto(storm.url)
    lines = tab.evaluate(
        "[...document.querySelectorAll('ol.overview li')].map(li => [li.dataset.device,"
        " li.querySelector('.ov-state').textContent, li.querySelector('.ov-level').textContent"
        ".trim(), getComputedStyle(li).backgroundColor])"
    )
    assert lines == [
        ["river-04", "氾濫危険水位", "2.50 m →", COLOURS["danger"]],  # steady for 20 min
        ["river-02", "氾濫注意水位", "1.90 m →", COLOURS["caution"]],
        ["river-03", "欠測", "— m", COLOURS["missing"]],
        ["river-01", "平常", "1.00 m →", COLOURS["normal"]],
    ]
    # the whole city in the first screen of a phone
    bottom = tab.evaluate("document.querySelector('ol.overview').getBoundingClientRect().bottom")
    assert bottom <= tab.evaluate("window.innerHeight")
    # a line leads to its gauge's section
    tab.evaluate("document.querySelector('ol.overview li a').click()")
    assert tab.wait_for("location.hash") == "#site-river-04"


def test_the_map_shows_the_gauges_without_tiles(storm, tab):
    tab.goto(storm.url)
    markers = tab.wait_for(
        "(() => { const m = [...document.querySelectorAll('#map path.marker')];"
        " return m.length === 4 && m.map(p => [p.getAttribute('class').split(' ')"
        ".find(c => c.startsWith('marker-')), p.getAttribute('fill')]); })()"
    )
    assert sorted(markers) == sorted(
        [
            ["marker-danger", COLOURS["danger"]],
            ["marker-caution", COLOURS["caution"]],
            ["marker-missing", COLOURS["missing"]],
            ["marker-normal", COLOURS["normal"]],
        ]
    )
    # tiles were asked for and none arrived; the map is still there, under the overview
    assert tab.evaluate("document.querySelectorAll('#map img.leaflet-tile').length") > 0
    assert tab.evaluate("document.querySelectorAll('#map img.leaflet-tile-loaded').length") == 0
    assert tab.evaluate("!document.getElementById('map').hidden")
    assert tab.evaluate(
        "document.querySelector('ol.overview').compareDocumentPosition("
        "document.getElementById('map')) & Node.DOCUMENT_POSITION_FOLLOWING"
    )
    # after a refresh the markers are redrawn, not lost
    tab.evaluate("window.sameDocument = true")
    tab.wait_for("document.querySelector('.updated time').dataset.ms !== undefined")
    first = tab.evaluate("document.querySelector('.updated time').dataset.ms")
    tab.wait_for(f"document.querySelector('.updated time').dataset.ms !== '{first}'", timeout_s=10)
    assert tab.wait_for("document.querySelectorAll('#map path.marker').length === 4")
    assert tab.evaluate("window.sameDocument") is True


def test_levels_beside_the_chart_and_missing_said_plainly(storm, tab):
    tab.goto(storm.url)
    levels = tab.evaluate(
        "[...document.querySelectorAll('#site-river-02 .levels li')].map(li => li.innerText)"
    )
    assert levels == [
        "氾濫危険水位 2.80 m",
        "避難判断水位 2.40 m",
        "氾濫注意水位 1.80 m",
        "水防団待機水位 1.20 m",
    ]
    assert (
        tab.evaluate("getComputedStyle(document.querySelector('#site-river-02 .levels')).display")
        == "grid"
    )  # shown, not folded away
    labels = tab.evaluate(
        "[...document.querySelectorAll('#site-river-02 svg.chart')][0]"
        ".querySelectorAll('text.level-label').length"
    )
    assert labels >= 3  # the levels inside the axis' range carry their names
    unit = tab.evaluate("document.querySelector('#site-river-02 svg.chart text.unit').textContent")
    assert unit == "m"
    missing = tab.evaluate("document.querySelector('#site-river-03 .advice').innerText")
    assert "観測できていません" in missing and "timeout" not in missing


def test_the_offline_notice_tells_the_city_s_time_on_a_phone_set_elsewhere(storm, tab):
    tab.send("Emulation.setTimezoneOverride", {"timezoneId": "America/New_York"})
    tab.goto(storm.url)
    loaded = datetime.now(ZoneInfo("Asia/Tokyo"))
    storm.stop()  # the server goes away: the next refresh fails
    text = tab.wait_for(
        "(() => { const n = document.querySelector('p.offline');"
        " return n && !n.hidden && n.textContent; })()",
        timeout_s=15,
    )
    hour, minute = map(int, re.search(r"(\d{1,2}):(\d{2})", text).groups())
    shown = loaded.replace(hour=hour, minute=minute, second=0, microsecond=0)
    assert abs((shown - loaded).total_seconds()) < 120, (text, loaded)
    assert text.startswith("最新の情報を取得できません")


def test_the_api_documentation_page(storm, tab):
    tab.goto(storm.url + "docs")
    count = tab.wait_for(
        "document.querySelectorAll('.opblock').length >= 20 &&"
        " document.querySelectorAll('.opblock').length",
        timeout_s=30,
    )
    assert count >= 20
    paths = tab.evaluate(
        "[...document.querySelectorAll('.opblock-summary-path')].map(e => e.textContent)"
    )
    assert any("/ngsi/v2/entities" in p for p in paths)
    assert any("/api/v1/sites" in p for p in paths)
    tab.goto(storm.url)
    assert tab.evaluate("document.querySelector('footer a[href=\"/docs\"]') !== null")
    assert tab.evaluate(
        "[...document.querySelectorAll('footer a')].every(a => !a.href.endsWith('.json'))"
    )


def test_the_staff_page_speaks_in_words(storm, tab):
    batch = Batch(received_ms=0)
    crossing = {"level_m": 2.45, "threshold": "danger", "direction": "rising"}
    env = Envelope("river-04", 10, at(0), "level_crossing", crossing)
    batch.add(classify(str(Topic("river", "river-04", "event")), env.to_json(), 10**6))
    storm.store.write(batch)
    tab.goto(storm.url + "staff/login")
    tab.evaluate(
        f"document.querySelector('input[name=user]').value = '{STAFF_USER}';"
        f"document.querySelector('input[name=password]').value = '{STAFF_PASSWORD}';"
        "document.querySelector('form.login').submit()"
    )
    tab.wait_for("location.pathname === '/staff' && !!document.querySelector('#events')")
    event = tab.evaluate("document.querySelector('tr.event[data-type=level_crossing]').innerText")
    assert "寺泉橋" in event and "氾濫危険水位を超えました" in event and "{" not in event
    sites = tab.evaluate(
        "[...document.querySelectorAll('#sites tr[data-device]')].map(r => r.innerText)"
    )
    river03 = next(s for s in sites if "上流観測所" in s)
    assert "欠測" in river03 and "timeout" in river03  # the code stays for staff
    devices = tab.evaluate("document.querySelector('#devices').innerText")
    assert "長井橋" in devices
