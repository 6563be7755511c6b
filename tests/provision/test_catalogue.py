"""The catalogue and the vault through the CLI: input checked with clear errors, bulk import
all or nothing, secrets apart in 0600 files and never printed unless asked."""

from __future__ import annotations

import csv
import stat

import yaml

from gateway.api.sites import load_sites_file
from gateway.provision.home import Home

RIVER = ("--kind", "river", "--levels", "1.5,2.0,2.6,3.0", "--mount-height", "5.2")


def mode(path):
    return stat.S_IMODE(path.stat().st_mode)


def write_trackers(path, count, schools=("nagai-chuo", "nagai-kita", "hiraino")):
    with path.open("w", newline="", encoding="utf-8") as f:
        rows = csv.writer(f)
        rows.writerow(["id", "kind", "school", "notes"])
        for i in range(1, count + 1):
            rows.writerow([f"tracker-{i:04d}", "tracker", schools[i % len(schools)], ""])


def test_import_1200_trackers_with_progress(city, tmp_path, capsys):
    city.init()
    trackers = tmp_path / "trackers.csv"
    write_trackers(trackers, 1200)
    capsys.readouterr()
    assert city.run("import", str(trackers)) == 0
    out, err = capsys.readouterr()
    assert "imported 1200 devices" in out
    assert "issuing secrets: 1200/1200" in err and "issuing secrets: 120/1200" in err
    home = Home(city.home)
    assert len(home.catalogue) == 1200
    assert home.catalogue.get("tracker-0007").school == "nagai-kita"
    passwords = {city.secret(f"tracker-{i:04d}", "mqtt.password") for i in range(1, 1201)}
    assert len(passwords) == 1200 and all(len(p) >= 32 for p in passwords)
    # no secret in the catalogue
    text = (city.home / "catalogue.yaml").read_text()
    assert not any(p in text for p in list(passwords)[:50])
    city.ok("sync")
    assert len((city.broker_dir / "passwd").read_text().splitlines()) == 1200


def test_a_bad_row_imports_nothing_and_names_every_bad_row(city, tmp_path, capsys):
    city.init()
    bad = tmp_path / "mixed.csv"
    bad.write_text(
        "id,kind,school,lat,route\n"
        "tracker-0001,tracker,nagai-chuo,38.1,\n"
        "tracker-0002,tracker,,,\n"  # line 3: no school
        "Bus 1,bus,,,r1\n"  # line 4: not an id
        "tracker-0001,tracker,nagai-chuo,,\n"  # line 5: twice
        "tracker-0004,tracker,nagai-chuo,north,\n",  # line 6: lat not a number
        encoding="utf-8",
    )
    capsys.readouterr()
    assert city.run("import", str(bad)) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3: " in err and "school" in err
    assert f"{bad}:4: " in err and "'Bus 1'" in err
    assert f"{bad}:5: tracker-0001 appears twice" in err
    assert f"{bad}:6: " in err and "lat" in err and "'north'" in err
    assert "4 rows are wrong; nothing was imported" in err
    assert len(Home(city.home).catalogue) == 0
    assert not [p for p in (city.home / "secrets").iterdir() if p.name != "ca"]


def test_add_checks_what_a_kind_needs(city, capsys):
    city.init()
    capsys.readouterr()
    assert city.run("add", "river-09", "--kind", "river") == 2
    assert "levels and mount_height_m" in capsys.readouterr().err
    assert city.run("add", "river-09", *RIVER, "--levels", "3,2,1,0") == 2
    assert "standby < caution" in capsys.readouterr().err
    assert city.run("add", "river-09", *RIVER, "--lat", "238") == 2
    assert "lat to be -90..90" in capsys.readouterr().err
    assert city.run("add", "camera-01", "--kind", "camera", "--link", "lorawan") == 2
    assert "payload codec" in capsys.readouterr().err
    assert city.run("add", "river-09", *RIVER, "--dev-eui", "AC1F09FFFE00000") == 2
    assert "16 hex digits" in capsys.readouterr().err


