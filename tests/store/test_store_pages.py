"""The pages as people see them, in headless Chromium on a phone-sized screen: the public river
page (its states, colours, 欠測, refresh and English switch) and the staff page behind a login."""

from __future__ import annotations

import time

import yaml
from store_helpers import JPEG, SITES, STAFF_PASSWORD, STAFF_USER, get, stored, wait_until

from edge.protocol import Topic

YELLOW = "rgb(242, 231, 0)"  # 氾濫注意, the JMA warning yellow
GREY = "rgb(122, 122, 122)"  # 欠測
SITE = "#site-{} "


def badge(tab, device):
    return tab.evaluate(
        f"(() => {{ const b = document.querySelector('#site-{device} .badge');"
        " return b && [b.textContent, getComputedStyle(b).backgroundColor]; })()"
    )


def test_the_river_page_shows_a_gauge_crossing_flood_caution_within_one_refresh(
    running_store, publisher, tab
):
    refresh_s = running_store.service.config.http.refresh_s
    publisher.level("river-02", 1.5, minutes_ago=20)
    publisher.level("river-02", 1.6, minutes_ago=10)
    publisher.level("river-02", 1.7)  # river-02: standby 1.2, caution 1.8
    wait_until(lambda: stored(running_store, "river-02") == 3)
    time.sleep(refresh_s)  # let the page's server-side cache move on
    tab.goto(running_store.url)
    assert badge(tab, "river-02") == ["水防団待機水位", "rgb(46, 139, 87)"]
    tab.evaluate("window.sameDocument = true")  # gone if the page reloads instead of refreshing
    publisher.level("river-02", 1.93)
    wait_until(lambda: stored(running_store, "river-02") == 4)
    stored_at = time.monotonic()
    # one refresh: the next fetch after the data is in, plus the server's short render cache
    text, colour = tab.wait_for(
        "(() => { const b = document.querySelector('#site-river-02 .badge');"
        " return b && b.textContent === '氾濫注意水位' && [b.textContent,"
        " getComputedStyle(b).backgroundColor]; })()",
        timeout_s=refresh_s * 2 + 5,
    )
    assert time.monotonic() - stored_at <= refresh_s * 2 + 5
    assert (text, colour) == ("氾濫注意水位", YELLOW)
    assert tab.evaluate("window.sameDocument") is True
    site = "#site-river-02"
    assert tab.evaluate(f"document.querySelector('{site} .level').textContent") == "1.93 m"
    assert "氾濫注意水位に達しています" in tab.evaluate(
        f"document.querySelector('{site}').innerText"
    )
    assert "上昇" in tab.evaluate(f"document.querySelector('{site} .trend').textContent")
    assert tab.evaluate(f"document.querySelector('{site} .observed time').textContent")


def test_every_site_with_its_charts_and_missing_gauges_shown_as_missing(
    running_store, publisher, tab
):
    publisher.level("river-01", 1.2)
    publisher.level("river-02", None)  # the gauge itself reports 欠測
    publisher.level("river-03", 1.0, minutes_ago=45)  # stale: nothing for 45 min (limit 30)
    wait_until(lambda: all(stored(running_store, f"river-0{d}") for d in (1, 2, 3)))
    time.sleep(running_store.service.config.http.refresh_s)
    tab.goto(running_store.url)
    sites = tab.evaluate("[...document.querySelectorAll('section.site')].map(s => s.id)")
    configured = yaml.safe_load(SITES.read_text())["sites"]
    assert sites == [f"site-{s['device']}" for s in configured]
    assert badge(tab, "river-01") == ["平常", "rgb(232, 238, 245)"]
    assert badge(tab, "river-02") == ["欠測", GREY]
    assert badge(tab, "river-03") == ["欠測", GREY]
    text = tab.evaluate("document.querySelector('#site-river-03').innerText")
    assert "30分以上" in text and "1.00 m" not in text  # never the old number
    charts = tab.evaluate(
        "[...document.querySelectorAll('#site-river-01 svg.chart')].map(s =>"
        " [s.getAttribute('aria-label'), s.querySelectorAll('line[class^=level-]').length])"
    )
    assert charts == [["長井橋の水位 (24時間)", 4], ["長井橋の水位 (7日間)", 4]]
    assert tab.evaluate("document.documentElement.scrollWidth <= window.innerWidth")  # phone
    assert tab.evaluate("document.documentElement.lang") == "ja"
    tab.evaluate("document.querySelector('a.switch').click()")
    tab.wait_for("document.documentElement.lang === 'en'")
    assert badge(tab, "river-03")[0] == "No data (欠測)"
    assert "Nagai Bridge" in tab.evaluate("document.querySelector('#site-river-01 h2').textContent")


