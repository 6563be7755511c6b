"""Config files: the shipped examples load, and each mistake names the file and the key."""

from __future__ import annotations

import pytest
from store_helpers import ROOT, SITES

from edge.runtime.config import ConfigError
from gateway.api.sites import LEVELS, Thresholds, load_sites
from gateway.store.config import load_config


def test_example_sites_have_four_rising_levels():
    sites = load_sites(SITES)
    assert [s.device for s in sites] == ["river-01", "river-02", "river-03", "river-04"]
    for site in sites:
        levels = [getattr(site.levels_m, name) for name in LEVELS]
        assert levels == sorted(levels)
        assert 38 < site.lat < 38.2 and 139.9 < site.lon < 140.2  # around Nagai
        assert site.name and site.river and site.name_en and site.river_en


@pytest.mark.parametrize(
    "level, state",
    [
        (0.4, "normal"),
        (1.5, "standby"),
        (1.99, "standby"),
        (2.0, "caution"),
        (2.6, "evacuation"),
        (3.0, "danger"),
        (9.9, "danger"),
    ],
)
def test_a_level_at_or_above_a_threshold_is_in_that_state(level, state):
    assert Thresholds(1.5, 2.0, 2.6, 3.0).state(level) == state


def test_example_store_config_loads():
    config = load_config(ROOT / "configs" / "store.yaml")
    assert config.retention.seconds("tracker") == 2 * 86400  # personal data: short
    assert config.retention.seconds("river") == 3650 * 86400
    assert config.http.public_kinds == ["river"]


@pytest.mark.parametrize(
    "text, key, words",
    [
        (
            "sites:\n  - {device: river-01, name: a, river: b, lat: 38, lon: 140,"
            " levels_m: {standby: 2, caution: 1.5, evacuation: 2.6, danger: 3}}",
            "sites[0].levels_m",
            "levels must rise",
        ),
        (
            "sites:\n  - {device: River 1, name: a, river: b, lat: 38, lon: 140,"
            " levels_m: {standby: 1, caution: 2, evacuation: 3, danger: 4}}",
            "sites[0]",
            "device id",
        ),
        (
            "sites:\n  - {device: river-01, name: a, river: b, lat: 38, lon: 140}",
            "sites[0].levels_m",
            "required",
        ),
        ("cameras:\n  - {device: cam-1, place: a, lat: 98, lon: 140}", "cameras[0]", "lat/lon"),
        (
            "cameras:\n  - {device: cam-1, place: a, lat: 38, lon: 140}\n"
            "  - {device: cam-1, place: b, lat: 38, lon: 140}",
            "cameras[1].device",
            "listed once",
        ),
    ],
)
def test_a_wrong_sites_file_names_the_key(tmp_path, text, key, words):
    path = tmp_path / "sites.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_sites(path)
    assert caught.value.key == key and words in str(caught.value)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    "text, key, words",
    [
        ("ingest: {workers: 2}", "ingest", "shared_group"),
        ("retention: {days: {boats: 3}}", "retention", "unknown kind"),
        ("http: {timezone: Mars/Olympus}", "http", "unknown zone"),
        ("database: mysql://x", "", "postgresql"),
        ("http: {port: eighty}", "http.port", "an integer"),
        ("http: {cors_origins: ['evil.example']}", "http", "scheme://host"),
        ("http: {map_tiles: 'javascript:alert(1)'}", "http", "map_tiles"),
        ("http: {licence_url: 'cc-by'}", "http", "licence"),
        ("http: {sightings_grid_m: 10}", "http", "sightings_grid_m"),
        ("ngsi: {service: nagai-city}", "ngsi", "Fiware-Service"),
        ("ngsi: {service_path: river}", "ngsi", "service_path"),
        ("ngsi: {notify_attempts: 0}", "ngsi", "notify_attempts"),
        ("ngsi: {mqtt_topic_prefix: machimori/#}", "ngsi", "mqtt_topic_prefix"),
        ("ngsi: {notifier_mqtt: {port: x}}", "ngsi.notifier_mqtt.port", "an integer"),
    ],
)
def test_a_wrong_store_config_names_the_key(tmp_path, text, key, words):
    path = tmp_path / "store.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.key == key and words in str(caught.value)
