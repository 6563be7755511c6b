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
from gateway.web.layout import csp_with_tiles
from gateway.web.river import live_page, local_time

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
    subtitle = f'{t(lang, "sightings_subtitle")} · <a href="/?lang={lang}">{t(lang, "title")}</a>'
    html = live_page(
        ctx,
        lang,
        here="/sightings",
        title=t(lang, "sightings_title"),
        subtitle=subtitle,
        map_label=t(lang, "sightings_map"),
        live=sightings_fragment(ctx, lang),
    )
    return HTMLResponse(
        html, headers={"Content-Security-Policy": csp_with_tiles(ctx.config.http.map_tiles)}
    )


@router.get("/sightings/fragment")
def sightings_fragment_route(request: Request, lang: str | None = None) -> HTMLResponse:
    return HTMLResponse(sightings_fragment(request.app.state.context, lang_of(lang)))
