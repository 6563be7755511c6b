"""The staff page, behind a login: the river sites (state in words, with the gauge's own 欠測
code), recent events in words (level crossings by site name, animal detections with their
image), the devices' health and measured loss, and messages the store refused."""

from __future__ import annotations

import json
from html import escape
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from edge.protocol import KINDS
from gateway.api.auth import COOKIE
from gateway.api.context import AUDITED_KINDS, Context, viewer
from gateway.api.routes import image_url
from gateway.api.sites import LEVELS, sites_now
from gateway.store.db import Filter
from gateway.web.i18n import lang_of, t
from gateway.web.layout import page
from gateway.web.river import local_time

router = APIRouter(include_in_schema=False)
STAFF_REFRESH_S = 30
EVENTS_SHOWN = 50
MAX_FORM_BYTES = 4096


def _login_redirect(lang: str) -> RedirectResponse:
    return RedirectResponse(f"/staff/login?lang={lang}", status_code=303)


@router.get("/staff")
def staff_page(request: Request, lang: str | None = None) -> Response:
    lang = lang_of(lang)
    who = viewer(request)
    if who.staff is None:
        return _login_redirect(lang)
    ctx: Context = request.app.state.context
    body = (
        f"<header><h1>{t(lang, 'staff_title')}</h1>"
        f'<form class="logout" method="post" action="/staff/logout">'
        f'<button type="submit">{t(lang, "logout")} ({escape(who.staff)})</button></form></header>'
        f'<main id="live" data-src="/staff/fragment?lang={lang}" '
        f'data-refresh="{STAFF_REFRESH_S}" data-offline="{escape(t(lang, "offline"))}">'
        f"{staff_fragment(ctx, lang)}</main>"
    )
    return HTMLResponse(page(lang, t(lang, "staff_title"), body, STAFF_REFRESH_S))


@router.get("/staff/fragment")
def staff_fragment_route(request: Request, lang: str | None = None) -> Response:
    lang = lang_of(lang)
    if viewer(request).staff is None:
        return _login_redirect(lang)
    return HTMLResponse(staff_fragment(request.app.state.context, lang))


def staff_fragment(ctx: Context, lang: str) -> str:
    tz = ZoneInfo(ctx.config.http.timezone)
    return (
        _sites(ctx, lang, tz)
        + _events(ctx, lang, tz)
        + _devices(ctx, lang, tz)
        + _rejections(ctx, lang, tz)
    )


def _site_name(ctx: Context, device: str, lang: str) -> str | None:
    site = ctx.site_by_device.get(device)
    if site is None:
        return None
    name = site.name if lang == "ja" else site.name_en or site.name
    river = site.river if lang == "ja" else site.river_en or site.river
    return f"{river} {name}"


def _sites(ctx: Context, lang: str, tz: ZoneInfo) -> str:
    if not ctx.sites:
        return ""
    rows = []
    for now in sites_now(ctx.store, ctx.sites, ctx.now_ms()):
        level = f"{now.level_m:.2f} m" if now.level_m is not None else "—"
        observed = local_time(now.observed_ms, tz) if now.observed_ms is not None else "—"
        rows.append(
            f'<tr data-device="{now.site.device}" data-state="{now.state}">'
            f"<td>{escape(_site_name(ctx, now.site.device, lang) or now.site.device)}</td>"
            f'<td><span class="badge state-{now.state}">{t(lang, "state_" + now.state)}</span>'
            f"</td><td>{level}</td><td>{observed}</td><td>{escape(now.missing or '')}</td></tr>"
        )
    head = "".join(
        f"<th>{t(lang, k)}</th>" for k in ("sites", "state", "levels", "time", "missing_code")
    )
    return (
        f'<h2>{t(lang, "sites")}</h2><div class="table"><table id="sites"><tr>{head}</tr>'
        f"{''.join(rows)}</table></div>"
    )


def _events(ctx: Context, lang: str, tz: ZoneInfo) -> str:
    # an SOS event carries a child's position: not shown here (docs/tracker.md)
    kinds = [k for k in KINDS if k not in AUDITED_KINDS]
    rows = ctx.store.messages(Filter(kinds=kinds, channel="event"), EVENTS_SHOWN, newest_first=True)
    if not rows:
        return f"<h2>{t(lang, 'events')}</h2><p>{t(lang, 'no_events')}</p>"
    lines = []
    for row in rows:
        event_id = row.data.get("event_id")
        image = ctx.store.image(row.device, event_id) if isinstance(event_id, str) else None
        cell = (
            f'<a href="{image_url(image)}"><img class="thumb" src="{image_url(image)}" '
            f'alt="{escape(str(row.data.get("label", row.type)))}" loading="lazy"></a>'
            if image
            else ""
        )
        lines.append(
            f'<tr class="event" data-type="{escape(row.type)}"><td>{local_time(row.ts_ms, tz)}</td>'
            f"<td>{escape(row.device)}</td><td>{escape(row.type)}</td>"
            f"<td>{_summary(ctx, row.device, row.type, row.data, lang)}</td><td>{cell}</td></tr>"
        )
    head = "".join(f"<th>{t(lang, k)}</th>" for k in ("time", "device", "type", "details", "image"))
    return (
        f'<h2>{t(lang, "events")}</h2><div class="table"><table id="events"><tr>{head}</tr>'
        f"{''.join(lines)}</table></div>"
    )


