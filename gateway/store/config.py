"""The city store's config file (YAML): database, broker, ingest, retention, HTTP and staff login.

One file serves ``machimori store run`` (ingest + HTTP) and ``machimori web run`` (HTTP only), so
the two always agree on the database and the sites. See configs/store.yaml for an annotated example.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from edge.protocol import KINDS
from edge.runtime.config import build, load_yaml
from edge.runtime.uplink import MqttConfig

GROUP = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TILES = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?/[^\s\"'<>]*\{z\}[^\s\"'<>]*$")
ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:\d{1,5})?$")
TENANT = re.compile(r"^[A-Za-z0-9_]{0,50}$")
SERVICE_PATH = re.compile(r"^/([A-Za-z0-9_]{1,50}(/[A-Za-z0-9_]{1,50}){0,9})?$")
MQTT_PREFIX = re.compile(r"^[^+#/\x00][^+#\x00]{0,200}/$")
DAY_S = 86400.0


@dataclass
class IngestConfig:
    enabled: bool = True
    client_id: str = "machimori-store"
    # MQTT v5 shared subscription group: several ingest workers (on this host or others) split
    # the stream between them. Needed when workers > 1.
    shared_group: str | None = None
    workers: int = 1  # ingest processes this `store run` starts (each its own MQTT session)
    batch_max: int = 2000  # messages written per transaction at most
    # unacknowledged messages the broker may send us (MQTT v5 Receive Maximum); a message is
    # acknowledged only after the transaction holding it committed
    receive_max: int = 8000
    session_expiry_s: int = 7 * 86400  # the broker queues for us this long while we are away
    max_image_bytes: int = 5_000_000
    # a reading or event larger than this is rejected (envelope_too_large); images have their own
    max_envelope_bytes: int = 65536
    keep_rejected_bytes: int = 65536  # of a rejected payload, this much is kept for inspection
    # After each commit, publish every device's acknowledgement watermark (retained, on
    # machimori/v1/{kind}/{device}/ack), so devices delete only what the store holds. Off only
    # for a store that is not the city's record (devices then must use mqtt.confirm: broker).
    publish_acks: bool = True

    def __post_init__(self) -> None:
        if self.shared_group is not None and not GROUP.match(self.shared_group):
            raise ValueError("shared_group: 1-64 chars of A-Z a-z 0-9 _ -")
        if self.workers < 1 or (self.workers > 1 and self.shared_group is None):
            raise ValueError("workers >= 1, and workers > 1 needs a shared_group")
        if not 1 <= self.batch_max <= self.receive_max <= 65535:
            raise ValueError("need 1 <= batch_max <= receive_max <= 65535")
        if self.max_envelope_bytes < 256:
            raise ValueError("max_envelope_bytes >= 256")


def _default_days() -> dict[str, float]:
    # Children's positions are personal data: two days, enough for today's school run and
    # yesterday's comparison. River data is a public record and kept long.
    return {
        "river": 3650.0,
        "alert": 3650.0,
        "camera": 365.0,
        "bus": 365.0,
        "gateway": 90.0,
        "tracker": 2.0,
    }


@dataclass
class RetentionConfig:
    days: dict[str, float] = field(default_factory=_default_days)  # per kind, 0 = keep forever
    rejected_days: float = 30.0
    interval_s: float = 3600.0  # how often the purge runs inside `store run`

    def __post_init__(self) -> None:
        unknown = sorted(set(self.days) - set(KINDS))
        if unknown:
            raise ValueError(f"days: unknown kind {unknown[0]!r} (kinds: {', '.join(KINDS)})")
        if any(d < 0 for d in self.days.values()) or self.rejected_days < 0:
            raise ValueError("retention days must be >= 0")
        self.days = _default_days() | self.days

    def seconds(self, kind: str) -> float | None:
        """How long messages of ``kind`` are kept, or None for ever."""
        days = self.days.get(kind, 0.0)
        return days * DAY_S if days > 0 else None


@dataclass
class HttpConfig:
    enabled: bool = True
    host: str = "127.0.0.1"  # behind a reverse proxy (TLS) in a deployment
    port: int = 8080
    refresh_s: int = 60  # how often the river page reloads its data
    # Kinds anyone may read through the API; the rest (children's positions, camera images,
    # bus ridership) need a staff login.
    public_kinds: list[str] = field(default_factory=lambda: ["river"])
    timezone: str = "Asia/Tokyo"  # for times shown on the pages
    # The licence of the open data (the public API, NGSI view, exports and pages): an SPDX id,
    # its URL and who to credit. Japan's government open-data terms are compatible with CC BY 4.0.
    licence: str = "CC-BY-4.0"
    licence_url: str = "https://creativecommons.org/licenses/by/4.0/"
    attribution: str = "machimori city store"
    # Background map of the river page: an XYZ tile URL (GSI's standard map by default; "" for
    # none: the markers and the list work without tiles) and the credit the tiles require.
    map_tiles: str = "https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png"
    map_attribution: str = "国土地理院 (GSI Japan)"
    # The public sightings page (/sightings, /api/v1/sightings, NGSI Alert) shows harmful-animal
    # detections of the last sightings_days, each placed at the centre of its camera's
    # sightings_grid_m square, never at the camera itself; never with the image.
    sightings_days: float = 14.0
    sightings_grid_m: float = 1000.0
    # Origins a browser may read the public API from (CORS); "*" for any site, [] for none.
    cors_origins: list[str] = field(default_factory=lambda: ["*"])

    def __post_init__(self) -> None:
        if not self.licence.strip() or not self.licence_url.startswith(("https://", "http://")):
            raise ValueError("licence and licence_url (http(s)://...) are needed for open data")
        if not 0 < self.sightings_days <= 365 or not 100 <= self.sightings_grid_m <= 20000:
            raise ValueError("sightings_days 0..365, sightings_grid_m 100..20000 metres")
        if self.map_tiles and not TILES.match(self.map_tiles):
            raise ValueError("map_tiles: an https:// URL with {z}, {x} and {y}, or empty")
        bad = [o for o in self.cors_origins if o != "*" and not ORIGIN.match(o)]
        if bad:
            raise ValueError(f"cors_origins: {bad[0]!r} is not * or scheme://host[:port]")
        unknown = sorted(set(self.public_kinds) - set(KINDS))
        if unknown:
            raise ValueError(f"public_kinds: unknown kind {unknown[0]!r}")
        if not 1 <= self.refresh_s <= 3600:
            raise ValueError("refresh_s: 1..3600 seconds")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone: unknown zone {self.timezone!r}") from exc


@dataclass
class StaffConfig:
    # One line per member of staff, `name:hash`, made by `machimori web passwd`. Keep it outside
    # git, mode 0600. Without it nobody can log in and the staff page stays closed.
    users_file: Path | None = None
    # 32+ random bytes that sign session cookies; without it a random key is made at start, so
    # a restart logs everyone out.
    session_secret_file: Path | None = None
    session_hours: float = 12.0
    secure_cookie: bool = True  # cookie only over HTTPS; false only for a loopback demo


@dataclass
class NgsiConfig:
    """The NGSI v2 view (/ngsi/v2) as a context broker would serve it to a FIWARE platform."""

    # The tenant (Fiware-Service header) and service path its entities live in; "" is Orion's
    # default tenant (no header). A request for another tenant gets an empty answer.
    service: str = ""
    service_path: str = "/"
    # Subscriptions (POST /ngsi/v2/subscriptions) are kept in this file across restarts;
    # default: ngsi-subscriptions.json beside images_dir.
    subscriptions_file: Path | None = None
    # Who may create and delete subscriptions: one `name:token` line per platform (mode 0600,
    # outside git), sent as `Authorization: Bearer <token>`; staff sessions may too. Without a
    # file only staff can. Reading subscriptions is open, like the entities.
    tokens_file: Path | None = None
    poll_s: float = 5.0  # how often entities are compared for notifications
    notify_timeout_s: float = 10.0
    notify_attempts: int = 5  # a failing notification is retried with backoff, then dropped
    max_subscriptions: int = 100
    # MQTT notifications (a subscription's notification.mqtt). The notifier's own account on the
    # city's broker (host, port, username, password_file, tls as under `mqtt:`), provisioned with
    # `--kind notifier` so that the broker lets it write only under mqtt_topic_prefix and read
    # nothing. It is used only for a subscription naming this very broker without a user/passwd
    # of its own, whose topic must then start with mqtt_topic_prefix; never sent elsewhere.
    # Unset: such subscriptions connect without an account (a city broker refuses them).
    notifier_mqtt: MqttConfig | None = None
    mqtt_topic_prefix: str = "ngsi/"

    def __post_init__(self) -> None:
        if not MQTT_PREFIX.match(self.mqtt_topic_prefix):
            raise ValueError("mqtt_topic_prefix: a topic level or more ending in /, no + or #")
        if not TENANT.match(self.service):
            raise ValueError("service: up to 50 of A-Z a-z 0-9 _ (a Fiware-Service name)")
        if not SERVICE_PATH.match(self.service_path):
            raise ValueError("service_path: /, or /a/b with up to 10 parts of A-Z a-z 0-9 _")
        if not 0.1 <= self.poll_s <= 3600 or not 0.1 <= self.notify_timeout_s <= 300:
            raise ValueError("poll_s 0.1..3600 and notify_timeout_s 0.1..300 seconds")
        if not 1 <= self.notify_attempts <= 20 or not 1 <= self.max_subscriptions <= 10000:
            raise ValueError("notify_attempts 1..20, max_subscriptions 1..10000")


@dataclass
class TransitConfig:
    # The city's GTFS-JP feed (zip or folder): the GTFS-Realtime feed and ridership refer to it.
    gtfs: Path
    stale_after_s: float = 300.0  # a bus silent this long leaves the GTFS-Realtime feed

    def __post_init__(self) -> None:
        if not 10 <= self.stale_after_s <= 86400:
            raise ValueError("stale_after_s: 10..86400 seconds")


@dataclass
class StoreConfig:
    # sqlite:///relative.db, sqlite:////absolute/path.db, or postgresql://user@host:5432/db
    # (PostgreSQL passwords come from ~/.pgpass or PGPASSWORD, never this file)
    database: str = "sqlite:////var/lib/machimori/store.db"
    sqlite_sync: Literal["full", "normal"] = "full"
    images_dir: Path = Path("/var/lib/machimori/images")
    sites_file: Path | None = None  # river sites and their warning levels (configs/sites.yaml)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    http: HttpConfig = field(default_factory=HttpConfig)
    staff: StaffConfig = field(default_factory=StaffConfig)
    ngsi: NgsiConfig = field(default_factory=NgsiConfig)
    transit: TransitConfig | None = None  # the city's buses: GTFS-Realtime, ridership, cards
    log_level: Literal["debug", "info", "warning", "error"] = "warning"
    clock_speed: float = 1.0  # >1 only in simulation, to match the simulated field devices
    clock_epoch: str | None = None  # simulation only: the devices' shared epoch (ISO 8601 UTC)
    # simulation only: the moment the city's clock starts at (RFC 3339), e.g. a school morning
    clock_start: str | None = None

    @property
    def subscriptions_file(self) -> Path:
        return self.ngsi.subscriptions_file or self.images_dir.parent / "ngsi-subscriptions.json"

    def __post_init__(self) -> None:
        if not self.database.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("database: expected sqlite:///path or postgresql://... URL")


def load_config(path: str | Path) -> StoreConfig:
    """Read and check a store config file; relative paths in it are relative to the file."""
    path = Path(path)
    config = build(StoreConfig, load_yaml(path), file=path)
    base = path.resolve().parent
    config.images_dir = base / config.images_dir
    if config.sites_file is not None:
        config.sites_file = base / config.sites_file
    staff = config.staff
    for name in ("users_file", "session_secret_file"):
        value = getattr(staff, name)
        if value is not None:
            setattr(staff, name, base / value)
    for name in ("subscriptions_file", "tokens_file"):
        value = getattr(config.ngsi, name)
        if value is not None:
            setattr(config.ngsi, name, base / value)
    if config.transit is not None:
        config.transit.gtfs = base / config.transit.gtfs
    for mqtt in (config.mqtt, config.ngsi.notifier_mqtt):
        if mqtt is not None and mqtt.password_file is not None:
            mqtt.password_file = base / mqtt.password_file
    if config.database.startswith("sqlite:///"):
        config.database = f"sqlite:///{base / config.database.removeprefix('sqlite:///')}"
    return config
