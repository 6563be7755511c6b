"""The bus agent's config: the ``bus:`` section of the device's YAML file (configs/bus-01.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from edge.protocol.bus import MIN_SECRET_BYTES
from edge.protocol.gtfs import Feed, GtfsError


@dataclass
class ReaderConfig:
    # rdm6300: 125 kHz tags on a UART path. nfc: FeliCa/MIFARE through nfcpy, port is nfcpy's path
    # (usb:054c:06c1 for a Sony RC-S380, tty:AMA0:pn532 for a PN532 on the Pi's UART)
    model: Literal["rdm6300", "nfc"] = "rdm6300"
    port: str = "/dev/ttyAMA0"
    hold_gap_s: float = 0.6  # the same card seen again within this is still the same tap

    def __post_init__(self) -> None:
        if not 0.1 <= self.hold_gap_s <= 5:
            raise ValueError("hold_gap_s must be 0.1..5 seconds")


@dataclass
class GnssConfig:
    port: str = "/dev/ttyS0"  # the receiver's UART (NMEA 0183)
    baudrate: int = 9600


@dataclass
class TabletConfig:
    enabled: bool = True
    bind: str = "0.0.0.0"  # the bus LAN's address on a bus with other networks
    port: int = 8080
    token_file: Path | None = None  # when set, the tablet must send this token (paired once)


@dataclass
class BusConfig:
    gtfs: Path  # the city's GTFS-JP feed, a zip (or a folder), copied onto the bus
    route_id: str  # the route this bus runs; a `set_route` command changes it
    card_secret_file: Path  # the city's card-hash secret, at least 16 bytes; mode 0600
    reader: ReaderConfig = field(default_factory=ReaderConfig)
    gnss: GnssConfig = field(default_factory=GnssConfig)
    tablet: TabletConfig = field(default_factory=TabletConfig)
    state_path: Path = Path("/var/lib/machimori/bus-state.db")  # open journeys, tablet ids
    stop_radius_m: float = 40.0  # within this of a stop the bus is at it
    moving_mps: float = 1.5  # faster than this the bus is moving (5.4 km/h)
    position_interval_s: float = 5.0  # a position this often while moving
    idle_interval_s: float = 60.0  # ... and this often while standing
    min_ride_s: float = 60.0  # a second tap at the same stop within this is a double tap
    max_ride_s: float = 3 * 3600.0  # a journey open longer is closed as missing tap-off
    capacity: int = 40  # riders the bus carries, seated and standing (for the occupancy status)
    seats: int = 20

    def __post_init__(self) -> None:
        if not 5 <= self.stop_radius_m <= 500:
            raise ValueError("stop_radius_m must be 5..500 metres")
        if not 1 <= self.position_interval_s <= self.idle_interval_s:
            raise ValueError("need 1 <= position_interval_s <= idle_interval_s")
        if not 0 < self.seats <= self.capacity:
            raise ValueError("need 0 < seats <= capacity")
        if self.min_ride_s < 0 or self.max_ride_s <= self.min_ride_s:
            raise ValueError("need 0 <= min_ride_s < max_ride_s")

    def check_files(self) -> None:
        """The files this config names, read as the agent will (``agent check`` and ``run``
        call it): a missing or short secret, a broken feed or an unknown route fail here."""
        self.secret()
        self.token()
        try:
            feed = Feed.load(self.gtfs)
        except GtfsError as exc:
            raise ValueError(f"gtfs: {exc}") from None
        if self.route_id not in feed.routes:
            raise ValueError(f"route_id {self.route_id!r} is not in {self.gtfs}")

    def secret(self) -> bytes:
        """The card secret from its file (whitespace around it ignored); never logged."""
        try:
            secret = self.card_secret_file.read_bytes().strip()
        except OSError as exc:
            raise ValueError(f"card_secret_file {self.card_secret_file}: {exc.strerror}") from None
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"card_secret_file must hold at least {MIN_SECRET_BYTES} bytes")
        return secret

    def token(self) -> str | None:
        path = self.tablet.token_file
        if path is None:
            return None
        try:
            return path.read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise ValueError(f"tablet.token_file {path}: {exc.strerror}") from None
