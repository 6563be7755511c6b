"""The catalogue: the city's record of every device and city-side MQTT identity, without secrets.

One YAML file (``catalogue.yaml`` in the provisioning home) that the city backs up and may keep
in version control: it holds ids, kinds, sites, coordinates, a gauge's levels, a tracker's school,
a bus's route, a LoRaWAN device's DevEUI (printed on its modem) — and never a password or key.
Revoked devices stay in it (``status: revoked``) so their history in the store keeps a name.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from edge.protocol.topics import check_device_id
from edge.runtime.config import ConfigError, build, load_yaml
from gateway.api.sites import Thresholds

FIELD_KINDS = ("river", "camera", "bus", "tracker")  # devices in the field, with an agent
CITY_KINDS = ("gateway", "store", "service", "notifier")  # city-side MQTT identities
Kind = Literal["river", "camera", "bus", "tracker", "gateway", "store", "service", "notifier"]
CODECS = {"river": "river-v1"}  # the LoRaWAN payload codec of each kind that has one
HEX16 = re.compile(r"^[0-9A-F]{16}$")
FAST_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
FAST_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def normalise_eui(value: str, name: str = "dev_eui") -> str:
    """An EUI-64 as 16 upper-case hex digits; dashes, colons and spaces from a label are dropped."""
    text = re.sub(r"[-:\s]", "", value).upper()
    if not HEX16.match(text):
        raise ValueError(f"{name} to be 16 hex digits (an EUI-64), got {value!r}")
    return text


@dataclass
class LoraSettings:
    """A device on LoRaWAN: its modem and the keys the gateway's registry holds too (the AppKey
    is a secret, kept in the vault)."""

    dev_eui: str  # from the modem's label, or allocated from the city's range
    gateway: str  # the gateway that speaks for it on MQTT
    join_eui: str = "0000000000000000"
    modem: Literal["rak3172", "lora_e5"] = "rak3172"
    port: str = "/dev/ttyUSB0"

    def __post_init__(self) -> None:
        self.dev_eui = normalise_eui(self.dev_eui)
        self.join_eui = normalise_eui(self.join_eui, "join_eui")
        check_device_id(self.gateway)


@dataclass
class Entry:
    """One device or city identity. Which optional fields are needed depends on ``kind``."""

    id: str
    kind: Kind
    site: str = ""  # the place's name as residents know it (長井橋)
    site_en: str = ""
    lat: float | None = None
    lon: float | None = None
    link: Literal["mqtt", "lorawan"] = "mqtt"
    lorawan: LoraSettings | None = None
    river: str = ""  # river gauges: the river's name, its levels, the surveyed sensor height
    river_en: str = ""
    levels: Thresholds | None = None  # the store's site levels: the same four, rising
    observe_from_m: float | None = None
    mount_height_m: float | None = None
    school: str = ""  # trackers: the school the child attends (no child's name, ever)
    route: str = ""  # buses: the GTFS route id the bus usually runs
    hostname: str = ""  # the Raspberry Pi's hostname; the id when empty
    status: Literal["active", "revoked"] = "active"
    added: str = ""
    revoked: str = ""
    generation: int = 1  # secrets' generation, raised by each rotation
    rotating: bool = False  # new secrets issued, old ones still accepted until confirmed
    notes: str = ""

    def __post_init__(self) -> None:
        check_device_id(self.id)
        if self.lat is not None and not -90 <= self.lat <= 90:
            raise ValueError("lat to be -90..90")
        if self.lon is not None and not -180 <= self.lon <= 180:
            raise ValueError("lon to be -180..180")
        if self.kind in CITY_KINDS and self.link != "mqtt":
            raise ValueError(f"a {self.kind} connects over MQTT (link: mqtt)")
        if (self.link == "lorawan") != (self.lorawan is not None):
            raise ValueError("a lorawan section exactly when link is lorawan")
        if self.link == "lorawan" and self.kind not in CODECS:
            raise ValueError(f"link lorawan for a kind with a payload codec ({', '.join(CODECS)})")
        if self.kind == "river" and (self.levels is None or self.mount_height_m is None):
            raise ValueError("a river gauge to have levels and mount_height_m (surveyed)")
        if self.kind == "tracker" and not self.school:
            raise ValueError("a tracker to have its school")
        if self.kind == "bus" and not self.route:
            raise ValueError("a bus to have its route")

    @property
    def active(self) -> bool:
        return self.status == "active"

    @property
    def host(self) -> str:
        return self.hostname or self.id

    @property
    def mqtt_user(self) -> bool:
        """Whether it logs in to the broker itself (a LoRaWAN device speaks through a gateway)."""
        return self.link == "mqtt"

    def record(self) -> dict[str, Any]:
        """The entry as the catalogue file stores it: empty and default fields left out."""
        defaults = Entry.__dataclass_fields__
        out: dict[str, Any] = {}
        for name, value in asdict(self).items():
            default = defaults[name].default
            if value in (None, "") or (value == default and name not in ("id", "kind")):
                continue
            out[name] = value
        return out


@dataclass
class CatalogueFile:
    devices: list[Entry] = field(default_factory=list)


class CatalogueError(ValueError):
    """An operation the catalogue refuses; the message says what and why."""


class Catalogue:
    """The entries by id, loaded from and saved to one file (replaced atomically)."""

    def __init__(self, path: Path, entries: list[Entry] | None = None) -> None:
        self.path = path
        self.entries: dict[str, Entry] = {e.id: e for e in entries or []}

    @classmethod
    def load(cls, path: Path) -> Catalogue:
        if not path.exists():
            return cls(path)
        try:  # libyaml's loader where PyYAML has it: a catalogue of 1,200 loads in 0.1 s
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=FAST_LOADER) or {}
        except yaml.YAMLError:
            data = load_yaml(path)  # raises the loader's ConfigError with the line
        parsed = build(CatalogueFile, data, file=path)
        seen: set[str] = set()
        for i, entry in enumerate(parsed.devices):
            if entry.id in seen:
                raise ConfigError(path, f"devices[{i}].id", "an id no other entry has", entry.id)
            seen.add(entry.id)
        return cls(path, parsed.devices)

    def save(self) -> None:
        text = (
            "# The city's device catalogue, written by `machimori provision`. No secrets here:\n"
            "# back it up, keep it in version control. See docs/provisioning.md.\n"
            + yaml.dump(
                {"devices": [e.record() for e in self]},
                Dumper=FAST_DUMPER,
                sort_keys=False,
                allow_unicode=True,
            )
        )
        write_atomic(self.path, text, mode=0o644)

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self.entries.values(), key=lambda e: e.id))

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, device: str) -> Entry:
        try:
            return self.entries[device]
        except KeyError:
            raise CatalogueError(f"no device {device!r} in the catalogue {self.path}") from None

    def add(self, entry: Entry) -> None:
        if entry.id in self.entries:
            raise CatalogueError(f"{entry.id} is already in the catalogue; ids are never reused")
        if entry.lorawan is not None:
            eui = entry.lorawan.dev_eui
            owner = next((e.id for e in self if e.lorawan and e.lorawan.dev_eui == eui), None)
            if owner is not None:
                raise CatalogueError(f"{entry.id}: DevEUI {eui} is {owner}'s already")
        self.entries[entry.id] = entry

    def active(self, *kinds: str) -> list[Entry]:
        return [e for e in self if e.active and (not kinds or e.kind in kinds)]


def entry_from(data: dict[str, Any], where: str) -> Entry:
    """An entry from a mapping (a CSV row, the add command's options); errors name ``where``."""
    return build(Entry, data, file=where)


def write_atomic(path: Path, text: str, *, mode: int, durable: bool = True) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, so a reader (the
    broker reloading, the gateway polling) never sees half a file; ``mode`` is set before the
    rename, so a secret is never readable by others even for a moment. ``durable``: on disk
    before the rename (a bulk writer may instead sync once at the end)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            if durable:
                os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
