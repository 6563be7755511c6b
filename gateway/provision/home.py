"""The provisioning home: settings, catalogue, vault and CA together, and the operations that
change them (add, import, revoke, rotate), each keeping the three consistent.

Layout of a home (default /etc/machimori/provision, or $MACHIMORI_PROVISION_HOME)::

    provision.yaml    settings (settings.py)
    catalogue.yaml    every device, no secrets (catalogue.py)
    secrets/          0700: per device and generation, files of mode 0600 (vault.py)
    secrets/ca/       the city CA's key and certificate, the revoked serials (pki.py)
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.protocol import utc_timestamp
from edge.runtime.config import ConfigError
from gateway.provision.catalogue import (
    Catalogue,
    CatalogueError,
    Entry,
    entry_from,
    normalise_eui,
)
from gateway.provision.pki import CityCA
from gateway.provision.settings import Settings
from gateway.provision.vault import Secrets, Vault

LEVEL_COLUMNS = ("standby", "caution", "evacuation", "danger")
LORA_COLUMNS = ("dev_eui", "gateway", "join_eui", "modem", "port")
NUMBER_COLUMNS = ("lat", "lon", "observe_from_m", "mount_height_m", *LEVEL_COLUMNS)


@dataclass
class Rejected:
    """One CSV row that could not be imported, and why (the message names no secret)."""

    line: int
    reason: str


class Home:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.settings_path = root / "provision.yaml"
        self.settings = Settings.load(self.settings_path)
        self.catalogue = Catalogue.load(root / "catalogue.yaml")
        self.vault = Vault(root / "secrets")
        self._ca: CityCA | None = None

    @property
    def ca(self) -> CityCA:
        """The city CA, created the first time a certificate is needed."""
        if self._ca is None:
            self._ca = CityCA(self.vault.root / "ca", self.settings.city)
        return self._ca

    # -- what a device or the broker is given ----------------------------------------------------
    def device_secrets(self, entry: Entry) -> Secrets:
        """The newest generation: what a card gets, pending rotation or not."""
        return self.vault.read(entry.id, entry.generation)

    def broker_secrets(self, entry: Entry) -> Secrets:
        """What the broker and the gateway accept: during a rotation still the old generation,
        so the device keeps working until it has the new one and the rotation is confirmed."""
        return self.vault.read(
            entry.id, entry.generation - 1 if entry.rotating else entry.generation
        )

    # -- changes -----------------------------------------------------------------------------------
    def new_entry(self, fields: dict[str, Any], where: str) -> Entry:
        """An entry from user input (command options, a CSV row), completed from the settings:
        LoRaWAN defaults, a DevEUI from the city's range when the modem has no label."""
        data = {k: v for k, v in fields.items() if v not in (None, "")}
        levels = {k: data.pop(k) for k in LEVEL_COLUMNS if k in data}
        if levels:
            data["levels"] = levels
        lora = {k: data.pop(k) for k in LORA_COLUMNS if k in data}
        if data.get("link") == "lorawan" or lora:
            data["link"] = "lorawan"
            defaults = self.settings.lorawan
            lora.setdefault("gateway", defaults.gateway)
            lora.setdefault("join_eui", defaults.join_eui)
            lora.setdefault("modem", defaults.modem)
            lora.setdefault("port", defaults.port)
            lora.setdefault("dev_eui", self._next_dev_eui())
            data["lorawan"] = lora
        data["added"] = utc_timestamp(datetime.now(UTC))
        for key in ("status", "revoked", "generation", "rotating"):
            data.pop(key, None)  # the catalogue's own bookkeeping, never from input
        return entry_from(data, where)

    def _next_dev_eui(self) -> str:
        prefix = self.settings.lorawan.dev_eui_prefix
        used = [
            int(e.lorawan.dev_eui[len(prefix) :], 16)
            for e in self.catalogue
            if e.lorawan is not None and e.lorawan.dev_eui.startswith(prefix)
        ]
        counter = max(used, default=0) + 1
        width = 16 - len(prefix)
        if counter >= 16**width:
            raise CatalogueError(f"the DevEUI range {prefix}... is full")
        return normalise_eui(f"{prefix}{counter:0{width}X}")

    def add(self, entry: Entry) -> None:
        """Catalogue the entry and issue its first secrets (and certificate)."""
        self.catalogue.add(entry)
        self._issue(entry)

    def _issue(self, entry: Entry) -> None:
        self.vault.issue(entry, entry.generation)
        if self.settings.broker.client_certs and entry.mqtt_user:
            key, cert = self.ca.issue(entry.id)
            self.vault.store_cert(entry.id, entry.generation, key, cert)

    def import_csv(
        self,
        path: Path,
        *,
        skip_existing: bool = False,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[list[Entry], list[Rejected]]:
        """Every row checked first; if one is wrong nothing is added and each wrong row is
        named, so the technician fixes the file and runs the same command again."""
        rows = _read_csv(path)
        entries: list[Entry] = []
        rejected: list[Rejected] = []
        seen: set[str] = set()
        for line, row in rows:
            try:
                if row.get("id") in seen:
                    raise CatalogueError(f"{row['id']} appears twice in the file")
                seen.add(row.get("id", ""))
                if skip_existing and row.get("id") in self.catalogue.entries:
                    continue
                entry = self.new_entry(row, f"{path}:{line}")
                self.catalogue.add(entry)  # checks ids and DevEUIs against those before it
                entries.append(entry)
            except (ConfigError, CatalogueError, ValueError) as exc:
                rejected.append(Rejected(line, str(exc)))
        if rejected:
            for entry in entries:
                del self.catalogue.entries[entry.id]
            return [], rejected
        with self.vault.bulk():
            for done, entry in enumerate(entries, 1):
                self._issue(entry)
                if progress is not None:
                    progress(done, len(entries))
        return entries, []

    def revoke(self, entry: Entry) -> None:
        """Mark it revoked, put its certificates on the CRL and delete its secrets. Its data in
        the store stays; the id is never given to another device."""
        if not entry.active:
            raise CatalogueError(f"{entry.id} is already revoked ({entry.revoked})")
        self._revoke_certs(entry, range(1, entry.generation + 1))
        self.vault.drop(entry.id)
        entry.status = "revoked"
        entry.revoked = utc_timestamp(datetime.now(UTC))
        entry.rotating = False

    def _revoke_certs(self, entry: Entry, generations: Iterable[int]) -> None:
        for generation in generations:
            if self.vault.has(entry.id, generation):
                cert = self.vault.read(entry.id, generation).client_cert
                if cert is not None:
                    self.ca.revoke(cert)

    def rotate(self, entry: Entry) -> None:
        """Issue the next generation of secrets; the broker keeps the old until ``confirm``."""
        if not entry.active:
            raise CatalogueError(f"{entry.id} is revoked; add a new device instead")
        if entry.rotating:
            raise CatalogueError(
                f"{entry.id} is already rotating: install its new files, then "
                f"`machimori provision rotate --confirm {entry.id}`"
            )
        entry.generation += 1
        entry.rotating = True
        self._issue(entry)

    def confirm(self, entry: Entry) -> None:
        """The device has its new secrets: the old ones are revoked and deleted."""
        if not entry.rotating:
            raise CatalogueError(f"{entry.id} has no rotation to confirm")
        old = entry.generation - 1
        self._revoke_certs(entry, [old])
        self.vault.drop(entry.id, old)
        entry.rotating = False


def _read_csv(path: Path) -> list[tuple[int, dict[str, Any]]]:
    """(line number, row) pairs; numbers converted, empty cells dropped. UTF-8 with or without
    a BOM, as spreadsheets save it."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogueError(f"{path}: cannot read it as UTF-8 CSV ({exc})") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or "id" not in reader.fieldnames or "kind" not in reader.fieldnames:
        raise CatalogueError(f"{path}: the first line must name the columns, with id and kind")
    rows = []
    for row in reader:
        line = reader.line_num
        clean: dict[str, Any] = {}
        for key, value in row.items():
            if key is None:
                raise CatalogueError(f"{path}:{line}: more cells than columns")
            value = (value or "").strip()
            if value == "":
                continue
            if key in NUMBER_COLUMNS:
                try:
                    clean[key] = float(value)
                except ValueError:
                    clean[key] = value  # the row's check names the column and the value
            else:
                clean[key] = value
        rows.append((line, clean))
    return rows
