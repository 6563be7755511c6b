"""The guardians' page in headless Chromium on a phone-sized screen: a guardian sees their own
child (position, time, accuracy, today's arrival, the map drawn with the vendored Leaflet even
though no tile loads), another guardian's child is refused, a share link works until it expires,
school staff see arrivals but no position, and every view is in the audit log."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import datetime, timedelta

import pytest

from edge.protocol import Envelope, utc_timestamp
from edge.protocol.tracker import Position
from edge.runtime.clock import Clock
from gateway.api.auth import hash_password
from sim.child_day import JST, SCHOOL
from tests.store.store_helpers import get, get_json
from tests.tracker.tracker_rig import Mailbox, Webhook, register, service_config, start_service

PASSWORD = "sato-password-1"


@pytest.fixture
def service(tmp_path, broker):
    mailbox, hook = Mailbox(), Webhook()
    clock = Clock(1.0, start=datetime(2026, 12, 1, 8, 0, tzinfo=JST))  # a Tuesday morning
    running = start_service(service_config(tmp_path, broker, mailbox.port, hook.url, "page"), clock)
    register(running)
    db = running.db
    db.add_child("ken", "nagai-chuo", 0)
    db.add_device("tracker-2", "ken", "tracker", None)
    db.add_guardian("suzuki", None, "ja", hash_password("suzuki-password"))
    db.link("suzuki", "ken", 0)
    db.add_staff("kyoto01", "nagai-chuo", hash_password("staff-password-1"))
    now = clock.now()
    envelopes = []
    for device, seq_base in (("tracker-1", 0), ("tracker-2", 100)):
        for k in range(6):  # walking into school over the last few minutes
            at = now - timedelta(minutes=12 - 2 * k)
            data = Position(SCHOOL[0] + 0.002 * max(0, 3 - k), SCHOOL[1], 4.5, 1.1).data()
            envelopes.append(Envelope(device, seq_base + k, utc_timestamp(at), "position", data))
    running.pipeline.handle(envelopes)
    yield running
    running.stop()
    hook.close()


def login(tab, url: str, user: str, password: str, role: str = "guardian") -> None:
    tab.goto(url + "login")
    tab.evaluate(
        f"document.querySelector('input[name=user]').value = '{user}';"
        f"document.querySelector('input[name=password]').value = '{password}';"
        f"document.querySelector('input[value={role}]').checked = true;"
        "document.querySelector('form.login').submit()"
    )


def test_a_guardian_sees_their_child_and_not_another(service, tab):
    url = service.url
    login(tab, url, "sato", PASSWORD)
    tab.wait_for("document.querySelector('.child[data-state=loaded]') !== null")
    assert tab.evaluate("[...document.querySelectorAll('.child')].map(c => c.dataset.child)") == [
        "hana"
    ]
    where = tab.evaluate("document.querySelector('.child .where').textContent")
    assert "精度 約5 m" in where and "時点" in where and f"{SCHOOL[0]:.5f}" in where
    # the vendored Leaflet drew the map although no tile server answers
    assert tab.wait_for("document.querySelector('.map').dataset.drawn === '1'")
    assert tab.evaluate("typeof L") == "object"
    assert tab.evaluate("document.querySelectorAll('.leaflet-overlay-pane path').length") >= 2
    arrival = tab.evaluate("document.querySelector('.arrival').textContent")
    assert arrival != "まだ" and ":" in arrival  # the fixes walked in: today's arrival time
    # another guardian's child: refused, from the page's own session
    status = tab.evaluate(
        "fetch('/api/children/ken/today', {credentials: 'same-origin'}).then(r => r.status)"
    )
    assert status == 403
    assert get(url + "api/children/hana/today")[0] == 403  # and without a session
    viewers = {(viewer, child) for _, viewer, child, _ in service.db.audit()}
    assert ("guardian.sato", "hana") in viewers and not any(c == "ken" for _, c in viewers)
    tab.goto(url + "children?lang=en")
    tab.wait_for("document.querySelector('.child[data-state=loaded]') !== null")
    assert "accurate to about 5 m" in tab.evaluate("document.querySelector('.where').textContent")


def test_a_share_link_works_until_it_expires_or_the_link_is_revoked(service, browser, tab):
    url = service.url
    login(tab, url, "sato", PASSWORD)
    tab.wait_for("document.querySelector('form.share') !== null")
    tab.evaluate("document.querySelector('form.share').submit()")
    link = tab.wait_for("document.querySelector('a.share-link')?.getAttribute('href')")
    visitor = browser.new_tab()
    try:
        visitor.goto(url + link.lstrip("/"))
        visitor.wait_for("document.querySelector('.child[data-state=loaded]') !== null")
        assert visitor.evaluate("document.querySelector('.child').dataset.child") == "hana"
        refused = visitor.evaluate(
            "fetch('/api/children/ken/today', {credentials: 'same-origin'}).then(r => r.status)"
        )
        assert refused == 403
        assert any(v.startswith("share.") for _, v, _, _ in service.db.audit("hana"))
        # an expired link
        from gateway.services.phones import token_hash

        service.db.add_share(token_hash("old-link"), "sato", "hana", service.now_ms() - 1000)
        status, _, body = get(url + "s/old-link")
        assert status == 403 and "期限" in body.decode()
        # revoking the guardian's link kills the share at once, open page included
        service.db.unlink("sato", "hana")
        status = visitor.evaluate(
            "fetch('/api/children/hana/today', {credentials: 'same-origin'}).then(r => r.status)"
        )
        assert status == 403
        assert get(url + link.lstrip("/"))[0] == 403
    finally:
        visitor.close()


def test_health_counts_without_personal_data(service):
    health = get_json(service.url + "healthz")
    assert health["counters"]["positions"] == 12 and health["alerts_queued"] >= 0
    assert "hana" not in json.dumps(health)


def test_school_staff_see_arrivals_not_positions(service, tab):
    login(tab, service.url, "kyoto01", "staff-password-1", role="staff")
    # the new page's body, not the old one's (a loaded machine can be read between the two)
    tab.wait_for(
        "location.pathname === '/school' && document.readyState === 'complete' && "
        "document.body !== null && document.body.innerText.includes('hana')"
    )
    text = tab.evaluate("document.body.innerText")
    assert "hana" in text and "ken" in text and "登校" in text
    assert f"{SCHOOL[0]:.3f}" not in text
    status = tab.evaluate(
        "fetch('/api/children/hana/today', {credentials: 'same-origin'}).then(r => r.status)"
    )
    assert status == 403


def test_a_logged_out_cookie_is_dead_even_if_copied(service):
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *_):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    form = urllib.parse.urlencode({"user": "sato", "password": PASSWORD, "role": "guardian"})
    try:
        opener.open(urllib.request.Request(service.url + "login", data=form.encode()), timeout=10)
    except urllib.error.HTTPError as answer:  # the 303 to /children carries the cookie
        cookie = answer.headers["set-cookie"].split(";")[0]
    assert get(service.url + "api/children/hana/today", cookie)[0] == 200
    try:
        opener.open(
            urllib.request.Request(
                service.url + "logout", data=b"", headers={"Cookie": cookie}, method="POST"
            ),
            timeout=10,
        )
    except urllib.error.HTTPError as answer:
        assert answer.code == 303
    assert get(service.url + "api/children/hana/today", cookie)[0] == 403
