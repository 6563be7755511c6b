"""What ``machimori store run`` runs: ingest, retention and the HTTP server on one store, plus
extra ingest worker processes when ``ingest.workers`` > 1 (they share the MQTT subscription).

One process serving ingest and web is the simple deployment; ``machimori web run`` serves the
same HTTP side alone (a second host on the same PostgreSQL, say), and ``machimori store ingest``
runs one more ingest worker.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from edge.protocol.envelope import parse_timestamp
from edge.runtime.clock import Clock
from gateway.store.config import StoreConfig
from gateway.store.db import open_store, redact
from gateway.store.images import ImageFiles
from gateway.store.ingest import Ingest
from gateway.store.intake import to_ms
from gateway.store.retention import RetentionLoop

if TYPE_CHECKING:
    from gateway.web.server import HttpServer

log = logging.getLogger(__name__)
WORKER_RESTART_S = 5.0


class StoreService:
    def __init__(
        self,
        config: StoreConfig,
        *,
        ingest: bool = True,
        http: bool = True,
        retention: bool = True,
        worker: int = 0,
        config_path: Path | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.config_path = config_path
        epoch = parse_timestamp(config.clock_epoch) if config.clock_epoch else None
        start = parse_timestamp(config.clock_start) if config.clock_start else None
        self.clock = clock or Clock(config.clock_speed, start, epoch=epoch)
        self.store = open_store(config.database, config.sqlite_sync)
        self.images = ImageFiles(config.images_dir)
        self.ingest: Ingest | None = None
        if ingest and config.ingest.enabled:
            client_id = config.ingest.client_id + (f"-{worker}" if worker else "")
            self.ingest = Ingest(
                config.mqtt, config.ingest, self.store, self.images, self.clock, client_id
            )
        self.retention = (
            RetentionLoop(self.store, self.images, config.retention, self.now_ms)
            if retention
            else None
        )
        self.http = self._http() if http and config.http.enabled else None
        self.extra_workers = config.ingest.workers - 1 if self.ingest and not worker else 0
        self._workers: dict[int, subprocess.Popen[bytes]] = {}

    def now_ms(self) -> int:
        return to_ms(self.clock.now())

    def _http(self) -> HttpServer:
        """The web side, imported only when this process serves HTTP."""
        from gateway.api.auth import StaffAuth
        from gateway.api.context import Context
        from gateway.api.sites import load_sites_file
        from gateway.services.transit import Transit
        from gateway.web.server import HttpServer, build_app

        staff = self.config.staff
        auth = StaffAuth.from_files(
            staff.users_file,
            staff.session_secret_file,
            staff.session_hours,
            staff.secure_cookie,
            self.store,
        )
        places = load_sites_file(self.config.sites_file)
        ctx = Context(
            self.config,
            self.store,
            places.sites,
            self.clock,
            self.images,
            auth,
            [self.ingest.stats.snapshot] if self.ingest else [],
            places.cameras,
            Transit.open(self.config.transit, self.store) if self.config.transit else None,
        )
        return HttpServer(build_app(ctx), self.config.http.host, self.config.http.port)

    @property
    def url(self) -> str | None:
        return self.http.url if self.http else None

    def start(self) -> None:
        if self.ingest:
            self.ingest.start()
        if self.retention:
            self.retention.start()
        for n in range(1, self.extra_workers + 1):
            self._spawn(n)
        if self.http:
            self.http.start()
        log.info(
            "store started",
            extra={
                "fields": {
                    "database": redact(self.config.database),
                    "ingest_workers": (1 + self.extra_workers) if self.ingest else 0,
                    "http": self.url or "-",
                }
            },
        )

    def _spawn(self, n: int) -> None:
        if self.config_path is None:
            raise RuntimeError("extra ingest workers need the config file's path")
        self._workers[n] = subprocess.Popen(
            [sys.executable, "-m", "machimori", "store", "ingest"]
            + ["--config", str(self.config_path), "--worker", str(n)]
        )

    def watch_workers(self) -> None:
        """Restart an extra ingest worker that died (its unacknowledged messages wait at the
        broker for it)."""
        for n, proc in list(self._workers.items()):
            if proc.poll() is not None:
                log.warning(
                    "ingest worker exited; restarting",
                    extra={"fields": {"worker": n, "status": proc.returncode}},
                )
                self._spawn(n)

    def stop(self) -> None:
        if self.http:
            self.http.stop()
        for proc in self._workers.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self._workers.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.ingest:
            self.ingest.stop()
        if self.retention:
            self.retention.stop()
        self.store.close()

    def run(self) -> None:
        """Start, then run until SIGTERM or SIGINT, then stop cleanly."""
        stop = threading.Event()
        previous = {
            sig: signal.signal(sig, lambda *_: stop.set())
            for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self.start()
            while not stop.wait(WORKER_RESTART_S):
                self.watch_workers()
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
