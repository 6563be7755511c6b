"""``sync``: the files the city's processes read, generated from the catalogue and the vault.

- the broker's folder (``outputs.broker_dir``): ``passwd`` (Mosquitto's hashed format), ``acl``
  (least privilege, one block per user), and with client certificates ``ca.crt`` and ``crl.pem``;
  configs/mosquitto/mosquitto.conf includes them by path;
- the gateway's registry (``outputs.gateway_registry``, 0600): DevEUI, JoinEUI and AppKey of each
  active LoRaWAN device; the gateway re-reads it within seconds when it changes;
- the store's river sites (``outputs.sites_file``): names, positions and levels for the pages.

Then the broker is told to reload (``broker.reload_command``, SIGHUP): Mosquitto re-reads the
password file and the ACL, disconnects clients whose user is gone, and keeps every other one.
"""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from gateway.provision.catalogue import CODECS, FIELD_KINDS, Entry, write_atomic
from gateway.provision.home import Home
from gateway.provision.mosquitto import (
    Grant,
    acl_file,
    device_grant,
    gateway_grant,
    notifier_grant,
    password_file,
    service_grant,
    store_grant,
)

BROKER_GROUP = "mosquitto"  # Mosquitto re-reads its files as this user after dropping root
GATEWAY_USER = "machimori"  # the gateway's systemd unit runs as this user


@dataclass
class SyncReport:
    written: list[Path] = field(default_factory=list)
    users: int = 0
    lorawan: int = 0
    sites: int = 0
    reload: str = ""  # what the reload did, for the technician
    notes: list[str] = field(default_factory=list)  # what the technician should fix


def grants(home: Home) -> list[Grant]:
    """Every active MQTT identity's ACL block, from its kind."""
    out = []
    by_gateway: dict[str, list[tuple[str, str]]] = {}
    for entry in home.catalogue.active(*FIELD_KINDS):
        if entry.lorawan is not None:
            by_gateway.setdefault(entry.lorawan.gateway, []).append((entry.kind, entry.id))
    for entry in home.catalogue.active():
        if entry.kind in FIELD_KINDS and entry.mqtt_user:
            out.append(device_grant(entry.kind, entry.id, f"{entry.kind} at {entry.site or '?'}"))
        elif entry.kind == "gateway":
            out.append(gateway_grant(entry.id, by_gateway.get(entry.id, [])))
        elif entry.kind == "store":
            out.append(store_grant(entry.id))
        elif entry.kind == "service":
            out.append(service_grant(entry.id))
        elif entry.kind == "notifier":
            out.append(notifier_grant(entry.id))
    return out


def registry(home: Home, entries: list[Entry]) -> str:
    """The gateway's device registry (gateway/lorawan/registry.py's format)."""
    devices = []
    for entry in entries:
        assert entry.lorawan is not None
        keys = home.broker_secrets(entry)
        devices.append(
            {
                "id": entry.id,
                "kind": entry.kind,
                "codec": CODECS[entry.kind],
                "dev_eui": entry.lorawan.dev_eui,
                "otaa": {"join_eui": entry.lorawan.join_eui, "app_key": keys.app_key},
            }
        )
    return (
        "# The gateway's LoRaWAN registry, written by `machimori provision sync`. It holds\n"
        "# AppKeys: mode 0600, never in git, never edited by hand (the next sync replaces it).\n"
        + yaml.safe_dump({"devices": devices}, sort_keys=False)
    )


def sites(entries: list[Entry], cameras: list[Entry] | None = None) -> str:
    """The store's river sites and camera sites (configs/sites.yaml's format): the cameras'
    places for the public sightings page, which publishes only the grid square around them."""
    out: list[dict[str, Any]] = []
    for e in entries:
        assert e.levels is not None
        site: dict[str, Any] = {"device": e.id, "name": e.site or e.id, "river": e.river}
        site |= {k: v for k, v in (("name_en", e.site_en), ("river_en", e.river_en)) if v}
        site |= {"lat": e.lat, "lon": e.lon}
        site["levels_m"] = {k: getattr(e.levels, k) for k in vars(e.levels)}
        if e.observe_from_m is not None:
            site["observe_from_m"] = e.observe_from_m
        if e.mount_height_m is not None:
            site["sensor_height_m"] = e.mount_height_m  # FloodMonitoring's referenceLevel
        out.append(site)
    places = [
        {"device": c.id, "place": c.site or c.id}
        | ({"place_en": c.site_en} if c.site_en else {})
        | {"lat": c.lat, "lon": c.lon}
        for c in cameras or []
    ]
    document: dict[str, Any] = {"sites": out} | ({"cameras": places} if places else {})
    return (
        "# River and camera sites for the store's pages, written by `machimori provision sync`\n"
        "# from the catalogue; change the catalogue, not this file.\n"
        + yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    )


