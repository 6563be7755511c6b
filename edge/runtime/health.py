"""Counters and the last error of a running process, reported in its retained status message."""

from __future__ import annotations

import threading
from collections import Counter
from importlib import metadata
from typing import Any

from edge.protocol import utc_timestamp
from edge.runtime.clock import Clock


def package_version() -> str:
    try:
        return metadata.version("machimori")
    except metadata.PackageNotFoundError:
        return "0+unknown"


class Health:
    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._started = clock.monotonic()
        self._lock = threading.Lock()
        self.counters: Counter[str] = Counter()
        self.last_error: str | None = None
        self.last_error_ts: str | None = None
        self.version = package_version()

    def count(self, name: str, by: int = 1) -> None:
        with self._lock:
            self.counters[name] += by

    def set(self, name: str, value: int) -> None:
        """A counter kept elsewhere (a driver's), mirrored here for the status."""
        with self._lock:
            self.counters[name] = value

    def error(self, message: str) -> None:
        """Remember the latest problem; it stays in the status until a newer one replaces it."""
        with self._lock:
            self.last_error = message
            self.last_error_ts = utc_timestamp(self._clock.now())

    def snapshot(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        with self._lock:
            return {
                "version": self.version,
                "uptime_s": round(self._clock.monotonic() - self._started, 1),
                "last_error": self.last_error,
                "last_error_ts": self.last_error_ts,
                "counters": dict(sorted(self.counters.items())),
                **(extra or {}),
            }
