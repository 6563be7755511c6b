"""The NGSI v2 view under ``/ngsi``: what the city publishes as Smart Data Models entities, read
and subscribed to the way a FIWARE platform reads a context broker.

``install`` adds the routes and makes every answer under ``/ngsi`` NGSI's own: errors (also for
an unknown path, a wrong method or a bad parameter) as ``{"error", "description"}``, and each
response carries a ``Fiware-Correlator`` (the caller's, or a new one) for tracing. A trailing
slash is the same resource (FIWARE's Python client asks for ``/v2/entities/``); a path with a
control character is a BadRequest (a router's ``$`` would let ``entities\n`` pass for
``entities``).

Writes (creating, updating or deleting entities, batch updates, registrations) are refused
with 405 MethodNotAllowed, an ``Allow`` header naming what is served, and the reason
(errors.READ_ONLY).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from gateway.api.context import Context
from gateway.api.ngsi import routes, subscriptions
from gateway.api.ngsi.access import TokenFile
from gateway.api.ngsi.errors import READ_ONLY, NgsiError, for_status

PREFIX = "/ngsi"


def _ngsi_path(request: Request) -> bool:
    return request.url.path == PREFIX or request.url.path.startswith(PREFIX + "/")


def install(app: FastAPI, ctx: Context) -> subscriptions.Notifier:
    """Add the NGSI routes to ``app``; the notifier they need is returned, not started (the
    HTTP server starts and stops it with itself)."""
    config = ctx.config.ngsi
    book = subscriptions.SubscriptionBook(ctx.config.subscriptions_file, config.max_subscriptions)
    app.state.ngsi_book = book
    app.state.ngsi_tokens = TokenFile(config.tokens_file)
    app.include_router(routes.router)
    app.include_router(subscriptions.router)
    fallback_http = app.exception_handlers.get(HTTPException)
    fallback_validation = app.exception_handlers.get(RequestValidationError)

    async def ngsi_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NgsiError)
        return exc.response()

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if not _ngsi_path(request):
            assert fallback_http is not None
            return await fallback_http(request, exc)  # type: ignore[no-any-return]
        description = exc.detail if isinstance(exc.detail, str) else "bad request"
        if exc.status_code == 404:
            description = "no such resource in this NGSI v2 service"
        if exc.status_code == 405:
            description = "this NGSI v2 service does not accept that method here"
            if not request.url.path.startswith(PREFIX + "/v2/subscriptions"):
                description = READ_ONLY
        return for_status(exc.status_code, description).response(
            headers=getattr(exc, "headers", None)
        )

    async def validation_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if not _ngsi_path(request):
            assert fallback_validation is not None
            return await fallback_validation(request, exc)  # type: ignore[no-any-return]
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return for_status(400, f"{where}: {first.get('msg', 'invalid')}").response()

    app.add_exception_handler(NgsiError, ngsi_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)

    @app.middleware("http")
    async def ngsi_answers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if not _ngsi_path(request):
            return await call_next(request)
        path = request.scope["path"]
        if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
            response: Response = NgsiError(
                "BadRequest", "control characters in the path"
            ).response()
        else:
            if len(path) > len(PREFIX) + 1 and path.endswith("/"):
                request.scope["path"] = path.rstrip("/")
            response = await call_next(request)
        given = request.headers.get("fiware-correlator", "")
        usable = given if 0 < len(given) <= 64 and given.isascii() and given.isprintable() else ""
        response.headers["Fiware-Correlator"] = usable or str(uuid.uuid4())
        return response

    return subscriptions.Notifier(ctx, book, lambda: routes.city_entities(ctx))


__all__ = ["install"]
