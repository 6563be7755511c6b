"""What makes the public API open data a browser app may use: the licence on every public answer
(``Link: <licence>; rel="license"``, RFC 8288) and CORS for reading it from another site.

CORS covers reads only (GET, HEAD and their preflight) and never credentials: another site's
page gets exactly what an anonymous visitor gets, and cannot use a member of staff's session or
manage NGSI subscriptions (their Authorization header is not allowed cross-site).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from gateway.store.config import HttpConfig

PUBLIC_PATHS = ("/api/v1/", "/ngsi/", "/openapi.json")
READ_METHODS = "GET, HEAD, OPTIONS"
ALLOWED_HEADERS = "Accept, Fiware-Service, Fiware-ServicePath, Fiware-Correlator"
EXPOSED_HEADERS = "Fiware-Total-Count, Fiware-Correlator, Link, Content-Disposition"
PREFLIGHT_MAX_AGE_S = 86400


def is_public(path: str) -> bool:
    return path.startswith(PUBLIC_PATHS)


def install(app: FastAPI, http: HttpConfig) -> None:
    licence_link = f'<{http.licence_url}>; rel="license"; title="{http.licence}"'

    def allowed_origin(origin: str | None) -> str | None:
        if not origin:
            return None
        if "*" in http.cors_origins:
            return "*"
        return origin if origin in http.cors_origins else None

    @app.middleware("http")
    async def open_data(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not is_public(request.url.path):
            return await call_next(request)
        origin = allowed_origin(request.headers.get("origin"))
        preflight = request.method == "OPTIONS" and request.headers.get(
            "access-control-request-method"
        )
        if preflight:
            wanted = request.headers.get("access-control-request-method", "")
            if origin is None or wanted not in ("GET", "HEAD"):
                return Response(status_code=403)
            return Response(
                status_code=204,
                headers={
                    "Access-Control-Allow-Origin": origin,
                    "Access-Control-Allow-Methods": READ_METHODS,
                    "Access-Control-Allow-Headers": ALLOWED_HEADERS,
                    "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S),
                    "Vary": "Origin",
                },
            )
        response = await call_next(request)
        response.headers["Link"] = licence_link
        if origin is not None and request.method in ("GET", "HEAD"):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
            response.headers["Vary"] = "Origin"
        return response
