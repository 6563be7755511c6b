"""Ridership from what the buses sent: boardings and alightings per stop and hour, the
origin-destination matrix per route, by rider category, and CSV for the transport plan.

Two sources, counted together:

* card journeys (``journey`` events): the rider's category comes from the card registry, joined
  on the hashed card id; a card the registry does not know counts as ``unknown``, a revoked one
  as ``revoked``, a pass used outside its validity as ``expired``. A journey without a tap-off
  counts its boarding only, and is counted as such (``missing_tap_off``).
* the driver's tablet (``tablet`` events): boardings and alightings by fare type (the category
  for adult, child, senior, disability; ``ticket`` and ``cash`` as they are); an entry undone on
  the tablet is left out, and an entry sent twice (the tablet resent it) counts once, by its id.
  Tablet riders have no origin-destination pair.

Hours are local (the store's ``http.timezone``). The store's message table is the only input, so
a figure here can always be traced back to the messages behind it.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from gateway.services.cards import UNKNOWN, CardRecord
from gateway.store.db import Filter, Store
from gateway.store.intake import from_ms


@dataclass(frozen=True)
class Movement:
    """One boarding or alighting: where, when (local), who (category or fare), from what."""

    action: str  # board or alight
    route_id: str | None
    stop_id: str | None
    local: datetime
    category: str
    source: str  # card or tablet


@dataclass
class Ridership:
    movements: list[Movement] = field(default_factory=list)
    od: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)  # route, from, to, cat
    missing_tap_off: int = 0
    journeys: int = 0
    start_ms: int = 0
    end_ms: int = 0

    def per_stop_hour(self) -> list[tuple[str, str, int, str, int, int]]:
        """(route, stop, hour, category, boardings, alightings), sorted."""
        counts: Counter[tuple[str, str, int, str, str]] = Counter(
            (m.route_id or "", m.stop_id or "", m.local.hour, m.category, m.action)
            for m in self.movements
        )
        keys = sorted({k[:4] for k in counts})
        return [(*k, counts[(*k, "board")], counts[(*k, "alight")]) for k in keys]

    def by_category(self) -> dict[str, int]:
        return dict(Counter(m.category for m in self.movements if m.action == "board"))

    def boardings_by_hour(self) -> dict[int, int]:
        return dict(Counter(m.local.hour for m in self.movements if m.action == "board"))

    def stops_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["route_id", "stop_id", "hour", "category", "boardings", "alightings"])
        writer.writerows(self.per_stop_hour())
        return out.getvalue()

    def od_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(["route_id", "from_stop_id", "to_stop_id", "category", "journeys"])
        writer.writerows([(*key, n) for key, n in sorted(self.od.items())])
        return out.getvalue()


def _local(ts: str | None, fallback_ms: int, tz: ZoneInfo) -> datetime:
    if isinstance(ts, str):
        try:
            return datetime.fromisoformat(ts.replace("Z", "+00:00")).astimezone(tz)
        except ValueError:
            pass
    return from_ms(fallback_ms).astimezone(tz)


def ridership(
    store: Store,
    cards: dict[str, CardRecord],
    start_ms: int,
    end_ms: int,
    tz: ZoneInfo,
    route_id: str | None = None,
) -> Ridership:
    """Everything the buses reported between ``start_ms`` and ``end_ms`` (message times)."""
    result = Ridership(start_ms=start_ms, end_ms=end_ms)
    journeys = store.scan(Filter(kinds=["bus"], type="journey", start_ms=start_ms, end_ms=end_ms))
    for row in journeys:
        d = row.data
        if route_id is not None and d.get("route_id") != route_id:
            continue
        board = _local(d.get("board_ts"), row.ts_ms, tz)
        record = cards.get(d.get("card") or "")
        category = record.rider(board.date()) if record else UNKNOWN
        result.journeys += 1
        result.movements.append(
            Movement("board", d.get("route_id"), d.get("board_stop"), board, category, "card")
        )
        if d.get("tap_off") and d.get("alight_stop"):
            alight = _local(d.get("alight_ts"), row.ts_ms, tz)
            result.movements.append(
                Movement("alight", d.get("route_id"), d["alight_stop"], alight, category, "card")
            )
            if d.get("board_stop"):
                result.od[
                    (d.get("route_id") or "", d["board_stop"], d["alight_stop"], category)
                ] += 1
        else:
            result.missing_tap_off += 1
    result.movements += _tablet(
        store.scan(Filter(kinds=["bus"], type="tablet", start_ms=start_ms, end_ms=end_ms)),
        tz,
        route_id,
    )
    return result


def _tablet(rows: Iterable, tz: ZoneInfo, route_id: str | None) -> list[Movement]:
    entries: dict[tuple[str, str], Movement] = {}
    undone: set[tuple[str, str]] = set()
    for row in rows:
        d = row.data
        key = (row.device, str(d.get("entry")))
        if d.get("action") == "undo":
            undone.add((row.device, str(d.get("target"))))
        elif d.get("action") in ("board", "alight") and key not in entries:
            if route_id is not None and d.get("route_id") != route_id:
                continue
            local = from_ms(row.ts_ms).astimezone(tz)
            entries[key] = Movement(
                d["action"],
                d.get("route_id"),
                d.get("stop_id"),
                local,
                str(d.get("fare")),
                "tablet",
            )
    return [m for key, m in entries.items() if key not in undone]
