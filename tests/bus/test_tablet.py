"""The driver's tablet page in headless Chromium against the running bus agent: counts, undo,
the stop override, and entries made while the agent is down arriving once when it is back."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest
from bus_rig import jst
from store_helpers import wait_until

BUTTON = "document.querySelector('section[data-action={a}] button[data-fare={f}]')"


def click(tab, action: str, fare: str) -> None:
    tab.evaluate(BUTTON.format(a=action, f=fare) + ".click()")


def count(tab, action: str, fare: str) -> int:
    return int(
        tab.evaluate(BUTTON.format(a=action, f=fare) + ".querySelector('.count').textContent")
    )


def choose_stop(tab, stop_id: str) -> None:
    tab.evaluate(
        f"(() => {{ const s = document.getElementById('stop-select'); "
        f"s.value = '{stop_id}'; s.dispatchEvent(new Event('change')); }})()"
    )


@pytest.fixture
def tablet(bus_rig, browser):
    bus_rig.at_stop("S02")
    bus_rig.start_bus(jst(7, 2, 0))
    bus_rig.wait_matched("S02")
    tab = browser.new_tab(width=1280, height=800, mobile=False)  # an 8" tablet, landscape
    tab.goto(bus_rig.tablet_url)
    tab.wait_for("document.getElementById('stop-name').textContent === '本町'")
    yield bus_rig, tab
    tab.close()


def test_counts_recorded_japanese_first_and_undo(tablet):
    rig, tab = tablet
    assert tab.evaluate("document.documentElement.lang") == "ja"
    assert "乗車" in tab.evaluate(
        "document.querySelector('section[data-action=board] h2').textContent"
    )
    for action, fare in [
        ("board", "cash"),
        ("board", "cash"),
        ("board", "child"),
        ("alight", "senior"),
    ]:
        click(tab, action, fare)
    tab.wait_for("document.getElementById('pending').textContent === '0'")
    assert (count(tab, "board", "cash"), count(tab, "board", "child")) == (2, 1)
    assert count(tab, "alight", "senior") == 1
    click(tab, "board", "ticket")
    tab.wait_for("document.getElementById('pending').textContent === '0'")
    tab.evaluate("document.getElementById('undo').click()")  # the ticket was a mistake
    tab.wait_for("document.getElementById('pending').textContent === '0'")
    tab.wait_for(
        BUTTON.format(a="board", f="ticket") + ".querySelector('.count').textContent === '0'"
    )
    events = rig.wait_messages("tablet", 6)
    entries = [e.data for e in events]
    assert [(e["action"], e["fare"]) for e in entries] == [
        ("board", "cash"),
        ("board", "cash"),
        ("board", "child"),
        ("alight", "senior"),
        ("board", "ticket"),
        ("undo", None),
    ]
    assert entries[-1]["target"] == entries[-2]["entry"]
    assert all(e["stop_id"] == "S02" and e["trip_id"] == "WD-01" for e in entries)
    state = json.loads(urllib.request.urlopen(rig.tablet_url + "api/state").read())
    assert state["counts"]["board"] == {"cash": 2, "child": 1}
    assert state["on_board"] == 2  # 3 boarded, 1 alighted, by the tablet


def test_the_driver_overrides_the_stop(tablet):
    rig, tab = tablet
    choose_stop(tab, "S04")
    tab.wait_for("document.getElementById('stop-name').textContent === 'あやめ公園'")
    click(tab, "alight", "adult")
    (event,) = rig.wait_messages("tablet", 1)
    assert event.data["stop_id"] == "S04"
    choose_stop(tab, "")  # back to GPS
    tab.wait_for("document.getElementById('stop-name').textContent === '本町'")


def test_entries_made_while_the_agent_is_down_arrive_once(tablet):
    rig, tab = tablet
    click(tab, "board", "adult")
    tab.wait_for("document.getElementById('pending').textContent === '0'")
    rig.stop_bus()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(rig.tablet_url + "api/state", timeout=2)
    for action, fare in [("board", "cash"), ("board", "disability"), ("alight", "adult")]:
        click(tab, action, fare)
    tab.wait_for("document.getElementById('link').className === 'offline'")
    assert tab.evaluate("document.getElementById('pending').textContent") == "3"
    assert count(tab, "board", "cash") == 1  # shown at once, from the browser's own queue
    tab.evaluate("document.getElementById('undo').click()")  # never sent: just forgotten
    assert tab.evaluate("document.getElementById('pending').textContent") == "2"
    time.sleep(1.5)  # the page keeps trying meanwhile
    rig.start_bus(jst(7, 2, 0))  # the same state file, outbox and port
    tab.wait_for("document.getElementById('pending').textContent === '0'", 20)
    tab.wait_for("document.getElementById('link').className === 'online'")
    events = rig.wait_messages("tablet", 3)
    assert [(e.data["action"], e.data["fare"]) for e in events] == [
        ("board", "adult"),
        ("board", "cash"),
        ("board", "disability"),
    ]
    assert len({e.data["entry"] for e in events}) == 3
    assert rig.store.store.device("bus-01").duplicates == 0


def test_a_resent_entry_is_taken_once_and_a_bad_one_is_refused(bus_rig):
    rig = bus_rig
    rig.at_stop("S01")
    rig.start_bus(jst(6, 59, 0))
    rig.wait_matched("S01")
    entry = {"entry": "resend-0001", "action": "board", "fare": "cash"}
    assert rig.post_entries([entry]) == {"accepted": ["resend-0001"]}
    assert rig.post_entries([entry]) == {"accepted": ["resend-0001"]}  # the answer was lost
    bad = {"entry": "bad-fare-01", "action": "board", "fare": "gold"}
    assert rig.post_entries([bad])["accepted"] == ["bad-fare-01"]  # dropped by the page too
    request = urllib.request.Request(
        rig.tablet_url + "api/entries", b"{not json", {"Content-Type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 400 and b"not JSON" in refused.value.read()
    (event,) = rig.wait_messages("tablet", 1)
    assert event.data["entry"] == "resend-0001"
    counters = rig.agent.host.health.counters
    wait_until(lambda: counters["tablet_rejected"] == 2, 5)
    assert counters["tablet_repeat"] == 1 and counters["tablet_board"] == 1


def test_a_paired_tablet_needs_its_token(bus_rig, browser):
    rig = bus_rig
    token = rig.tmp_path / "tablet-token"
    token.write_text("pairing-token-7f3a\n")
    rig.at_stop("S01")
    rig.start_bus(jst(6, 59, 0), tablet={"bind": "127.0.0.1", "port": 0, "token_file": str(token)})
    rig.wait_matched("S01")
    with pytest.raises(urllib.error.HTTPError) as refused:  # a phone on the bus Wi-Fi
        rig.post_entries([{"entry": "intruder-01", "action": "board", "fare": "cash"}])
    assert refused.value.code == 401
    tab = browser.new_tab(width=1280, height=800, mobile=False)
    try:
        tab.goto(rig.tablet_url + "?token=pairing-token-7f3a")  # paired once
        tab.goto(rig.tablet_url)  # later visits carry the kept token
        tab.wait_for("document.getElementById('link').className === 'online'")
        click(tab, "board", "cash")
        (event,) = rig.wait_messages("tablet", 1)
        assert event.data["fare"] == "cash"
    finally:
        tab.close()
    assert rig.agent.host.health.counters["tablet_unauthorised"] >= 1
