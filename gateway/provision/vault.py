"""Secrets kept apart from the catalogue: a folder of mode 0700 holding files of mode 0600.

Layout: ``secrets/<device>/<generation>/{mqtt.password,app_key,client.key,client.crt}``. A
rotation adds the next generation beside the current one; confirming it deletes the old. A
revoked device's folder is deleted, so its secrets can never be written onto a card again.

The vault refuses to work in a folder others can read (as ssh refuses a loose key), and never
puts a secret in a repr, an exception or a log line.
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from gateway.provision.catalogue import Entry, write_atomic

PASSWORD_BYTES = 24  # 192 random bits, URL-safe base64: 32 characters


class VaultError(PermissionError):
    """The secrets folder is unsafe or a secret is missing; the message names the path."""


@dataclass(frozen=True)
class Secrets:
    """One generation of a device's secrets (None where its kind or link has none)."""

    generation: int
    mqtt_password: str | None = field(default=None, repr=False)
    app_key: str | None = field(default=None, repr=False)  # 32 hex digits
    client_key: bytes | None = field(default=None, repr=False)  # PEM
    client_cert: bytes | None = None  # PEM; public, kept here so a card gets the pair


FILES = {
    "mqtt_password": "mqtt.password",
    "app_key": "app_key",
    "client_key": "client.key",
    "client_cert": "client.crt",
}


class Vault:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.durable = True  # each secret on disk before the next; a bulk import syncs once
        if root.exists():
            mode = stat.S_IMODE(root.stat().st_mode)
            if mode & 0o077:
                raise VaultError(
                    f"{root} is mode {mode:04o}: secrets need a folder only its owner can open "
                    f"(chmod 700 {root})"
                )
        else:
            root.mkdir(parents=True, mode=0o700)
            root.chmod(0o700)  # whatever the umask said

    def _dir(self, device: str, generation: int) -> Path:
        return self.root / device / str(generation)

    def issue(self, entry: Entry, generation: int) -> Secrets:
        """New random secrets for ``entry``: an MQTT password if it logs in to the broker, an
        AppKey if it joins over LoRaWAN. Client certificates are added by ``store_cert``."""
        issued = Secrets(
            generation,
            mqtt_password=secrets.token_urlsafe(PASSWORD_BYTES) if entry.mqtt_user else None,
            app_key=secrets.token_hex(16).upper() if entry.link == "lorawan" else None,
        )
        self._write(entry.id, issued)
        return issued

    def store_cert(self, device: str, generation: int, key_pem: bytes, cert_pem: bytes) -> None:
        folder = self._folder(device, generation)
        for name, pem in (("client_key", key_pem), ("client_cert", cert_pem)):
            write_atomic(
                folder / FILES[name], pem.decode("ascii"), mode=0o600, durable=self.durable
            )

    def _folder(self, device: str, generation: int) -> Path:
        folder = self._dir(device, generation)
        for part in (folder.parent, folder):
            part.mkdir(exist_ok=True, mode=0o700)
        return folder

    def _write(self, device: str, issued: Secrets) -> None:
        folder = self._folder(device, issued.generation)
        for name, filename in FILES.items():
            value = getattr(issued, name)
            if value is not None:
                text = value.decode("ascii") if isinstance(value, bytes) else value + "\n"
                write_atomic(folder / filename, text, mode=0o600, durable=self.durable)

    def read(self, device: str, generation: int) -> Secrets:
        folder = self._dir(device, generation)
        if not folder.is_dir():
            raise VaultError(f"no secrets for {device} (generation {generation}) in {self.root}")
        values: dict[str, object] = {}
        for name, filename in FILES.items():
            path = folder / filename
            if path.exists():
                mode = stat.S_IMODE(path.stat().st_mode)
                if mode & 0o077:
                    raise VaultError(f"{path} is mode {mode:04o}; expected 0600")
                raw = path.read_bytes()
                values[name] = raw if name.startswith("client_") else raw.decode().strip()
        return Secrets(generation, **values)  # type: ignore[arg-type]

    def drop(self, device: str, generation: int | None = None) -> None:
        """Delete one generation, or (None) every secret of the device."""
        target = self.root / device if generation is None else self._dir(device, generation)
        shutil.rmtree(target, ignore_errors=True)

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Many devices at once: files are written without a sync each, and the whole
        filesystem is synced once at the end (1,200 fsyncs cost seconds on an SD card or SSD)."""
        self.durable = False
        try:
            yield
        finally:
            self.durable = True
            os.sync()

    def has(self, device: str, generation: int) -> bool:
        return self._dir(device, generation).is_dir()