def sync(home: Home, *, reload: bool = True) -> SyncReport:
    report = SyncReport()
    out = home.settings.outputs
    users = [(e.id, home.broker_secrets(e).mqtt_password or "") for e in home.catalogue.active()]
    users = [(u, p) for u, p in users if p]
    broker = {
        "passwd": (password_file(users), 0o640),
        "acl": (acl_file(grants(home)), 0o644),
    }
    settings = home.settings.broker
    if settings.tls:
        broker["ca.crt"] = (home.ca.cert_pem.decode(), 0o644)
        broker["crl.pem"] = (home.ca.crl_pem().decode(), 0o644)
        if not settings.ca_file:
            broker |= _server_certificate(home, out.broker_dir)
    for name, (text, mode) in broker.items():
        path = out.broker_dir / name
        write_atomic(path, text, mode=mode)
        report.notes += _hand_over(path, group=BROKER_GROUP)
        report.written.append(path)
    report.users = len(users)

    lorawan = [e for e in home.catalogue.active(*FIELD_KINDS) if e.lorawan is not None]
    gateways = sorted({e.lorawan.gateway for e in lorawan if e.lorawan is not None})
    per_gateway = "{gateway}" in str(out.gateway_registry)
    targets = (
        {Path(str(out.gateway_registry).format(gateway=g)): g for g in gateways}
        if per_gateway
        else {out.gateway_registry: None}
    )
    for path, gateway in targets.items():
        mine = [
            e for e in lorawan if gateway is None or (e.lorawan and e.lorawan.gateway == gateway)
        ]
        write_atomic(path, registry(home, mine), mode=0o600)
        report.notes += _hand_over(path, user=GATEWAY_USER)
        report.written.append(path)
    report.lorawan = len(lorawan)

    rivers = [e for e in home.catalogue.active("river") if e.lat is not None and e.lon is not None]
    cameras = [
        e for e in home.catalogue.active("camera") if e.lat is not None and e.lon is not None
    ]
    write_atomic(out.sites_file, sites(rivers, cameras), mode=0o644)
    report.written.append(out.sites_file)
    report.sites = len(rivers)
    report.reload = reload_broker(home.settings.broker.reload_command) if reload else "skipped"
    return report


def _server_certificate(home: Home, folder: Path) -> dict[str, tuple[str, int]]:
    """The broker's certificate from the city CA, for the host devices connect to; issued
    again only when there is none from this CA for that host."""
    host = home.settings.broker.host
    cert = folder / "broker.crt"
    if cert.exists() and (folder / "broker.key").exists():
        if home.ca.signed_for(cert.read_bytes(), host):
            return {}
    key_pem, cert_pem = home.ca.issue_server(host)
    return {"broker.key": (key_pem.decode(), 0o640), "broker.crt": (cert_pem.decode(), 0o644)}


def reload_broker(command: str) -> str:
    """Run the reload command; its failure is reported, not raised: the files are written."""
    if not command.strip():
        return "no reload_command set: reload the broker yourself (SIGHUP)"
    try:
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"FAILED: {command}: {exc}"
    if done.returncode != 0:
        return f"FAILED: {command} exited {done.returncode}: {done.stderr.strip()[:200]}"
    return f"ok: {command}"


def _hand_over(path: Path, *, user: str | None = None, group: str | None = None) -> list[str]:
    """Give the file to the service that reads it, where this process may (it runs as root on
    the city host); elsewhere (a test, a dry run) the file stays ours. Returns what to fix."""
    if os.geteuid() != 0:
        return []
    try:
        uid = pwd.getpwnam(user).pw_uid if user else -1
        gid = grp.getgrnam(group).gr_gid if group else -1
    except KeyError:
        return [f"{path} stays root's: no {'user' if user else 'group'} {user or group} here"]
    os.chown(path, uid, gid)
    return []