def test_the_staff_page_refuses_an_anonymous_visitor(running_store, publisher, tab):
    publisher.envelope(
        "cam-01",
        "detection",
        {"event_id": "ev-5", "label": "bear", "harmful": True},
        kind="camera",
        channel="event",
    )
    wait_until(lambda: stored(running_store, "cam-01"))
    tab.goto(running_store.url + "staff")
    assert tab.evaluate("location.pathname") == "/staff/login"
    page = tab.evaluate("document.body.innerText")
    assert "bear" not in page and "cam-01" not in page
    for path in ("staff", "staff/fragment"):
        status, headers, _ = get(running_store.url + path)
        assert status == 303 and headers["location"].startswith("/staff/login")
    forged = "machimori_staff=a2F0b3w5OTk5OTk5OTk5.bad-signature"
    assert get(running_store.url + "staff", forged)[0] == 303
    # a wrong password gets a message and no session
    tab.evaluate(
        f"document.querySelector('input[name=user]').value = '{STAFF_USER}';"
        "document.querySelector('input[name=password]').value = 'guess';"
        "document.querySelector('form.login').submit()"
    )
    tab.wait_for("!!document.querySelector('.error')")
    assert tab.evaluate("document.cookie") == ""
    tab.goto(running_store.url + "staff")
    assert tab.evaluate("location.pathname") == "/staff/login"


def test_staff_see_detections_with_their_image_after_logging_in(running_store, publisher, tab):
    publisher.envelope(
        "cam-01",
        "detection",
        {"event_id": "ev-7", "label": "bear", "harmful": True, "confidence": 0.91},
        kind="camera",
        channel="event",
    )
    publisher.raw(str(Topic("camera", "cam-01", "image", "ev-7")), JPEG)
    publisher.envelope(
        "river-alerts",
        "level_crossing",
        {"site": "river-01", "level": "caution", "direction": "up"},
        kind="alert",
        channel="event",
    )
    wait_until(lambda: running_store.store.image("cam-01", "ev-7"))
    tab.goto(running_store.url + "staff/login")
    tab.evaluate(
        f"document.querySelector('input[name=user]').value = '{STAFF_USER}';"
        f"document.querySelector('input[name=password]').value = '{STAFF_PASSWORD}';"
        "document.querySelector('form.login').submit()"
    )
    tab.wait_for("location.pathname === '/staff' && !!document.querySelector('#events')")
    rows = tab.evaluate(
        "[...document.querySelectorAll('#events tr.event')].map(r => r.dataset.type)"
    )
    assert sorted(rows) == ["detection", "level_crossing"]
    detection = tab.evaluate("document.querySelector('tr.event[data-type=detection]').innerText")
    assert "bear (91%)" in detection and "危険な動物" in detection
    size = tab.wait_for(
        "(() => { const i = document.querySelector('tr.event[data-type=detection] img');"
        " return i && i.complete && i.naturalWidth && [i.naturalWidth, i.naturalHeight]; })()"
    )
    assert size == [48, 32]  # the camera's JPEG, served only to this session
    tab.evaluate("document.querySelector('form.logout button').click()")
    tab.wait_for("location.pathname === '/'")
    tab.goto(running_store.url + "staff")
    assert tab.evaluate("location.pathname") == "/staff/login"
