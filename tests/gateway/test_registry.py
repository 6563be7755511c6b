"""The device registry file: what provisioning writes, and the mistakes it must name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from edge.runtime.config import ConfigError
from gateway.lorawan.config import GatewayConfig
from gateway.lorawan.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
KEY = "5a3c9e1f77b04d2a8e6b1c0d9f2e4a71"


def write(tmp_path, devices):
    path = tmp_path / "devices.yaml"
    path.write_text(yaml.safe_dump({"devices": devices}))
    return path


def device(**overrides):
    entry = {"id": "river-09", "kind": "river", "codec": "river-v1", "dev_eui": "AC1F09FFFE000009"}
    return entry | overrides


def test_example_files_load():
    config = GatewayConfig.load(ROOT / "configs/gateway.yaml")
    registry = Registry.load(config.registry)
    river = registry.by_id["river-01"]
    assert river.dev_eui_int == 0xAC1F09FFFE000001 and river.otaa.join_eui_int == 0
    assert registry.by_id["river-03"].abp.dev_addr_int == 3
    assert config.lorawan.settings.net_id == 0


def test_keys_stay_out_of_repr(tmp_path):
    path = write(
        tmp_path,
        [
            device(otaa={"app_key": KEY}),
            device(
                id="river-10",
                dev_eui="AC1F09FFFE00000A",
                abp={"dev_addr": "00000010", "nwk_s_key": KEY, "app_s_key": KEY},
            ),
        ],
    )
    registry = Registry.load(path)
    assert KEY not in repr(registry.devices)
    assert registry.by_id["river-09"].otaa.app_key_bytes == bytes.fromhex(KEY)


@pytest.mark.parametrize(
    ("devices", "key", "expected"),
    [
        ([device(otaa={"app_key": KEY[:-1]})], "devices[0].otaa", "app_key to be an AES-128"),
        ([device(otaa={"app_key": int("1" * 30)})], "devices[0].otaa.app_key", "a string"),
        (
            [device(abp={"dev_addr": "xyz", "nwk_s_key": KEY, "app_s_key": KEY})],
            "devices[0].abp",
            "dev_addr to be 8 hex digits",
        ),
        ([device(kind="lamp", otaa={"app_key": KEY})], "devices[0]", "kind to be one of"),
        ([device(codec="river-v9", otaa={"app_key": KEY})], "devices[0]", "codec to be a known"),
        ([device()], "devices[0]", "an otaa or abp section"),
        (
            [device(otaa={"app_key": KEY}), device(id="river-10", otaa={"app_key": KEY})],
            "devices[1].dev_eui",
            "a value no other device has",
        ),
    ],
)
def test_mistakes_name_the_key_and_never_echo_a_key(tmp_path, devices, key, expected):
    with pytest.raises(ConfigError) as err:
        Registry.load(write(tmp_path, devices))
    assert err.value.key == key
    assert expected in str(err.value)
    assert KEY[:16] not in str(err.value) and "1" * 30 not in str(err.value)


def test_chirpstack_mode_needs_no_keys(tmp_path):
    registry = Registry.load(write(tmp_path, [device()]), need_keys=False)
    assert registry.by_id["river-09"].otaa is None