def test_lorawan_euis_from_labels_or_the_city_range(city):
    city.init()
    city.ok("add", "river-10", *RIVER, "--dev-eui", "ac-1f-09-ff-fe-00-00-10")
    city.ok("add", "river-11", *RIVER, "--link", "lorawan")
    city.ok("add", "river-12", *RIVER, "--link", "lorawan", "--gateway", "gw-02")
    home = Home(city.home)
    assert home.catalogue.get("river-10").lorawan.dev_eui == "AC1F09FFFE000010"
    assert home.catalogue.get("river-11").lorawan.dev_eui == "02CA7E0000000001"
    assert home.catalogue.get("river-12").lorawan.dev_eui == "02CA7E0000000002"
    assert home.catalogue.get("river-12").lorawan.gateway == "gw-02"
    keys = {city.secret(d, "app_key") for d in ("river-10", "river-11", "river-12")}
    assert len(keys) == 3 and all(len(k) == 32 for k in keys)
    assert city.run("add", "river-13", *RIVER, "--dev-eui", "AC1F09FFFE000010") == 2
    # one registry per gateway when the path names {gateway}
    city.configure(outputs={"gateway_registry": str(city.out / "devices-{gateway}.yaml")})
    city.ok("sync", "--no-reload")
    gw1 = yaml.safe_load((city.out / "devices-gw-01.yaml").read_text())["devices"]
    gw2 = yaml.safe_load((city.out / "devices-gw-02.yaml").read_text())["devices"]
    assert [d["id"] for d in gw1] == ["river-10", "river-11"]
    assert [d["id"] for d in gw2] == ["river-12"]
    assert mode(city.out / "devices-gw-01.yaml") == 0o600


def test_secrets_are_0600_in_a_0700_folder_and_shown_only_when_asked(city):
    city.init()
    city.ok("add", "river-01", *RIVER, "--site", "長井橋")
    password = city.secret("river-01", "mqtt.password")
    secrets = city.home / "secrets"
    assert mode(secrets) == 0o700
    for path in (secrets / "river-01").rglob("*"):
        assert mode(path) == (0o700 if path.is_dir() else 0o600), path
    shown = city.ok("show", "river-01")
    assert "長井橋" in shown and password not in shown and "mqtt_password" in shown
    assert password in city.ok("show", "river-01", "--secrets")
    assert password not in city.ok("list")
    secrets.chmod(0o755)
    assert city.run("list") == 2  # a vault others can open is refused, as ssh refuses a key


def test_sync_writes_the_stores_sites_from_the_catalogue(city):
    city.init()
    city.ok(
        "add", "river-01", *RIVER, "--site", "長井橋", "--site-en", "Nagai Bridge",
        "--river", "最上川", "--lat", "38.1052", "--lon", "140.0561", "--observe-from", "1.0",
    )  # fmt: skip
    city.ok("add", "river-02", *RIVER, "--lat", "38.1", "--lon", "140.0")
    city.ok("revoke", "river-02", "--no-sync")
    city.ok(
        "add", "camera-01", "--kind", "camera", "--site", "草岡地区 山際",
        "--lat", "38.1322", "--lon", "139.9987",
    )  # fmt: skip
    city.ok("sync", "--no-reload")
    written = yaml.safe_load((city.out / "sites.yaml").read_text())
    assert written["cameras"] == [
        {"device": "camera-01", "place": "草岡地区 山際", "lat": 38.1322, "lon": 139.9987}
    ]
    assert len(load_sites_file(city.out / "sites.yaml").cameras) == 1  # the store reads it
    sites = written["sites"]
    assert sites == [
        {
            "device": "river-01",
            "name": "長井橋",
            "river": "最上川",
            "name_en": "Nagai Bridge",
            "lat": 38.1052,
            "lon": 140.0561,
            "levels_m": {"standby": 1.5, "caution": 2.0, "evacuation": 2.6, "danger": 3.0},
            "observe_from_m": 1.0,
            "sensor_height_m": 5.2,
        }
    ]


PROVISION_COMMANDS = ("init", "add", "import", "list", "show", "revoke", "rotate", "render")


def test_every_provision_command_has_help_a_technician_can_follow(capsys):
    from machimori.cli import main as machimori

    for command in (*PROVISION_COMMANDS, "flash", "sync"):
        try:
            machimori(["provision", command, "--help"])
        except SystemExit as done:
            assert done.code == 0
        out = capsys.readouterr().out
        assert out.startswith(f"usage: machimori provision {command}"), out
    try:
        machimori(["provision", "--help"])
    except SystemExit:
        pass
    out = capsys.readouterr().out
    assert "a technician's day" in out and "docs/provisioning.md" in out
    for command in (*PROVISION_COMMANDS, "flash", "sync"):
        assert f"    {command} " in out
