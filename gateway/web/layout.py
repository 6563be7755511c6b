"""The HTML around every page, and the security headers every response carries."""

from __future__ import annotations

from html import escape
from urllib.parse import urlsplit

# Scripts and styles come only from this server; no inline script, no third-party anything
# (a page with a map also loads its tile images from the tile server).
CSP_TEMPLATE = (
    "default-src 'self'; img-src 'self' data:{images}; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
CSP = CSP_TEMPLATE.format(images="")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def csp_with_tiles(tiles_url: str) -> str:
    """The pages' policy, with the origin of a map's tile server allowed for images."""
    if not tiles_url:
        return CSP
    parts = urlsplit(tiles_url)
    return CSP_TEMPLATE.format(images=f" {parts.scheme}://{parts.netloc}")


def page(lang: str, title: str, body: str, refresh_s: int | None = None, head: str = "") -> str:
    """A whole document. Without scripts, ``refresh_s`` still reloads it (``<noscript>``);
    ``head`` adds the page's own stylesheets and scripts."""
    fallback = (
        f'<noscript><meta http-equiv="refresh" content="{refresh_s}"></noscript>'
        if refresh_s
        else ""
    )
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>{fallback}"
        f"{head}"
        '<link rel="stylesheet" href="/static/style.css">'
        '<script src="/static/refresh.js" defer></script>'
        f"</head><body>{body}</body></html>"
    )
