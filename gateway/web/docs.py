"""``/docs``: the API documentation, Swagger UI reading ``/openapi.json``, from the copy of
swagger-ui-dist vendored under static/vendor (no CDN; see its PROVENANCE.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)
# Swagger UI sets inline style attributes as it renders, so this page alone allows them.
DOCS_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)


@router.get("/docs")
def docs(request: Request) -> HTMLResponse:
    http = request.app.state.context.config.http
    page = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>machimori city store: API</title>"
        '<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css">'
        '<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js" defer></script>'
        '<script src="/static/docs.js" defer></script></head><body>'
        f'<p class="licence">Data: <a rel="license" href="{http.licence_url}">'
        f"{http.licence}</a> · {http.attribution}</p>"
        '<div id="swagger-ui"></div></body></html>'
    )
    return HTMLResponse(page, headers={"Content-Security-Policy": DOCS_CSP})
