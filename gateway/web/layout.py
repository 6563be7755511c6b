"""The HTML around every page, and the security headers every response carries."""

from __future__ import annotations

from html import escape

# Scripts and styles come only from this server; no inline script, no third-party anything.
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def page(lang: str, title: str, body: str, refresh_s: int | None = None) -> str:
    """A whole document. Without scripts, ``refresh_s`` still reloads it (``<noscript>``)."""
    fallback = (
        f'<noscript><meta http-equiv="refresh" content="{refresh_s}"></noscript>'
        if refresh_s
        else ""
    )
    return (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title>{fallback}"
        '<link rel="stylesheet" href="/static/style.css">'
        '<script src="/static/refresh.js" defer></script>'
        f"</head><body>{body}</body></html>"
    )
