"""The tracker service's config file (YAML): schools, fences, notifications, retention, pages.

Who the children, guardians and school staff are is not here: it is in the service's database,
managed with ``machimori tracker`` commands, so a link can be revoked at once without editing a
file. See configs/tracker.yaml for an annotated example.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from edge.protocol.envelope import parse_timestamp
from edge.protocol.topics import check_device_id
from edge.runtime.config import build, load_yaml
from edge.runtime.uplink import MqttConfig
from gateway.services.geofence import Fence
from gateway.services.routine_config import RoutineConfig
from gateway.services.school_calendar import SchoolCalendar, parse_days


@dataclass
class CircleConfig:
    lat: float
    lon: float
    radius_m: float


@dataclass
class SchoolConfig:
    id: str  # a-z 0-9 -, e.g. "nagai-chuo"
    name: str  # shown to guardians and staff: 長井市立中央小学校
    circle: CircleConfig | None = None
    polygon: list[list[float]] | None = None  # [[lat, lon], ...] corners of the grounds
    not_at_school_by: str = "08:30"  # local time of the absence alert on school days
    closed_days: list[str] = field(default_factory=list)  # "2026-12-24..2027-01-07", "2027-03-01"
    extra_days: list[str] = field(default_factory=list)  # Saturdays the school opens
    outing_days: list[str] = field(default_factory=list)  # announced trips: routines not judged

    def __post_init__(self) -> None:
        check_device_id(self.id)
        self.fence()
        self.deadline()
        parse_days(self.closed_days)
        parse_days(self.extra_days)
        parse_days(self.outing_days)

    def fence(self) -> Fence:
        if self.circle is not None and self.polygon is None:
            return Fence.circle(self.circle.lat, self.circle.lon, self.circle.radius_m)
        if self.polygon is not None and self.circle is None:
            return Fence.of_polygon([(float(c[0]), float(c[1])) for c in self.polygon])
        raise ValueError(f"school {self.id}: give a circle or a polygon")

    def deadline(self) -> time:
        try:
            return time.fromisoformat(self.not_at_school_by)
        except ValueError as exc:
            raise ValueError(
                f"not_at_school_by: expected HH:MM, got {self.not_at_school_by!r}"
            ) from exc

    def calendar(self) -> SchoolCalendar:
        return SchoolCalendar(
            parse_days(self.closed_days), parse_days(self.extra_days), parse_days(self.outing_days)
        )


@dataclass
class FenceConfig:
    confirm_fixes: int = 2  # clear fixes in a row on the new side
    dwell_s: float = 60.0  # ... spanning at least this long
    gate_sigmas: float = 2.0  # a fix within this many accuracy radii of the fence decides nothing
    # a fix that says nothing of its accuracy (SIM7600's AT+CGPSINFO) counts as this, 1 sigma
    unknown_accuracy_m: float = 25.0
    max_accuracy_m: float = 150.0  # a fix worse than this is stored but decides nothing


@dataclass
class EmailConfig:
    host: str = "localhost"
    port: int = 25
    sender: str = "machimori@city.example"
    starttls: bool = False  # true for a submission port (587)
    username: str | None = None
    password_file: Path | None = None  # mode 0600, outside git
    timeout_s: float = 10.0


@dataclass
class WebhookConfig:
    url: str  # the city app's or the LINE bridge's endpoint (https:// in a deployment)
    secret_file: Path  # HMAC-SHA256 key; the receiver checks X-Machimori-Signature with it
    timeout_s: float = 10.0


@dataclass
class NotifyConfig:
    email: EmailConfig | None = None
    webhook: WebhookConfig | None = None
    retry_min_s: float = 5.0
    retry_max_s: float = 900.0  # a failing channel is retried at least this often, forever


@dataclass
class RetentionConfig:
    positions_days: float = 30.0  # raw positions of children
    presence_days: float = 365.0  # arrival / departure records
    audit_days: float = 730.0  # who viewed which child's position
    interval_s: float = 3600.0

    def __post_init__(self) -> None:
        if min(self.positions_days, self.presence_days, self.audit_days) <= 0:
            raise ValueError("retention days must be > 0: children's data is never kept forever")


@dataclass
class WebConfig:
    enabled: bool = True
    host: str = "127.0.0.1"  # behind the city's TLS reverse proxy
    port: int = 8090
    # GSI standard map tiles (地理院タイル); attribution is required by the GSI terms of use
    tile_url: str = "https://cyberjapandata.gsi.go.jp/xyz/std/{z}/{x}/{y}.png"
    tile_attribution: str = (
        '<a href="https://maps.gsi.go.jp/development/ichiran.html">地理院タイル</a>'
    )
    session_secret_file: Path | None = None  # without it, a restart signs everyone out
    session_hours: float = 12.0
    share_max_hours: float = 72.0  # the longest a guardian's share link may live
    secure_cookie: bool = True


@dataclass
class TrackerServiceConfig:
    database: Path = Path("/var/lib/machimori/tracker.db")
    service_id: str = "school-service"  # the device id its alerts are published under
    outbox: Path = Path("/var/lib/machimori/tracker-outbox.db")
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    client_id: str = "machimori-tracker"
    owntracks: bool = True  # also read phones' OwnTracks messages on owntracks/{user}/{device}
    timezone: str = "Asia/Tokyo"
    schools: list[SchoolConfig] = field(default_factory=list)
    fence: FenceConfig = field(default_factory=FenceConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    retention: RetentionConfig = field(default_factory=RetentionConfig)
    web: WebConfig = field(default_factory=WebConfig)
    routine: RoutineConfig = field(default_factory=RoutineConfig)  # learned routines (#12)
    clock_speed: float = 1.0  # >1 only in simulation
    # simulation only: the instant (ISO 8601 UTC) a simulated city's sped-up clock counts from,
    # and the moment it starts at (RFC 3339), shared with the devices so their times agree
    clock_epoch: str | None = None
    clock_start: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "warning"

    def __post_init__(self) -> None:
        check_device_id(self.service_id)
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone: unknown zone {self.timezone!r}") from exc
        for key in ("clock_epoch", "clock_start"):
            if (value := getattr(self, key)) is not None:
                parse_timestamp(value, key)
        ids = [s.id for s in self.schools]
        if len(set(ids)) != len(ids):
            raise ValueError("schools: two schools share an id")

    def school(self, school_id: str) -> SchoolConfig | None:
        return next((s for s in self.schools if s.id == school_id), None)


def load_config(path: str | Path) -> TrackerServiceConfig:
    """Read and check the file; relative paths in it are relative to the file."""
    path = Path(path)
    config = build(TrackerServiceConfig, load_yaml(path), file=path)
    base = path.resolve().parent
    config.database = base / config.database
    config.outbox = base / config.outbox
    if config.mqtt.password_file is not None:
        config.mqtt.password_file = base / config.mqtt.password_file
    if config.web.session_secret_file is not None:
        config.web.session_secret_file = base / config.web.session_secret_file
    notify = config.notify
    if notify.email is not None and notify.email.password_file is not None:
        notify.email.password_file = base / notify.email.password_file
    if notify.webhook is not None:
        notify.webhook.secret_file = base / notify.webhook.secret_file
    return config
