"""The staff's ridership page: boardings by hour and by rider category as charts, boardings and
alightings per stop, the origin-destination table, and the CSV downloads, for a period and route.
Charts are inline SVG drawn here, like the river charts: nothing loaded from elsewhere."""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from gateway.api.context import Context, viewer
from gateway.api.params import EndQuery, StartQuery
from gateway.api.transit import RouteQuery, load_ridership
from gateway.services.ridership import Ridership
from gateway.store.intake import from_ms
from gateway.web.i18n import TEXT, lang_of, t
from gateway.web.layout import page

router = APIRouter(include_in_schema=False)
BAR_W, BAR_GAP, CHART_H = 22, 6, 140


def bar_chart(values: list[tuple[str, int]], label: str) -> str:
    """Labelled vertical bars, one per (name, value)."""
    top = max([v for _, v in values] + [1])
    width = len(values) * (BAR_W + BAR_GAP) + BAR_GAP
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {CHART_H + 30}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>"
    ]
    for i, (name, value) in enumerate(values):
        x = BAR_GAP + i * (BAR_W + BAR_GAP)
        h = round(value / top * CHART_H, 1)
        parts.append(
            f'<rect class="bar" data-name="{escape(name)}" data-value="{value}" x="{x}" '
            f'y="{CHART_H - h + 12}" width="{BAR_W}" height="{h}" fill="#0b3d5c"/>'
            f'<text x="{x + BAR_W / 2}" y="{CHART_H + 26}" font-size="9" '
            f'text-anchor="middle">{escape(name)}</text>'
            f'<text x="{x + BAR_W / 2}" y="{CHART_H - h + 9}" font-size="9" '
            f'text-anchor="middle">{value}</text>'
        )
    return "".join(parts) + "</svg>"


def _category(lang: str, name: str) -> str:
    key = f"cat_{name}"
    return t(lang, key) if key in TEXT[lang] else name


@router.get("/staff/ridership")
def ridership_page(
    request: Request,
    lang: str | None = None,
    start: StartQuery = None,
    end: EndQuery = None,
    route: RouteQuery = None,
) -> Response:
    lang = lang_of(lang)
    if viewer(request).staff is None:
        return RedirectResponse(f"/staff/login?lang={lang}", status_code=303)
    ctx: Context = request.app.state.context
    if ctx.transit is None:
        body = f"<h1>{t(lang, 'ridership')}</h1><p>{t(lang, 'no_transit')}</p>"
        return HTMLResponse(page(lang, t(lang, "ridership"), body), status_code=404)
    try:
        data = load_ridership(ctx, start, end, route)
    except HTTPException as exc:
        return HTMLResponse(page(lang, t(lang, "ridership"), escape(str(exc.detail))), 400)
    query = {k: v for k, v in (("from", start), ("to", end), ("route", route)) if v}
    return HTMLResponse(page(lang, t(lang, "ridership"), _body(ctx, data, lang, query)))


def _body(ctx: Context, data: Ridership, lang: str, query: dict[str, str]) -> str:
    stops = ctx.transit.feed.stops if ctx.transit else {}
    name = lambda stop_id: escape(stops[stop_id].name if stop_id in stops else stop_id)  # noqa: E731
    boards = sum(1 for m in data.movements if m.action == "board")
    alights = len(data.movements) - boards
    hours = data.boardings_by_hour()
    hour_bars = [
        (f"{h}", hours.get(h, 0)) for h in range(min(hours, default=7), max(hours, default=19) + 1)
    ]
    cats = sorted(data.by_category().items(), key=lambda kv: -kv[1])
    per_stop: dict[str, list[int]] = {}
    for _, stop, _, _, b, a in data.per_stop_hour():
        per_stop.setdefault(stop, [0, 0])
        per_stop[stop][0] += b
        per_stop[stop][1] += a
    ordered = [s for s in stops if s in per_stop] + [s for s in per_stop if s not in stops]
    stop_rows = "".join(
        f'<tr data-stop="{escape(s)}"><td>{name(s)}</td><td>{per_stop[s][0]}</td>'
        f"<td>{per_stop[s][1]}</td></tr>"
        for s in ordered
    )
    od: dict[tuple[str, str], int] = {}
    for (_, origin, dest, _), n in data.od.items():
        od[(origin, dest)] = od.get((origin, dest), 0) + n
    od_stops = [s for s in stops if any(s in k for k in od)]
    od_head = "".join(f"<th>{name(s)}</th>" for s in od_stops)
    od_rows = "".join(
        f"<tr><th>{name(a)}</th>"
        + "".join(
            f'<td data-od="{escape(a)}-{escape(b)}">{od.get((a, b), "")}</td>' for b in od_stops
        )
        + "</tr>"
        for a in od_stops
    )
    q = urlencode(query)
    tz = ZoneInfo(ctx.config.http.timezone)
    start, end = (
        from_ms(ms).astimezone(tz).strftime("%Y-%m-%d %H:%M") for ms in (data.start_ms, data.end_ms)
    )
    return (
        f"<header><h1>{t(lang, 'ridership')}</h1>"
        f'<p id="period">{t(lang, "ridership_period", start=start, end=end)}</p></header><main>'
        f'<p id="totals">{t(lang, "boardings")} <b id="boardings">{boards}</b> · '
        f'{t(lang, "alightings")} <b id="alightings">{alights}</b> · '
        f'{t(lang, "journeys")} <b id="journeys">{data.journeys}</b> · '
        f'{t(lang, "missing_tap_off")} <b id="missing">{data.missing_tap_off}</b></p>'
        f'<p><a href="/api/v1/ridership/stops.csv?{q}">{t(lang, "download")} ({t(lang, "by_stop")})'
        f'</a> · <a href="/api/v1/ridership/od.csv?{q}">{t(lang, "download")} (OD)</a></p>'
        f'<div class="charts"><section><h2>{t(lang, "by_hour")}</h2>'
        f"{bar_chart(hour_bars, t(lang, 'by_hour'))}</section>"
        f"<section><h2>{t(lang, 'by_category')}</h2>"
        f"{bar_chart([(_category(lang, c), n) for c, n in cats], t(lang, 'by_category'))}"
        f"</section></div>"
        f'<h2>{t(lang, "by_stop")}</h2><div class="table"><table id="stops"><tr>'
        f"<th>{t(lang, 'stop')}</th><th>{t(lang, 'boardings')}</th>"
        f"<th>{t(lang, 'alightings')}</th></tr>{stop_rows}</table></div>"
        f'<h2>{t(lang, "od_matrix")}</h2><div class="table"><table id="od"><tr>'
        f"<th>{t(lang, 'from_to')}</th>{od_head}</tr>{od_rows}</table></div></main>"
    )
