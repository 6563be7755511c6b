"""``render``: a device's own files, as they lie on the device under ``/``.

``etc/machimori/<id>.yaml`` is the agent's config (what ``machimori agent check`` validates),
pointing at the secrets beside it: ``<id>.mqtt`` (its MQTT password), ``<id>.appkey`` (LoRaWAN),
``<id>.crt``/``<id>.key`` (client certificates) and ``city-ca.crt`` (the CA that signed the
broker's certificate, and theirs). Secrets are mode 0600.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from edge.protocol.river import WARNING_KEYS
from gateway.provision.catalogue import CITY_KINDS, CODECS, CatalogueError, Entry, write_atomic
from gateway.provision.home import Home

ETC = "etc/machimori"  # /etc/machimori on the device
SECRET = 0o600
PUBLIC = 0o644


@dataclass(frozen=True)
class DeviceFile:
    path: str  # relative to the device's /
    data: bytes
    mode: int


def agent_config(home: Home, entry: Entry) -> dict[str, Any]:
    """The agent's config for ``entry``: device, link, broker or modem, outbox, agent section."""
    broker = home.settings.broker
    config: dict[str, Any] = {
        "device": {"id": entry.id, "kind": entry.kind},
        "agent": entry.kind,
        "link": entry.link,
    }
    if entry.lorawan is not None:
        lora = entry.lorawan
        config["lorawan"] = {
            "modem": {
                "model": lora.modem,
                "port": lora.port,
                "dev_eui": lora.dev_eui,
                "join_eui": lora.join_eui,
                "app_key_file": f"/{ETC}/{entry.id}.appkey",
            },
            "codec": CODECS[entry.kind],
        }
    else:
        mqtt: dict[str, Any] = {
            "host": broker.host,
            "port": broker.port,
            "username": entry.id,
            "password_file": f"/{ETC}/{entry.id}.mqtt",
        }
        if broker.tls:
            tls = {"ca_file": broker.ca_file or f"/{ETC}/city-ca.crt"}
            if broker.client_certs:
                tls |= {"cert_file": f"/{ETC}/{entry.id}.crt", "key_file": f"/{ETC}/{entry.id}.key"}
            mqtt["tls"] = tls
        config["mqtt"] = mqtt
    config["outbox"] = {"path": "/var/lib/machimori/outbox.db"}
    config["log_level"] = "warning"
    config[entry.kind] = _agent_section(entry)
    return config


def _agent_section(entry: Entry) -> dict[str, Any]:
    if entry.kind == "river":
        assert entry.levels is not None
        section: dict[str, Any] = {
            "sensor": {"model": "a02yyuw", "port": "/dev/ttyAMA0"},
            "mount_height_m": entry.mount_height_m,
            "levels": {k: getattr(entry.levels, k) for k in WARNING_KEYS},
        }
        if entry.observe_from_m is not None:
            section["reporting"] = {"observe_from_m": entry.observe_from_m}
        return section
    if entry.kind == "camera":
        return {
            "source": "0",
            "trigger": "pir_and_motion",
            "pir": {"pin": "GPIO17"},
            "model": {
                "path": "/opt/machimori/models/wildlife-v1.tflite",
                "labels": "/opt/machimori/models/wildlife-v1.labels",
            },
        }
    if entry.kind == "tracker":
        # The device needs nothing about its child: the school is the tracker service's business
        # (its registry links device -> child -> school), so a lost tracker tells nobody where
        # the child goes to school. The hardware defaults are in edge/agents/tracker/config.py.
        return {}
    return {  # bus: docs/bus.md; the feed and the card secret are copied on by the city
        "route_id": entry.route,
        "gtfs": "/var/lib/machimori/gtfs/city.zip",
        "card_secret_file": f"/{ETC}/card-secret",
    }


def config_name(entry: Entry) -> str:
    """The config's name in /etc/machimori: what the kind's systemd unit reads."""
    return "camera.yaml" if entry.kind == "camera" else f"{entry.id}.yaml"


def device_files(home: Home, entry: Entry) -> list[DeviceFile]:
    """Every file the device needs in /etc/machimori, with its mode. A city identity (gateway,
    store, service) gets only its secrets: its config is the city host's own."""
    if not entry.active:
        raise CatalogueError(f"{entry.id} is revoked: it gets no files")
    keys = home.device_secrets(entry)
    files = [] if entry.kind in CITY_KINDS else [_config_file(home, entry)]
    if keys.mqtt_password is not None:
        files.append(DeviceFile(f"{ETC}/{entry.id}.mqtt", keys.mqtt_password.encode(), SECRET))
    if keys.app_key is not None:
        files.append(DeviceFile(f"{ETC}/{entry.id}.appkey", keys.app_key.encode(), SECRET))
    if keys.client_cert is not None and keys.client_key is not None:
        files += [
            DeviceFile(f"{ETC}/{entry.id}.crt", keys.client_cert, PUBLIC),
            DeviceFile(f"{ETC}/{entry.id}.key", keys.client_key, SECRET),
        ]
    broker = home.settings.broker
    if entry.mqtt_user and broker.tls and (broker.client_certs or not broker.ca_file):
        files.append(DeviceFile(f"{ETC}/city-ca.crt", home.ca.cert_pem, PUBLIC))
    return files


def _config_file(home: Home, entry: Entry) -> DeviceFile:
    """The agent's config with a header saying where it came from and how to check it."""
    config = yaml.safe_dump(agent_config(home, entry), sort_keys=False, allow_unicode=True)
    header = (
        f"# {entry.id}: written by `machimori provision render` (secrets generation "
        f"{entry.generation}).\n# Check it with: machimori agent check --config "
        f"/{ETC}/{config_name(entry)}\n"
    )
    return DeviceFile(f"{ETC}/{config_name(entry)}", (header + config).encode(), PUBLIC)


def write_files(files: list[DeviceFile], root: Path) -> list[Path]:
    """Lay ``files`` out under ``root``; secret files are 0600 from their first byte."""
    written = []
    for f in files:
        path = root / f.path
        write_atomic(path, f.data.decode("utf-8"), mode=f.mode)
        written.append(path)
    return written
