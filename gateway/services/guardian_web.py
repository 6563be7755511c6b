"""The guardians' position page, school staff's arrivals page, and the phones' HTTP intake.

Who sees what (docs/tracker.md):

* a **guardian** signs in and sees only the children the city linked to them: the latest position
  with its time and accuracy, today's track, today's arrival and departure;
* anyone with a **share link** a guardian made sees that one child until the link expires (at
  most ``share_max_hours``) or the guardian's link to the child is revoked;
* **school staff** see their school's arrivals and departures today — never a position.

Every answer that contains a position is read through ``TrackerDb.positions_for``/``latest_for``,
which write the audit row in the same transaction. Pages are Japanese by default (``?lang=en``),
phone-first, with the Leaflet the web part vendors; tiles come from the configured URL
(GSI by default) and the page states position, time and accuracy in words when no tile loads.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from edge.protocol import Envelope, EnvelopeError
from gateway.api.auth import StaffAuth, _b64
from gateway.services.phones import basic_auth, from_osmand, from_owntracks, token_hash, token_ok
from gateway.web.layout import SECURITY_HEADERS

if TYPE_CHECKING:
    from gateway.services.tracker_service import TrackerService

STATIC = Path(__file__).parent / "static"
# Leaflet is vendored once for every page, in the web part (static/vendor/PROVENANCE.md there)
VENDOR = Path(__file__).parents[1] / "web" / "static" / "vendor"
COOKIE = "machimori_tracker"
MAX_FORM_BYTES = 4096

TEXT = {
    "ja": {
        "title": "見守り",
        "switch": "English",
        "login": "ログイン",
        "logout": "ログアウト",
        "user": "ID",
        "password": "パスワード",
        "guardian": "保護者",
        "staff": "学校職員",
        "login_failed": "ID またはパスワードが違います。",
        "no_children": "表示できるお子さまがいません。",
        "latest": "最新の位置",
        "accuracy": "精度 約{acc} m",
        "accuracy_unknown": "精度 不明",
        "at": "{time} 時点",
        "no_position": "今日の位置情報はまだありません。",
        "arrival": "登校",
        "departure": "下校",
        "not_yet": "まだ",
        "share": "共有リンクを作る",
        "hours": "有効時間（時間）",
        "share_made": "共有リンク（{hours} 時間有効）：",
        "refused": "このページは表示できません。リンクの期限が切れているか、権限がありません。",
        "school_today": "今日の登下校",
        "child": "児童",
        "time": "時刻",
        "learning": "いつもの行動を学習中です（{days}/{need} 日）。学習が終わるまで、"
        "いつもと違う行動のお知らせはしません。",
        "watching": "いつもと違う行動があればお知らせします。",
        "fine": "問題ありません",
        "fine_done": "ありがとうございます。次からこの場所・道・時間ではお知らせしません。",
        "fine_gone": "このお知らせにはもう答えられません。",
    },
    "en": {
        "title": "Child tracker",
        "switch": "日本語",
        "login": "Sign in",
        "logout": "Sign out",
        "user": "ID",
        "password": "Password",
        "guardian": "Guardian",
        "staff": "School staff",
        "login_failed": "Wrong ID or password.",
        "no_children": "No children to show.",
        "latest": "Latest position",
        "accuracy": "accurate to about {acc} m",
        "accuracy_unknown": "accuracy unknown",
        "at": "as of {time}",
        "no_position": "No position yet today.",
        "arrival": "Arrived at school",
        "departure": "Left school",
        "not_yet": "not yet",
        "share": "Make a share link",
        "hours": "Valid for (hours)",
        "share_made": "Share link (valid {hours} h):",
        "refused": "This page cannot be shown: the link has expired, or you may not see it.",
        "school_today": "Today's arrivals and departures",
        "child": "Child",
        "time": "Time",
        "learning": "Learning the usual routine ({days}/{need} days). Until then, no notices "
        "about unusual movements.",
        "watching": "You will be told when movements depart from the usual.",
        "fine": "This is fine",
        "fine_done": "Thank you. This place, way or time will not be notified again.",
        "fine_gone": "This notice can no longer be answered.",
    },
}


def t(lang: str, key: str, **values: object) -> str:
    return TEXT[lang][key].format(**values)


def lang_of(value: str | None) -> str:
    return value if value in TEXT else "ja"


class _Accounts(Mapping[str, str]):
    """Guardians (``guardian.ID``) and staff (``staff.ID``) as StaffAuth's users, from the
    database, so a link revoked or an account removed takes effect on the next request."""

    def __init__(self, service: TrackerService) -> None:
        self.db = service.db

    def __getitem__(self, name: str) -> str:
        role, _, who = name.partition(".")
        found = None
        if role == "guardian":
            found = (self.db.guardian(who) or (None, None, None))[2]
        elif role == "staff":
            found = (self.db.staff(who) or (None, None))[1]
        if not found:
            raise KeyError(name)
        return found

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


class TrackerAuth(StaffAuth):
    """StaffAuth's signed, revocable sessions for guardians (``guardian.ID``), school staff
    (``staff.ID``) and share links (``share.HASH``), with accounts in the tracker database and
    logged-out sessions remembered there."""

    def __init__(self, service: TrackerService) -> None:
        web = service.config.web
        secret = web.session_secret_file.read_bytes().strip() if web.session_secret_file else None
        super().__init__(None, secret, web.session_hours, web.secure_cookie, service.db)
        self.accounts = _Accounts(service)

    def _current_users(self) -> Mapping[str, str]:  # type: ignore[override]
        return self.accounts

    def share_cookie(self, token: str, expiry_s: int) -> str:
        """A session standing for one share link until ``expiry_s`` (Unix seconds); the link
        itself is checked again on every request, so revoking it ends the session too."""
        body = _b64(f"share.{token_hash(token)}|{expiry_s}|{secrets.token_urlsafe(16)}".encode())
        return f"{body}.{self._sign(body)}"

    def viewer(self, cookie: str | None) -> str | None:
        """Who a live cookie speaks for: an account that still exists, or a share link."""
        session = self.session(cookie)
        if session is None:
            return None
        if session.user.startswith("share.") or session.user in self.accounts:
            return session.user
        return None


def build_app(service: TrackerService) -> FastAPI:
    app = FastAPI(title="machimori tracker", docs_url=None, redoc_url=None, openapi_url=None)
    auth = TrackerAuth(service)
    db = service.db
    web = service.config.web
    tiles = urlsplit(web.tile_url)
    tile_origin = f"{tiles.scheme}://{tiles.netloc}" if tiles.netloc else ""
    csp = SECURITY_HEADERS["Content-Security-Policy"].replace(
        "img-src 'self' data:", f"img-src 'self' data: {tile_origin}".strip()
    )
    app.mount("/static/vendor", StaticFiles(directory=VENDOR), name="vendor")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def headers(request: Request, call_next):  # noqa: ANN001, ANN202
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        response.headers["Content-Security-Policy"] = csp
        response.headers["Cache-Control"] = "no-store"  # positions must not sit in a cache
        return response

    def who(request: Request) -> str | None:
        return auth.viewer(request.cookies.get(COOKIE))

    def visible(session: str | None) -> list[str]:
        """The children this session may see."""
        if session is None:
            return []
        role, _, rest = session.partition(".")
        if role == "guardian":
            return db.children_of(rest)
        if role == "share":
            found = db.share(rest, service.now_ms())
            return [found[1]] if found else []  # (guardian, child, expires_ms)
        return []

    def page(lang: str, title: str, body: str, scripts: str = "") -> HTMLResponse:
        other = "en" if lang == "ja" else "ja"
        return HTMLResponse(
            f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title>"
            '<link rel="stylesheet" href="/static/vendor/leaflet/leaflet.css">'
            '<link rel="stylesheet" href="/static/tracker.css">'
            f"{scripts}</head><body><header><h1>{escape(title)}</h1>"
            f'<a class="switch" href="?lang={other}">{t(lang, "switch")}</a></header>'
            f"<main>{body}</main></body></html>"
        )

    def refused(lang: str) -> HTMLResponse:
        response = page(lang, t(lang, "title"), f'<p class="refused">{t(lang, "refused")}</p>')
        response.status_code = 403
        return response

    @app.get("/healthz")
    def healthz() -> dict[str, object]:
        return {
            "ok": True,
            "counters": service.pipeline.counters,
            "notifications": db.notification_counts(),
            "alerts_queued": service.outbox.depth,
        }

    @app.get("/")
    def index(request: Request, lang: str | None = None) -> Response:
        session = who(request)
        target = "/school" if session and session.startswith("staff.") else "/children"
        return RedirectResponse(f"{target if session else '/login'}?lang={lang_of(lang)}", 303)

    @app.get("/login")
    def login_form(lang: str | None = None, failed: int = 0) -> HTMLResponse:
        lang = lang_of(lang)
        error = f'<p class="error" role="alert">{t(lang, "login_failed")}</p>' if failed else ""
        body = (
            f'{error}<form method="post" action="/login?lang={lang}" class="login">'
            f'<label>{t(lang, "user")}<input name="user" autocomplete="username" required></label>'
            f'<label>{t(lang, "password")}<input name="password" type="password" '
            'autocomplete="current-password" required></label>'
            f'<label><input type="radio" name="role" value="guardian" checked>{t(lang, "guardian")}'
            f'</label><label><input type="radio" name="role" value="staff">{t(lang, "staff")}'
            f'</label><button type="submit">{t(lang, "login")}</button></form>'
        )
        return page(lang, t(lang, "title"), body)

    @app.post("/login")
    async def login(request: Request, lang: str | None = None) -> Response:
        lang = lang_of(lang)
        form = await _form(request)
        role = "staff" if form.get("role") == "staff" else "guardian"
        client = request.client.host if request.client else "?"
        if auth.throttled(client):
            return RedirectResponse(f"/login?lang={lang}&failed=1", 303)
        cookie = auth.login(f"{role}.{form.get('user', '')}", form.get("password", ""), client)
        if cookie is None:
            return RedirectResponse(f"/login?lang={lang}&failed=1", 303)
        target = "/school" if role == "staff" else "/children"
        response = RedirectResponse(f"{target}?lang={lang}", 303)
        _set_cookie(response, cookie, auth.session_s, web.secure_cookie)
        return response

    @app.post("/logout")
    def logout(request: Request, lang: str | None = None) -> Response:
        auth.logout(request.cookies.get(COOKIE))  # the cookie is dead even if it was copied
        response = RedirectResponse(f"/login?lang={lang_of(lang)}", 303)
        response.delete_cookie(COOKIE)
        return response

    def children_page(lang: str, children: list[str], share_form: bool) -> HTMLResponse:
        if not children:
            return page(lang, t(lang, "title"), f"<p>{t(lang, 'no_children')}</p>")
        cards = "".join(
            f'<section class="child" data-child="{escape(c)}">'
            f"<h2>{escape(c)}</h2>"
            f'<p class="where" data-none="{escape(t(lang, "no_position"))}">'
            f"{t(lang, 'no_position')}</p>"
            f'<div class="map" id="map-{escape(c)}"></div>'
            f'<p class="presence"><span>{t(lang, "arrival")}: <b class="arrival">'
            f'{t(lang, "not_yet")}</b></span> <span>{t(lang, "departure")}: <b class="departure">'
            f"{t(lang, 'not_yet')}</b></span></p>"
            + routine_part(lang, c, share_form)
            + (
                f'<form method="post" action="/shares?lang={lang}" class="share">'
                f'<input type="hidden" name="child" value="{escape(c)}">'
                f'<label>{t(lang, "hours")}<input name="hours" type="number" min="1" '
                f'max="{int(web.share_max_hours)}" value="3"></label>'
                f'<button type="submit">{t(lang, "share")}</button></form>'
                if share_form
                else ""
            )
            + "</section>"
            for c in children
        )
        config = json.dumps(
            {
                "tiles": web.tile_url,
                "attribution": web.tile_attribution,
                "lang": lang,
                "accuracy": TEXT[lang]["accuracy"],
                "accuracy_unknown": TEXT[lang]["accuracy_unknown"],
                "at": TEXT[lang]["at"],
                "timezone": service.config.timezone,
            },
            ensure_ascii=False,
        )
        logout_form = (
            f'<form method="post" action="/logout?lang={lang}" class="logout">'
            f'<button type="submit">{t(lang, "logout")}</button></form>'
            if share_form
            else ""
        )
        body = f'<div id="config" data-config="{escape(config)}"></div>{cards}{logout_form}'
        scripts = (
            '<script src="/static/vendor/leaflet/leaflet.js" defer></script>'
            '<script src="/static/guardian.js" defer></script>'
        )
        return page(lang, t(lang, "title"), body, scripts)

    def signed_in(request: Request, role: str, lang: str) -> str | Response:
        """The session of a signed-in ``role`` (guardian, staff), or the way to the login."""
        session = who(request)
        if session is None or not session.startswith(f"{role}."):
            return RedirectResponse(f"/login?lang={lang}", 303)
        return session

    def routine_part(lang: str, child: str, answers: bool) -> str:
        """The routine's state for this child, and today's unusual-movement notices with a
        "this is fine" button (for the guardian, not for a share link)."""
        routines = service.routines
        if routines is None:
            return ""
        days, need = routines.status(child)
        state = t(lang, "learning", days=days, need=need) if days < need else t(lang, "watching")
        items = []
        since = service.now_ms() - 86_400_000
        for alert in db.alerts(child):
            if alert.ts_ms < since or not alert.kind.startswith("routine_"):
                continue
            reason = escape(str((alert.data.get("reason") or {}).get(lang, "")))
            button = (
                f'<form method="post" action="/routine/fine?lang={lang}" class="fine">'
                f'<input type="hidden" name="alert" value="{alert.id}">'
                f'<button type="submit">{t(lang, "fine")}</button></form>'
                if answers and alert.kind != "routine_clear"
                else ""
            )
            kind = escape(alert.kind)
            items.append(f'<li class="routine-alert" data-kind="{kind}">{reason}{button}</li>')
        listed = f"<ul>{''.join(items)}</ul>" if items else ""
        return f'<div class="routine"><p class="routine-state">{state}</p>{listed}</div>'

    @app.post("/routine/fine")
    async def routine_fine(request: Request, lang: str | None = None) -> Response:
        lang = lang_of(lang)
        session = who(request)
        form = await _form(request)
        if session is None or not session.startswith("guardian.") or service.routines is None:
            return refused(lang)
        try:
            alert = int(form.get("alert", ""))
        except ValueError:
            return refused(lang)
        done = service.routines.fine(session.partition(".")[2], alert)
        text = t(lang, "fine_done" if done else "fine_gone")
        back = f'<p><a href="/children?lang={lang}">{t(lang, "title")}</a></p>'
        return page(lang, t(lang, "title"), f'<p class="fine-result">{text}</p>{back}')

    @app.get("/children")
    def children(request: Request, lang: str | None = None) -> Response:
        lang = lang_of(lang)
        session = signed_in(request, "guardian", lang)
        if isinstance(session, Response):
            return session
        return children_page(lang, visible(session), share_form=True)

    @app.get("/s/{token}")
    def shared(token: str, lang: str | None = None) -> Response:
        lang = lang_of(lang)
        found = db.share(token_hash(token), service.now_ms())
        if found is None:
            return refused(lang)
        _guardian, child, expires_ms = found
        response = children_page(lang, [child], share_form=False)
        left_s = max(1, (expires_ms - service.now_ms()) // 1000)
        cookie = auth.share_cookie(token, int(time.time()) + left_s)
        _set_cookie(response, cookie, left_s, web.secure_cookie)
        return response

    @app.post("/shares")
    async def make_share(request: Request, lang: str | None = None) -> Response:
        lang = lang_of(lang)
        session = who(request)
        form = await _form(request)
        child = form.get("child", "")
        if session is None or not session.startswith("guardian.") or child not in visible(session):
            return refused(lang)
        try:
            hours = min(float(form.get("hours", "3")), web.share_max_hours)
        except ValueError:
            hours = 3.0
        token = secrets.token_urlsafe(24)
        expires_ms = service.now_ms() + int(max(hours, 0.1) * 3_600_000)
        db.add_share(token_hash(token), session.partition(".")[2], child, expires_ms)
        link = f"/s/{token}?lang={lang}"
        made = t(lang, "share_made", hours=f"{hours:g}")
        body = f'<p>{made} <a class="share-link" href="{link}">{link}</a></p>'
        return page(lang, t(lang, "title"), body)

    @app.get("/api/children/{child}/today")
    def today(request: Request, child: str) -> Response:
        session = who(request)
        if child not in visible(session):
            return JSONResponse({"detail": "not yours to see"}, status_code=403)
        now = service.now_ms()
        day = service.pipeline.local_day(now)
        start = int(datetime.combine(day, datetime.min.time(), service.zone).timestamp() * 1000)
        track = db.positions_for(str(session), child, start, now + 1, now)
        latest = track[-1] if track else None
        presence = db.presence_of(child, day.isoformat())
        return JSONResponse(
            {
                "child": child,
                "latest": None
                if latest is None
                else {"ts": latest.ts_ms, "lat": latest.lat, "lon": latest.lon, "acc": latest.acc},
                "track": [[p.lat, p.lon, p.ts_ms] for p in track],
                "arrival": presence.get("arrival"),
                "departure": presence.get("departure"),
            }
        )

    @app.get("/school")
    def school(request: Request, lang: str | None = None) -> Response:
        lang = lang_of(lang)
        session = signed_in(request, "staff", lang)
        if isinstance(session, Response):
            return session
        found = db.staff(session.partition(".")[2])
        if found is None:
            return refused(lang)
        school_id = found[0]
        day = service.pipeline.local_day(service.now_ms())
        rows = "".join(
            f"<tr><td>{escape(child)}</td><td>{t(lang, kind)}</td>"
            f"<td>{datetime.fromtimestamp(ts / 1000, service.zone):%H:%M}</td></tr>"
            for child, kind, ts in db.presence(school_id, day.isoformat())
        )
        config = service.config.school(school_id)
        name = config.name if config is not None else school_id
        body = (
            f"<h2>{escape(name)} — {t(lang, 'school_today')}</h2>"
            f'<table class="presence"><tr><th>{t(lang, "child")}</th><th></th>'
            f"<th>{t(lang, 'time')}</th></tr>{rows}</table>"
        )
        return page(lang, t(lang, "title"), body)

    # -- phones -----------------------------------------------------------------------------
    @app.post("/pub")
    async def owntracks_http(request: Request) -> Response:
        """The OwnTracks Recorder's HTTP endpoint: Basic auth as the device, JSON body."""
        user, token = basic_auth(request.headers.get("authorization")) or ("", None)
        body = await request.body()
        refused = phone(user, token, lambda: from_owntracks(user, body))
        return refused or JSONResponse([])  # the Recorder answers with a list of cards

    @app.api_route("/osmand", methods=["GET", "POST"])
    async def osmand(request: Request) -> Response:
        """Traccar Client: the fields in the query (or a form), the token in ``key``."""
        params = dict(request.query_params)
        if request.method == "POST":
            params |= await _form(request)
        credentials = basic_auth(request.headers.get("authorization"))
        token = params.pop("key", None) or (credentials[1] if credentials else None)
        device = params.get("id") or params.get("deviceid") or ""
        return phone(device, token, lambda: from_osmand(params)) or Response(status_code=200)

    def phone(
        device: str, token: str | None, parse: Callable[[], Envelope | None]
    ) -> Response | None:
        """Check a phone's token and take its position; the refusal, or None when taken."""
        registered = db.device(device) if device else None
        if registered is None or not token_ok(token, registered[2]):
            service.pipeline.count("phone_refused")
            return Response("unknown device or wrong token", status_code=401)
        try:
            env = parse()
        except (EnvelopeError, ValueError) as exc:
            service.pipeline.count("rejected")
            return Response(str(exc), status_code=400)
        if env is not None:
            service.pipeline.handle([env])
        return None

    return app


async def _form(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    return {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}


def _set_cookie(response: Response, value: str, max_age: int, secure: bool) -> None:
    response.set_cookie(
        COOKIE, value, max_age=max_age, httponly=True, samesite="strict", secure=secure
    )