def _summary(ctx: Context, device: str, type: str, data: dict[str, object], lang: str) -> str:
    """A level crossing reads as a sentence with the site's name; a detection as its label,
    confidence and a warning if harmful; anything else as its data."""
    threshold, direction = data.get("threshold"), data.get("direction")
    if type == "level_crossing" and threshold in LEVELS and direction in ("rising", "falling"):
        level = data.get("level_m")
        value = f"{level:.2f} m" if isinstance(level, int | float) else "—"
        return escape(
            t(
                lang,
                "crossing_" + str(direction),
                site=_site_name(ctx, device, lang) or device,
                level=t(lang, f"state_{threshold}"),
                value=value,
            )
        )
    if "label" in data:
        text = escape(str(data["label"]))
        confidence = data.get("confidence")
        if isinstance(confidence, int | float) and not isinstance(confidence, bool):
            text += f" ({confidence:.0%})"
        if data.get("harmful") is True:
            text += f' <span class="harmful">⚠ {t(lang, "harmful")}</span>'
        return text
    return escape(json.dumps(data, ensure_ascii=False)[:300])


def _devices(ctx: Context, lang: str, tz: ZoneInfo) -> str:
    head = "".join(
        f"<th>{t(lang, k)}</th>"
        for k in ("device", "state", "last_seen", "received", "lost", "duplicates")
    )
    lines = [
        f"<tr><td>{escape(d.device)} ({escape(d.kind)})"
        f"{'<br>' + escape(_site_name(ctx, d.device, lang) or '') if d.kind == 'river' else ''}"
        "</td>"
        f"<td>{escape(d.status_state or '-')}</td>"
        f"<td>{local_time(d.last_seen_ms, tz)}</td><td>{d.received}</td><td>{d.lost}</td>"
        f"<td>{d.duplicates}</td></tr>"
        for d in ctx.store.devices()
    ]
    return (
        f'<h2>{t(lang, "devices")}</h2><div class="table"><table id="devices"><tr>{head}</tr>'
        f"{''.join(lines)}</table></div>"
    )


def _rejections(ctx: Context, lang: str, tz: ZoneInfo) -> str:
    counts = ctx.store.rejection_counts()
    if not counts:
        return f"<h2>{t(lang, 'rejections')}</h2><p>{t(lang, 'none')}</p>"
    lines = "".join(
        f"<tr><td>{escape(reason)}</td><td>{n}</td><td>{local_time(last, tz)}</td></tr>"
        for reason, (n, last) in counts.items()
    )
    recent = "".join(
        f"<li><code>{escape(r.topic)}</code>: {escape(r.detail)}</li>"
        for r in ctx.store.rejections(10)
    )
    return (
        f'<h2>{t(lang, "rejections")}</h2><div class="table"><table id="rejections"><tr>'
        f"<th>{t(lang, 'reason')}</th><th>{t(lang, 'count')}</th><th>{t(lang, 'time')}</th></tr>"
        f"{lines}</table></div><ul>{recent}</ul>"
    )


def _login_form(lang: str, message: str = "") -> str:
    error = f'<p class="error" role="alert">{message}</p>' if message else ""
    body = (
        f"<header><h1>{t(lang, 'staff_title')}</h1></header><main>{error}"
        f'<form class="login" method="post" action="/staff/login?lang={lang}">'
        f'<label>{t(lang, "user")}<input name="user" autocomplete="username" required></label>'
        f'<label>{t(lang, "password")}<input name="password" type="password" '
        'autocomplete="current-password" required></label>'
        f'<button type="submit">{t(lang, "login")}</button></form></main>'
    )
    return page(lang, t(lang, "login"), body)


@router.get("/staff/login")
def login_page(lang: str | None = None) -> HTMLResponse:
    return HTMLResponse(_login_form(lang_of(lang)))


@router.post("/staff/login")
async def login(request: Request, lang: str | None = None) -> Response:
    lang = lang_of(lang)
    ctx: Context = request.app.state.context
    client = request.client.host if request.client else "?"
    if ctx.auth.throttled(client):
        return HTMLResponse(_login_form(lang, t(lang, "login_throttled")), status_code=429)
    raw = await request.body()
    form = parse_qs(raw[:MAX_FORM_BYTES].decode("utf-8", "replace"))
    name = form.get("user", [""])[0]
    password = form.get("password", [""])[0]
    # scrypt takes a while on purpose: off the event loop, so pages keep being served
    cookie = await run_in_threadpool(ctx.auth.login, name, password, client) if name else None
    if cookie is None:
        return HTMLResponse(_login_form(lang, t(lang, "login_failed")), status_code=401)
    response = RedirectResponse(f"/staff?lang={lang}", status_code=303)
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=ctx.auth.session_s,
        httponly=True,
        samesite="strict",
        secure=ctx.auth.secure_cookie,
        path="/",
    )
    return response


@router.post("/staff/logout")
def logout(request: Request) -> Response:
    """End the session on the server too: the cookie is refused from now on, wherever a copy
    of it is."""
    ctx: Context = request.app.state.context
    ctx.auth.logout(request.cookies.get(COOKIE))
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response
