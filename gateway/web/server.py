"""The HTTP side of the store: the API, the NGSI view and the pages in one FastAPI app, served by
uvicorn either in the foreground (``machimori web run``) or in a thread beside ingest."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import uvicorn
from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from edge.runtime.health import package_version
from gateway.api import export, ngsi, opendata, routes, sightings, transit
from gateway.api.context import Context
from gateway.web import docs, ridership, river, staff
from gateway.web import sightings as sightings_page
from gateway.web.layout import SECURITY_HEADERS

STATIC = Path(__file__).parent / "static"
DESCRIPTION = """\
The city store of machimori: readings and events from the city's field devices (river gauges,
cameras, buses, child trackers) as they arrived over MQTT.

Anyone may read river gauges. Other kinds (positions of children above all) are visible only
with a staff session. Times are RFC 3339 UTC; ``from`` is inclusive and ``to`` exclusive.
A FIWARE platform can read the gauges as NGSI v2 entities under ``/ngsi/v2`` (and subscribe
to changes) as it reads a context broker. Public answers carry the data's licence in a
``Link: <...>; rel="license"`` header, and any site may read them (CORS, without credentials).
"""


def build_app(ctx: Context) -> FastAPI:
    http = ctx.config.http
    app = FastAPI(
        title="machimori city store",
        version=package_version(),
        description=DESCRIPTION,
        docs_url=None,  # /docs is gateway/web/docs.py: vendored Swagger UI, no CDN
        redoc_url=None,
        license_info={"name": f"{http.licence} ({http.attribution})", "url": http.licence_url},
    )
    app.state.context = ctx
    app.state.river_cache = river.FragmentCache(
        min(river.CACHE_MAX_S, ctx.config.http.refresh_s / 2)
    )
    for router in (
        routes.router,
        routes.health_router,
        export.router,
        sightings.router,
        transit.router,
        river.router,
        sightings_page.router,
        ridership.router,
        staff.router,
        docs.router,
    ):
        app.include_router(router)
    app.state.notifier = ngsi.install(app, ctx)
    opendata.install(app, http)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith(("/staff", "/api/v1/rejections")):
            response.headers["Cache-Control"] = "no-store"
        return response

    return app


class HttpServer:
    """uvicorn on an already-bound socket, so port 0 works and the real port is known."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((host, port))
        self.sock.listen(256)
        self.host = host
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            log_config=None,  # keep the process's logfmt logging
            access_log=False,
            server_header=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self.server = uvicorn.Server(config)
        # the store's NGSI subscriptions notifier; an app without one (the tracker service's)
        # serves the same way
        self.notifier = getattr(app.state, "notifier", None)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def run(self) -> None:
        """Serve in this thread until SIGTERM/SIGINT (uvicorn handles them in the main thread)."""
        self.server.run(sockets=[self.sock])

    def start(self, timeout_s: float = 20.0) -> None:
        if self.notifier is not None:
            self.notifier.start()
        self._thread = threading.Thread(target=self.run, name="http", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the HTTP server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self.notifier is not None:
            self.notifier.stop()
        self.sock.close()
