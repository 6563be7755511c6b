"""Offline replay: the routine engine over a file of tracker envelopes, alerts out as JSON lines.

In: JSON lines, each a tracker envelope as published on MQTT (``position`` telemetry; other
types are skipped), any number of devices, in time order (as a store export gives them). Each
device is one child. Out: one JSON line per alert raised or cleared::

    {"device": "tracker-0042", "ts": "2026-12-01T06:40:00.000Z", "event": "raise",
     "kind": "place", "reason": {"ja": "...", "en": "..."},
     "since": "2026-12-01T06:31:12.000Z", "key": "2026-12-01/place/1"}

Time only moves with the file: the clock-driven looks of the live service happen here every
minute of the file's time (and at each line's ``ts``). Cities use it to tune ``routine:``
thresholds on their own history.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TextIO

from edge.protocol import Envelope, EnvelopeError, utc_timestamp
from edge.protocol.tracker import POSITION, Position
from gateway.services.routine_engine import RoutineEngine, RoutineEvent

log = logging.getLogger(__name__)
TICK_MS = 60_000


@dataclass
class ReplayCounts:
    lines: int = 0
    positions: int = 0
    skipped: int = 0  # envelopes of other types
    rejected: int = 0  # lines that are not a valid tracker envelope
    out_of_order: int = 0
    events: dict[str, int] = field(default_factory=dict)


def event_record(event: RoutineEvent) -> dict[str, object]:
    def iso(ms: int) -> str:
        return utc_timestamp(datetime.fromtimestamp(ms / 1000, UTC))

    return {
        "device": event.child,
        "ts": iso(event.ts_ms),
        "event": event.action,
        "kind": event.kind,
        "reason": event.reason,
        "since": iso(event.since_ms),
        "key": event.key,
    }


class Replay:
    """Feeds an engine in time order and writes what it says."""

    def __init__(self, engine: RoutineEngine, out: TextIO) -> None:
        self.engine = engine
        self.out = out
        self.counts = ReplayCounts()
        self.now_ms = 0

    def feed(self, device: str, ts_ms: int, lat: float, lon: float, acc: float | None) -> None:
        if ts_ms < self.now_ms:
            self.counts.out_of_order += 1
        else:
            # the service looks at the children every 30 s; here, every minute of the file's time
            clock = self.now_ms or ts_ms
            while clock + TICK_MS < ts_ms:
                clock += TICK_MS
                self._write(self.engine.tick(clock))
            self._write(self.engine.tick(ts_ms))
            self.now_ms = ts_ms
        self.counts.positions += 1
        self._write(self.engine.observe(device, ts_ms, lat, lon, acc))

    def feed_lines(self, lines: Iterable[str]) -> ReplayCounts:
        for number, line in enumerate(lines, 1):
            self.counts.lines += 1
            if not line.strip():
                continue
            try:
                env = Envelope.from_json(line)
                if env.type != POSITION:
                    self.counts.skipped += 1
                    continue
                position = Position.from_data(env.data)
            except (EnvelopeError, ValueError) as exc:
                self.counts.rejected += 1
                if self.counts.rejected <= 10:
                    log.warning("line %d rejected: %s", number, getattr(exc, "field", exc))
                continue
            self.feed(env.device, env.ts_ms, position.lat, position.lon, position.acc)
        return self.counts

    def _write(self, events: list[RoutineEvent]) -> None:
        for event in events:
            name = f"{event.action}_{event.kind}"
            self.counts.events[name] = self.counts.events.get(name, 0) + 1
            self.out.write(json.dumps(event_record(event), ensure_ascii=False) + "\n")
