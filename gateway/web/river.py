"""The public river page, made for a phone in a storm: at the top an overview with every site
as one line in its level's colour, worst first, and a map of the sites (Leaflet, vendored; GSI
tiles by default, and the markers still show without tiles); then each site's level, state in
colour and words, trend, the four warning levels in figures next to its 24-hour and 7-day charts,
the time of the last reading, and 欠測 said plainly ("観測できていません").

The server renders the whole page; a small script swaps in a fresh copy every ``refresh_s``
seconds and says so plainly, in the city's time zone, when it cannot (a resident must never
mistake old data for new).
"""

from __future__ import annotations

import threading
import time
from html import escape
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gateway.api.context import Context
from gateway.api.sites import LEVEL_FIELD, LEVELS, READING_TYPE, SiteNow, sites_now
from gateway.store.intake import from_ms
from gateway.web.charts import level_chart
from gateway.web.i18n import lang_of, t
from gateway.web.layout import csp_with_tiles, page

HOUR_MS = 3_600_000
WINDOWS = (
    ("chart_24h", 24 * HOUR_MS, 10 * 60_000, False),
    ("chart_7d", 7 * 24 * HOUR_MS, HOUR_MS, True),
)
ARROWS = {"rising": "↑", "falling": "↓", "steady": "→"}
# Worst first in the overview: the four levels from the top, then 欠測 (nobody knows how high the
# water is there), then normal.
SEVERITY = ("danger", "evacuation", "caution", "standby", "missing", "normal")
CACHE_MAX_S = 5.0

router = APIRouter(include_in_schema=False)


class FragmentCache:
    """The rendered live part per language for a few seconds: in a storm many residents reload
    at once, and each render queries every site's 24-hour and 7-day series."""

    def __init__(self, ttl_s: float) -> None:
        self.ttl_s = ttl_s
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, str]] = {}

    def get(self, ctx: Context, lang: str) -> str:
        with self._lock:
            expires, html = self._entries.get(lang, (0.0, ""))
            if time.monotonic() < expires:
                return html
            html = river_fragment(ctx, lang)
            self._entries[lang] = (time.monotonic() + self.ttl_s, html)
            return html


@router.get("/")
def river(request: Request, lang: str | None = None) -> HTMLResponse:
    lang = lang_of(lang)
    ctx: Context = request.app.state.context
    return HTMLResponse(
        river_page(ctx, lang, request.app.state.river_cache.get(ctx, lang)),
        headers={"Content-Security-Policy": csp_with_tiles(ctx.config.http.map_tiles)},
    )


@router.get("/fragment")
def fragment(request: Request, lang: str | None = None) -> HTMLResponse:
    lang = lang_of(lang)
    ctx: Context = request.app.state.context
    return HTMLResponse(request.app.state.river_cache.get(ctx, lang))


def local_time(ms: int, tz: ZoneInfo, with_date: bool = True) -> str:
    moment = from_ms(ms).astimezone(tz)
    clock = f"{moment.hour}:{moment.minute:02d}"
    return f"{moment.month}/{moment.day} {clock}" if with_date else clock


def live_page(
    ctx: Context, lang: str, *, here: str, title: str, subtitle: str, map_label: str, live: str
) -> str:
    """A public page with a map: title and language switch, the map, the live part that
    refresh.js renews from the page's ``/fragment``, and the footer."""
    http = ctx.config.http
    other = "en" if lang == "ja" else "ja"
    fragment = "/fragment" if here == "/" else f"{here}/fragment"
    body = (
        f"<header><h1>{title}</h1>"
        f'<a class="switch" href="{here}?lang={other}" hreflang="{other}">{t(lang, "switch")}</a>'
        f'<p class="subtitle">{subtitle}</p></header>'
        f"{map_holder(ctx, map_label)}"
        f'<main id="live" data-src="{fragment}?lang={lang}" data-refresh="{http.refresh_s}" '
        f'data-tz="{escape(http.timezone)}" data-offline="{escape(t(lang, "offline"))}">'
        f"{live}</main>{footer(ctx, lang)}"
    )
    return page(lang, title, body, http.refresh_s, MAP_HEAD)


def river_page(ctx: Context, lang: str, live: str) -> str:
    return live_page(
        ctx,
        lang,
        here="/",
        title=t(lang, "title"),
        subtitle=t(lang, "subtitle"),
        map_label=t(lang, "map"),
        live=live,
    )


# Leaflet (vendored) and the script that draws a page's list on the map
MAP_HEAD = (
    '<link rel="stylesheet" href="/static/vendor/leaflet/leaflet.css">'
    '<script src="/static/vendor/leaflet/leaflet.js" defer></script>'
    '<script src="/static/map.js" defer></script>'
)


def map_holder(ctx: Context, label: str) -> str:
    """The map's element, hidden until map.js moves it into the live part's ``#map-slot``."""
    http = ctx.config.http
    return (
        f'<div id="map" hidden role="region" aria-label="{escape(label)}" '
        f'data-tiles="{escape(http.map_tiles)}" data-attribution="{escape(http.map_attribution)}">'
        "</div>"
    )


def footer(ctx: Context, lang: str) -> str:
    """Where the open data is (the API's documentation, not raw JSON) and under what licence."""
    http = ctx.config.http
    return (
        f'<footer><p>{t(lang, "footer")}</p><p><a href="/docs">{t(lang, "api")}</a> · '
        '<a href="/docs#/ngsi-v2">NGSI v2 (FIWARE)</a> · '
        f'<a href="/api/v1/sites.geojson">GeoJSON</a> · '
        f'<a href="/sightings?lang={lang}">{t(lang, "sightings_link")}</a> · '
        f'<a href="/staff?lang={lang}">'
        f"{t(lang, 'staff')}</a></p>"
        f'<p class="licence">{t(lang, "licence")} <a rel="license" '
        f'href="{escape(http.licence_url)}">{escape(http.licence)}</a> '
        f"({escape(http.attribution)})</p></footer>"
    )


