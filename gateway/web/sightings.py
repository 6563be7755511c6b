"""The public sightings page (クマ出没情報): harmful animals the city's cameras saw, species, area,
date and time, on a map and in a list, newest first; no image and no camera position (see
gateway/api/sightings.py). Staff see the full event with its image on the staff page."""

from __future__ import annotations

from html import escape
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from gateway.api.context import Context
from gateway.api.sightings import sightings
from gateway.web.i18n import lang_of, t
from gateway.web.layout import csp_with_tiles, page
from gateway.web.river import footer, local_time

router = APIRouter(include_in_schema=False)


def sightings_fragment(ctx: Context, lang: str) -> str:
    http = ctx.config.http
    tz = ZoneInfo(http.timezone)
    found = sightings(ctx)
    lines = []
    for s in found:
        place = s.place if lang == "ja" else s.place_en or s.place
        when = local_time(s.ts_ms, tz)
        words = s.words(lang)
        lines.append(
            f'<li class="sighting species-{escape(s.species)}" data-lat="{s.lat}" '
            f'data-lon="{s.lon}" data-state="sighting" '
            f'data-label="{escape(f"{words} {place} {when}")}">'
            f'<span class="sp">{escape(words)}</span><span class="pl">{escape(place)}</span>'
            f'<time class="when">{when}</time></li>'
        )
    listing = (
        f'<ol class="sightings">{"".join(lines)}</ol>'
        if lines
        else f'<p class="none">{t(lang, "no_sightings", days=f"{http.sightings_days:g}")}</p>'
    )
    return (
        f'<p class="note">{t(lang, "sightings_note", grid=f"{http.sightings_grid_m:g}")}</p>'
        f'<div id="map-slot"></div>{listing}'
    )


@router.get("/sightings")
def sightings_page(request: Request, lang: str | None = None) -> HTMLResponse:
    lang = lang_of(lang)
    ctx: Context = request.app.state.context
    http = ctx.config.http
    other = "en" if lang == "ja" else "ja"
    body = (
        f"<header><h1>{t(lang, 'sightings_title')}</h1>"
        f'<a class="switch" href="/sightings?lang={other}" hreflang="{other}">'
        f"{t(lang, 'switch')}</a>"
        f'<p class="subtitle">{t(lang, "sightings_subtitle")} · '
        f'<a href="/?lang={lang}">{t(lang, "title")}</a></p></header>'
        f'<div id="map" hidden role="region" aria-label="{escape(t(lang, "sightings_map"))}" '
        f'data-tiles="{escape(http.map_tiles)}" data-attribution="{escape(http.map_attribution)}">'
        "</div>"
        f'<main id="live" data-src="/sightings/fragment?lang={lang}" '
        f'data-refresh="{http.refresh_s}" data-tz="{escape(http.timezone)}" '
        f'data-offline="{escape(t(lang, "offline"))}">{sightings_fragment(ctx, lang)}</main>'
        f"{footer(ctx, lang)}"
    )
    head = (
        '<link rel="stylesheet" href="/static/vendor/leaflet/leaflet.css">'
        '<script src="/static/vendor/leaflet/leaflet.js" defer></script>'
        '<script src="/static/map.js" defer></script>'
    )
    return HTMLResponse(
        page(lang, t(lang, "sightings_title"), body, http.refresh_s, head),
        headers={"Content-Security-Policy": csp_with_tiles(http.map_tiles)},
    )


@router.get("/sightings/fragment")
def sightings_fragment_route(request: Request, lang: str | None = None) -> HTMLResponse:
    return HTMLResponse(sightings_fragment(request.app.state.context, lang_of(lang)))
