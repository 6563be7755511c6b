"""The device registry: which LoRaWAN devices belong to the city and how to read them.

The provisioning step writes it (YAML, mode 0600, outside git): per device its DevEUI, its
machimori identity (id, kind, codec), and either OTAA (JoinEUI, AppKey) or ABP keys (DevAddr,
NwkSKey, AppSKey). In ChirpStack mode the keys stay in ChirpStack and are left out.

Keys are hex in the file and bytes here, and never part of a repr or an error message: the
config loader's errors name the key and what was expected, not the value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from edge.protocol.codecs import Codec, codec
from edge.protocol.topics import KINDS, check_device_id
from edge.runtime.config import ConfigError, build, load_yaml

HEX = re.compile(r"^[0-9A-Fa-f]+$")
DEVICE_KINDS = tuple(k for k in KINDS if k not in ("gateway", "alert"))


def parse_hex(value: str, digits: int, name: str) -> int:
    """An EUI, DevAddr or NetID written as ``digits`` hex digits (dashes and colons allowed)."""
    text = value.replace("-", "").replace(":", "")
    if len(text) != digits or not HEX.match(text):
        raise ValueError(f"{name} to be {digits} hex digits")
    return int(text, 16)


def parse_key(value: str, name: str) -> bytes:
    """An AES-128 key as 32 hex digits. The message never repeats the value."""
    if len(value) != 32 or not HEX.match(value):
        raise ValueError(f"{name} to be an AES-128 key of 32 hex digits")
    return bytes.fromhex(value)


@dataclass
class OtaaKeys:
    """Over-the-air activation: the device joins with its AppKey (the NwkKey of 1.1)."""

    app_key: str = field(repr=False)
    join_eui: str = "0000000000000000"  # the AppEUI of LoRaWAN 1.0.2

    def __post_init__(self) -> None:
        self.app_key_bytes = parse_key(self.app_key, "app_key")
        self.join_eui_int = parse_hex(self.join_eui, 16, "join_eui")


@dataclass
class AbpKeys:
    """Activation by personalisation: session keys and DevAddr written into the device."""

    dev_addr: str
    nwk_s_key: str = field(repr=False)
    app_s_key: str = field(repr=False)

    def __post_init__(self) -> None:
        self.dev_addr_int = parse_hex(self.dev_addr, 8, "dev_addr")
        self.nwk_s_key_bytes = parse_key(self.nwk_s_key, "nwk_s_key")
        self.app_s_key_bytes = parse_key(self.app_s_key, "app_s_key")


@dataclass
class Device:
    """One registry entry; ``id`` is the machimori device id in topics and envelopes."""

    id: str
    kind: str
    codec: str
    dev_eui: str
    otaa: OtaaKeys | None = None
    abp: AbpKeys | None = None

    def __post_init__(self) -> None:
        check_device_id(self.id)
        if self.kind not in DEVICE_KINDS:
            raise ValueError(f"kind to be one of {', '.join(DEVICE_KINDS)}")
        try:
            self.payload_codec: Codec = codec(self.codec)
        except KeyError as exc:
            raise ValueError(f"codec to be a known one ({exc.args[0]})") from None
        self.dev_eui_int = parse_hex(self.dev_eui, 16, "dev_eui")
        if self.otaa is not None and self.abp is not None:
            raise ValueError("either otaa or abp, not both")

    @property
    def eui(self) -> str:
        """The DevEUI as 16 lower-case hex digits, the form logs and the state database use."""
        return f"{self.dev_eui_int:016x}"


@dataclass
class RegistryFile:
    devices: list[Device] = field(default_factory=list)


class Registry:
    """Devices by DevEUI and by id; duplicates are a provisioning error."""

    def __init__(self, devices: list[Device]) -> None:
        self.devices = devices
        self.by_eui = {d.dev_eui_int: d for d in devices}
        self.by_id = {d.id: d for d in devices}

    @classmethod
    def load(cls, path: str | Path, *, need_keys: bool = True) -> Registry:
        """Read the registry file. ``need_keys``: every device must be OTAA or ABP (UDP mode)."""
        data = load_yaml(path)
        try:
            _build_key_sections(data, path)
            parsed = build(RegistryFile, data, file=path)
        except ConfigError as exc:
            if ".otaa" in exc.key or ".abp" in exc.key:  # never echo what may be a key
                raise ConfigError(exc.file, exc.key, exc.expected) from None
            raise
        seen: dict[str, set[object]] = {"id": set(), "dev_eui": set()}
        for i, device in enumerate(parsed.devices):
            where = f"devices[{i}]"
            for name, value in (("id", device.id), ("dev_eui", device.dev_eui_int)):
                if value in seen[name]:
                    raise ConfigError(path, f"{where}.{name}", "a value no other device has")
                seen[name].add(value)
            if need_keys and device.otaa is None and device.abp is None:
                raise ConfigError(path, where, "an otaa or abp section with the device's keys")
        return cls(parsed.devices)


def _build_key_sections(data: dict[str, object], path: str | Path) -> None:
    """Build the otaa/abp sections on their own first: inside ``Device`` they are optional, and
    the loader would report a mistake in them as "expected a mapping or nothing"."""
    devices = data.get("devices")
    for i, raw in enumerate(devices if isinstance(devices, list) else []):
        for name, cls in (("otaa", OtaaKeys), ("abp", AbpKeys)):
            if isinstance(raw, dict) and isinstance(raw.get(name), dict):
                build(cls, raw[name], file=path, key=f"devices[{i}].{name}")