def river_fragment(ctx: Context, lang: str) -> str:
    tz = ZoneInfo(ctx.config.http.timezone)
    now_ms = ctx.now_ms()
    sites = sites_now(ctx.store, ctx.sites, now_ms)
    parts = [
        f'<p class="updated">{t(lang, "updated")} <time data-ms="{now_ms}">'
        f"{local_time(now_ms, tz)}</time></p>",
        overview(sites, lang),
        '<div id="map-slot"></div>',
    ]
    for now in sites:
        parts.append(_site(ctx, now, lang, tz, now_ms))
    return "".join(parts)


def _names(now: SiteNow, lang: str) -> tuple[str, str]:
    site = now.site
    if lang == "ja":
        return site.name, site.river
    return site.name_en or site.name, site.river_en or site.river


def overview(sites: list[SiteNow], lang: str) -> str:
    """Every site as one line in its level's colour, worst first, linking to its section; the
    map draws its markers from these lines' data."""
    lines = []
    ranked = sorted(
        sites,
        key=lambda s: (SEVERITY.index(s.state), -(s.level_m or 0.0)),
    )
    for now in ranked:
        name, river = _names(now, lang)
        level = f"{now.level_m:.2f} m" if now.level_m is not None else "— m"
        arrow = ARROWS.get(now.trend or "", "")
        word = t(lang, "state_" + now.state)
        lines.append(
            f'<li class="ov state-{now.state}" data-device="{now.site.device}" '
            f'data-state="{now.state}" data-lat="{now.site.lat}" data-lon="{now.site.lon}" '
            f'data-label="{escape(f"{river} {name}: {word} {level}")}">'
            f'<a href="#site-{now.site.device}"><span class="ov-state">{word}</span>'
            f'<span class="ov-name">{escape(river)} {escape(name)}</span>'
            f'<span class="ov-level">{level} {arrow}</span></a></li>'
        )
    return (
        f'<h2 class="overview-title">{t(lang, "overview")}</h2>'
        f'<ol class="overview">{"".join(lines)}</ol>'
    )


def _site(ctx: Context, now: SiteNow, lang: str, tz: ZoneInfo, now_ms: int) -> str:
    site = now.site
    name, river = _names(now, lang)
    if now.level_m is not None:
        level = f'<span class="level">{now.level_m:.2f} m</span>'
    else:
        level = '<span class="level missing">— m</span>'
    trend = ""
    if now.trend is not None and now.trend_m_per_h is not None:
        trend = (
            f'<span class="trend trend-{now.trend}">{ARROWS[now.trend]} '
            f"{t(lang, 'trend_' + now.trend)} ({now.trend_m_per_h:+.2f} {t(lang, 'per_hour')})"
            "</span>"
        )
    observed = (
        f"{t(lang, 'observed')} <time>{local_time(now.observed_ms, tz)}</time>"
        if now.observed_ms is not None
        else t(lang, "no_reading")
    )
    charts = "".join(
        f"<figure><figcaption>{t(lang, key)}</figcaption>"
        f"{_chart(ctx, now, lang, tz, key, span, step, daily, now_ms)}</figure>"
        for key, span, step, daily in WINDOWS
    )
    levels = "".join(
        f'<li class="lv-{n}"><span class="swatch state-{n}"></span>{t(lang, "state_" + n)} '
        f"<b>{getattr(site.levels_m, n):.2f} m</b></li>"
        for n in reversed(LEVELS)
    )
    return (
        f'<section class="site" id="site-{site.device}" data-device="{site.device}" '
        f'data-state="{now.state}"><h2>{escape(river)} <span>{escape(name)}</span></h2>'
        f'<p class="now">{level} <span class="badge state-{now.state}">'
        f"{t(lang, 'state_' + now.state)}</span> {trend}</p>"
        f'<p class="advice">{_advice(now, lang)}</p><p class="observed">{observed}</p>'
        f'<div class="levels-box"><h3>{t(lang, "levels")}</h3><ul class="levels">{levels}</ul>'
        f'</div><div class="charts">{charts}</div></section>'
    )


def _advice(now: SiteNow, lang: str) -> str:
    if now.state != "missing":
        return t(lang, "advice_" + now.state)
    if now.missing == "stale":
        why = t(lang, "missing_stale", minutes=f"{now.site.stale_after_min:g}")
    elif now.missing == "no_data":
        why = t(lang, "missing_no_data")
    else:
        why = t(lang, "missing_reported")  # the gauge's reason code is for staff
    return f"{why} {t(lang, 'missing_advice')}"


def _chart(
    ctx: Context,
    now: SiteNow,
    lang: str,
    tz: ZoneInfo,
    key: str,
    span_ms: int,
    step_ms: int,
    daily: bool,
    now_ms: int,
) -> str:
    start_ms = now_ms - span_ms
    points = ctx.store.series(
        now.site.device, READING_TYPE, LEVEL_FIELD, start_ms, now_ms, step_ms, 10_000
    )
    name, _ = _names(now, lang)
    label = t(lang, "chart_label", site=name, window=t(lang, key))
    level_names = {n: t(lang, "short_" + n) for n in LEVELS}
    return level_chart(
        points, start_ms, now_ms, now.site.levels_m, tz, label, step_ms, daily, level_names
    )
