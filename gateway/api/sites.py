"""River sites (YAML) and what a gauge's latest reading means against its four warning levels.

Japan's river gauges have four reference levels, in rising order: 水防団待機 (flood-fighting teams
stand by), 氾濫注意 (flood caution), 避難判断 (evacuation decision) and 氾濫危険 (flood danger).
A level at or above a threshold is in that state. A gauge that reported 欠測 (missing), or has
said nothing for ``stale_after_min``, is shown as missing, never as its last number.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edge.protocol.topics import check_device_id
from edge.runtime.config import ConfigError, build, load_yaml
from gateway.store.db import Filter, LatestRow, Store

LEVELS = ("standby", "caution", "evacuation", "danger")
STATES = ("normal", *LEVELS, "missing")
READING_TYPE = "level"
LEVEL_FIELD = "level_m"
TREND_WINDOW_MS = 30 * 60_000  # the trend is the slope of the last half hour of readings
TREND_MIN_SPAN_MS = 15 * 60_000
STEADY_M_PER_H = 0.05


@dataclass
class Thresholds:
    """Metres above the gauge datum (the same datum as the gauge's ``level_m``)."""

    standby: float
    caution: float
    evacuation: float
    danger: float

    def __post_init__(self) -> None:
        values = [getattr(self, name) for name in LEVELS]
        if values != sorted(values) or len(set(values)) != len(values):
            raise ValueError("levels must rise: standby < caution < evacuation < danger")

    def state(self, level_m: float) -> str:
        reached = [name for name in LEVELS if level_m >= getattr(self, name)]
        return reached[-1] if reached else "normal"


@dataclass
class Site:
    device: str  # the gauge's device id
    name: str  # as residents know the place, in Japanese
    river: str
    lat: float
    lon: float
    levels_m: Thresholds
    name_en: str = ""
    river_en: str = ""
    stale_after_min: float = 30.0  # no reading for this long shows 欠測
    # Below its observation-start level a gauge reports only news and a daily heartbeat (see
    # docs/river.md), so its silence means 欠測 only after quiet_stale_after_h.
    observe_from_m: float | None = None
    quiet_stale_after_h: float = 25.0
    # Height of the ultrasonic sensor's face above the gauge datum (the gauge's mount_height_m):
    # published as FloodMonitoring's referenceLevel, with the measured distance below it.
    sensor_height_m: float | None = None

    def __post_init__(self) -> None:
        check_device_id(self.device)
        if not (-90 <= self.lat <= 90 and -180 <= self.lon <= 180):
            raise ValueError("lat/lon out of range")
        if self.stale_after_min <= 0 or self.quiet_stale_after_h <= 0:
            raise ValueError("stale_after_min and quiet_stale_after_h must be > 0")

    def stale_after_ms(self, level_m: float | None) -> float:
        """How long silence is normal after a reading of ``level_m`` (None: a 欠測 report)."""
        quiet = (
            self.observe_from_m is not None
            and level_m is not None
            and level_m < self.observe_from_m
        )
        return self.quiet_stale_after_h * 3_600_000 if quiet else self.stale_after_min * 60_000


@dataclass
class CameraSite:
    """Where a wildlife camera stands. Its exact position is for staff; the public sightings
    page shows only the grid cell around it (``http.sightings_grid_m``)."""

    device: str
    place: str  # the area as residents name it, e.g. 草岡地区
    lat: float
    lon: float
    place_en: str = ""

    def __post_init__(self) -> None:
        check_device_id(self.device)
        if not (-90 <= self.lat <= 90 and -180 <= self.lon <= 180):
            raise ValueError("lat/lon out of range")


@dataclass
class SitesFile:
    sites: list[Site] = field(default_factory=list)
    cameras: list[CameraSite] = field(default_factory=list)


def _unique(path: str | Path, section: str, devices: list[str]) -> None:
    seen: set[str] = set()
    for i, device in enumerate(devices):
        if device in seen:
            raise ConfigError(path, f"{section}[{i}].device", "a device listed once", device)
        seen.add(device)


def load_sites_file(path: str | Path | None) -> SitesFile:
    """River sites and camera sites from one file (configs/sites.yaml)."""
    if path is None:
        return SitesFile()
    loaded = build(SitesFile, load_yaml(path), file=path)
    _unique(path, "sites", [s.device for s in loaded.sites])
    _unique(path, "cameras", [c.device for c in loaded.cameras])
    return loaded


def load_sites(path: str | Path | None) -> list[Site]:
    return load_sites_file(path).sites


@dataclass(frozen=True)
class SiteNow:
    """One site as the river page shows it now."""

    site: Site
    state: str  # one of STATES
    level_m: float | None
    observed_ms: int | None  # when the latest reading (or 欠測 report) was measured
    missing: str | None  # why it is 欠測: "stale", "no_data" or the gauge's reason
    trend_m_per_h: float | None
    distance_m: float | None = None  # sensor face to water, as the gauge measured it

    @property
    def measured_distance_m(self) -> float | None:
        """The gauge's own distance when it sent one (MQTT gauges do), else what its level and
        the sensor's height imply (LoRaWAN frames carry the level only)."""
        if self.level_m is None:
            return None
        if self.distance_m is not None:
            return self.distance_m
        height = self.site.sensor_height_m
        return round(height - self.level_m, 3) if height is not None else None

    @property
    def trend(self) -> str | None:
        if self.trend_m_per_h is None:
            return None
        if abs(self.trend_m_per_h) < STEADY_M_PER_H:
            return "steady"
        return "rising" if self.trend_m_per_h > 0 else "falling"


def site_now(site: Site, latest: LatestRow | None, store: Store, now_ms: int) -> SiteNow:
    if latest is None:
        return SiteNow(site, "missing", None, None, "no_data", None)
    level = latest.data.get(LEVEL_FIELD)
    is_level = isinstance(level, int | float) and not isinstance(level, bool)
    if now_ms - latest.ts_ms > site.stale_after_ms(float(level) if is_level else None):
        return SiteNow(site, "missing", None, latest.ts_ms, "stale", None)
    if not is_level:
        reason = str(latest.data.get("missing") or "no_level")
        return SiteNow(site, "missing", None, latest.ts_ms, reason, None)
    distance_mm = latest.data.get("distance_mm")
    has_distance = isinstance(distance_mm, int | float) and not isinstance(distance_mm, bool)
    return SiteNow(
        site,
        site.levels_m.state(level),
        float(level),
        latest.ts_ms,
        None,
        _trend(site, latest, store),
        round(distance_mm / 1000, 3) if has_distance else None,
    )


def _trend(site: Site, latest: LatestRow, store: Store) -> float | None:
    points = store.series(
        site.device,
        READING_TYPE,
        LEVEL_FIELD,
        latest.ts_ms - TREND_WINDOW_MS,
        latest.ts_ms + 1,
        None,
        1000,
    )
    values = [(p.start_ms / 3_600_000, p.avg) for p in points if p.avg is not None]
    if len(values) < 2 or (values[-1][0] - values[0][0]) * 3_600_000 < TREND_MIN_SPAN_MS:
        return None
    # least squares: one noisy reading does not flip the arrow
    mean_t = sum(t for t, _ in values) / len(values)
    mean_v = sum(v for _, v in values) / len(values)
    spread = sum((t - mean_t) ** 2 for t, _ in values)
    return round(sum((t - mean_t) * (v - mean_v) for t, v in values) / spread, 3)


def sites_now(store: Store, sites: list[Site], now_ms: int) -> list[SiteNow]:
    latest = {row.device: row for row in store.latest(Filter(type=READING_TYPE))}
    return [site_now(site, latest.get(site.device), store, now_ms) for site in sites]
