"""Child-tracker messages: what a tracker (or a phone standing in for one) tells the city.

``position`` (telemetry) is the only message that says where a child is, and it says no more than
the city needs: degrees to 5 decimals (about 1 m, finer than any GNSS fix a child's tracker gets),
the uncertainty, and how the fix was made. No name, no card id, no address: a device id, which
the city's registry alone links to a child. ``sos`` (event) is the button, with the last fix if
there is one. ``state`` (telemetry) is the device's battery and cellular link.

``Position.from_data`` is the one check every city consumer runs (the school service, the phone
intake, the benchmark), so a position that passed it means the same thing everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from edge.protocol.envelope import EnvelopeError

POSITION = "position"  # telemetry
SOS = "sos"  # event
STATE = "state"  # telemetry
DECIMALS = 5  # ~1.1 m of latitude: the rounding every position is sent with
SOURCES = ("gnss", "modem", "owntracks", "osmand")
# Why a position was sent: the reporting policy's reason, so the city can tell a sparse night
# from a lost link.
REASONS = ("moving", "still", "school", "night", "sos", "first", "phone")
MAX_ACCURACY_M = 10_000.0


@dataclass(frozen=True)
class Position:
    """A checked ``position``: where, how sure (``acc``, metres, 1 sigma; None = unknown)."""

    lat: float
    lon: float
    acc: float | None = None
    spd: float | None = None  # m/s
    src: str = "gnss"
    why: str = "moving"
    hdop: float | None = None
    sats: int | None = None

    def data(self) -> dict[str, Any]:
        """The envelope's ``data``: rounded, and without the fields that are unknown."""
        out: dict[str, Any] = {
            "lat": round(self.lat, DECIMALS),
            "lon": round(self.lon, DECIMALS),
            "src": self.src,
            "why": self.why,
        }
        for key in ("acc", "spd", "hdop"):
            if (value := getattr(self, key)) is not None:
                out[key] = round(value, 1)
        if self.sats is not None:
            out["sats"] = self.sats
        return out

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Position:
        """Check a ``position``'s data; ``EnvelopeError`` names the first wrong field."""
        unknown = data.keys() - {"lat", "lon", "acc", "spd", "src", "why", "hdop", "sats"}
        if unknown:
            raise EnvelopeError(f"data.{sorted(unknown)[0]}", "unknown key")
        lat = _number(data, "lat", -90.0, 90.0, required=True)
        lon = _number(data, "lon", -180.0, 180.0, required=True)
        acc = _number(data, "acc", 0.0, MAX_ACCURACY_M)
        spd = _number(data, "spd", 0.0, 100.0)
        hdop = _number(data, "hdop", 0.0, 99.99)
        sats = data.get("sats")
        if sats is not None and (isinstance(sats, bool) or not isinstance(sats, int) or sats < 0):
            raise EnvelopeError("data.sats", f"expected a count, got {sats!r}")
        src, why = data.get("src", "gnss"), data.get("why", "moving")
        if src not in SOURCES:
            raise EnvelopeError("data.src", f"expected one of {', '.join(SOURCES)}, got {src!r}")
        if why not in REASONS:
            raise EnvelopeError("data.why", f"expected one of {', '.join(REASONS)}, got {why!r}")
        assert lat is not None and lon is not None
        return cls(lat, lon, acc, spd, src, why, hdop, sats)


def _number(
    data: dict[str, Any], key: str, low: float, high: float, *, required: bool = False
) -> float | None:
    value = data.get(key)
    if value is None:
        if required:
            raise EnvelopeError(f"data.{key}", "missing")
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise EnvelopeError(f"data.{key}", f"expected a number, got {value!r}")
    if not low <= value <= high:
        raise EnvelopeError(f"data.{key}", f"expected {low:g}..{high:g}, got {value!r}")
    return float(value)
