"""The guardians' page says when the routine is still learning, lists today's unusual-movement
notices, and takes a guardian's "this is fine", which the model learns from; another guardian's
answer is refused."""

from __future__ import annotations

import http.cookiejar
import urllib.parse
import urllib.request
from datetime import date, datetime

import pytest

from edge.protocol import Envelope, utc_timestamp
from edge.runtime.clock import Clock
from gateway.api.auth import hash_password
from gateway.services.tracker_config import CircleConfig
from gateway.services.tracker_service import TrackerService
from sim.city_children import JST, lat_lon
from tests.routine.tracks import SCHOOL, history
from tests.store.store_helpers import wait_until
from tests.tracker.tracker_rig import register, service_config

DAY = date(2026, 12, 1)


def browser(base: str, user: str, password: str) -> urllib.request.OpenerDirector:
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    form = urllib.parse.urlencode({"user": user, "password": password, "role": "guardian"})
    opener.open(f"{base.rstrip('/')}/login?lang=ja", form.encode())
    return opener


def page(opener: urllib.request.OpenerDirector, url: str, form: dict | None = None) -> str:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with opener.open(url, data) as response:
            return response.read().decode()
    except urllib.error.HTTPError as exc:
        return f"{exc.code} {exc.read().decode()}"


def position(device: str, seq: int, moment: datetime, xy: tuple[float, float]) -> Envelope:
    lat, lon = lat_lon(*xy)
    data = {"lat": round(lat, 5), "lon": round(lon, 5), "acc": 6.0, "src": "gnss", "why": "moving"}
    return Envelope(device, seq, utc_timestamp(moment), "position", data)


@pytest.mark.slow
def test_learning_then_a_notice_and_this_is_fine(tmp_path, broker):
    config = service_config(tmp_path, broker, 9, "http://127.0.0.1:9/hook", "page")
    config.schools[0].circle = CircleConfig(*lat_lon(*SCHOOL), 80.0)  # where her school is
    clock = Clock(60.0, start=datetime(2026, 12, 1, 10, 0, tzinfo=JST))
    service = TrackerService(config, clock)
    register(service)
    service.db.add_guardian("suzuki", "suzuki@example.jp", "ja", hash_password("suzuki-pass-1"))
    service.start()
    try:
        sato = browser(base(service), "sato", "sato-password-1")
        assert "学習中です（0/14 日）" in page(sato, f"{base(service)}/children?lang=ja")
    finally:
        service.stop()
    history(_db(tmp_path), DAY, "tracker-1")
    service = TrackerService(config, clock)
    service.start()
    try:
        service.pipeline.handle(
            [
                position("tracker-1", 1, datetime(2026, 12, 1, 8, 0, tzinfo=JST), SCHOOL),
                position("tracker-1", 2, datetime(2026, 12, 1, 10, 20, tzinfo=JST), (2000, 2500)),
                position("tracker-1", 3, datetime(2026, 12, 1, 10, 22, tzinfo=JST), (2005, 2502)),
            ]
        )

        def routine_alerts():
            return [a for a in service.db.alerts("hana") if a.kind.startswith("routine_")]

        wait_until(routine_alerts, 30, "the routine alert")
        (alert,) = routine_alerts()
        assert alert.kind == "routine_place"
        assert "ふだんこの時間は長井市立中央小学校にいますが" in alert.data["reason"]["ja"]
        sato = browser(base(service), "sato", "sato-password-1")
        html = page(sato, f"{base(service)}/children?lang=ja")
        assert (
            "お知らせします" in html and "ふだん行かない場所" in html and "問題ありません" in html
        )
        suzuki = browser(base(service), "suzuki", "suzuki-pass-1")
        other = page(suzuki, f"{base(service)}/routine/fine?lang=ja", {"alert": alert.id})
        assert "もう答えられません" in other  # not her child
        answer = page(sato, f"{base(service)}/routine/fine?lang=ja", {"alert": alert.id})
        assert "次からこの場所" in answer
        model = service.routines.engine.children["hana"].model
        assert [f.kind for f in model.fines] == ["place"]
    finally:
        service.stop()
    assert ("service:routine", "hana") in {(v, c) for _, v, c, _ in _db(tmp_path).audit()}


def _db(tmp_path):
    from gateway.services.tracker_db import TrackerDb

    return TrackerDb(tmp_path / "tracker.db")


def base(service: TrackerService) -> str:
    assert service.url is not None
    return service.url.rstrip("/")
