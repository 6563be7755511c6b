"""Retention: how long each kind of data is kept, applied by deleting what is older.

Children's positions are personal data and go after two days unless configured otherwise; river
data is a public record and stays for years. Images go with their kind's retention, and a file is
removed once no image row refers to its content hash. Rejected messages are kept 30 days.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from edge.protocol import KINDS
from gateway.store.config import RetentionConfig
from gateway.store.db import Store
from gateway.store.images import ImageFiles

log = logging.getLogger(__name__)


def purge(store: Store, images: ImageFiles, config: RetentionConfig, now_ms: int) -> dict[str, int]:
    """Delete everything past its retention; how many rows went, per kind."""
    removed: dict[str, int] = {}
    for kind in KINDS:
        keep_s = config.seconds(kind)
        if keep_s is None:
            continue
        cutoff = now_ms - int(keep_s * 1000)
        removed[kind] = store.purge_kind(kind, cutoff)
        orphans = store.purge_images(kind, cutoff)
        for sha in orphans:
            images.remove(sha)
        removed[f"{kind}_images"] = len(orphans)
    if config.rejected_days > 0:
        removed["rejected"] = store.purge_rejected(now_ms - int(config.rejected_days * 86_400_000))
    return removed


class RetentionLoop:
    """Runs :func:`purge` at start and every ``interval_s`` after, in a thread."""

    def __init__(
        self,
        store: Store,
        images: ImageFiles,
        config: RetentionConfig,
        now_ms: Callable[[], int],
    ) -> None:
        self.store = store
        self.images = images
        self.config = config
        self.now_ms = now_ms
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                removed = purge(self.store, self.images, self.config, self.now_ms())
                if any(removed.values()):
                    log.info("retention purge", extra={"fields": removed})
            except Exception as exc:  # a failed purge is retried next time; ingest goes on
                log.warning("retention purge failed", extra={"fields": {"error": str(exc)}})
            self._stop.wait(self.config.interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
