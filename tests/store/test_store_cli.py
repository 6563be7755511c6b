"""`machimori store` and `machimori web` as a technician uses them, and the demo's hook that runs
the store against a broker with per-device passwords and the city's ACL."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import yaml
from store_helpers import ROOT, Publisher, get, get_json, login, wait_until

from gateway.api.auth import StaffAuth
from gateway.store.launch import start_store
from sim.broker import Mosquitto


def machimori(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "machimori", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
    )


@pytest.mark.parametrize(
    "args, words",
    [
        (["store", "--help"], "machimori store run --config"),
        (["store", "run", "--help"], "--config"),
        (["store", "check", "--help"], "validate the config"),
        (["web", "--help"], "machimori web passwd"),
        (["web", "passwd", "--help"], "--password-stdin"),
    ],
)
def test_help_a_technician_can_follow(args, words):
    result = machimori(*args)
    assert result.returncode == 0 and words in result.stdout


def test_a_wrong_config_names_file_and_key(tmp_path):
    config = tmp_path / "store.yaml"
    config.write_text("ingest:\n  batch_max: many\n")
    result = machimori("store", "check", "--config", str(config))
    assert result.returncode == 2
    assert f"{config}: ingest.batch_max: expected an integer" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_status_and_purge(tmp_path):
    config = tmp_path / "store.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": "sqlite:///store.db",
                "sites_file": str(ROOT / "configs" / "sites.yaml"),
                "staff": {"users_file": "users"},
            }
        )
    )
    check = machimori("store", "check", "--config", str(config))
    assert check.returncode == 0, check.stderr
    assert "4 river site(s), 2 camera(s)" in check.stdout and "tracker 2 d" in check.stdout
    assert "CC-BY-4.0" in check.stdout
    assert "machimori web passwd" in check.stdout  # no staff login yet: says how
    status = machimori("store", "status", "--config", str(config))
    assert status.returncode == 0 and "0 device(s)" in status.stdout
    purge = machimori("store", "purge", "--config", str(config))
    assert purge.returncode == 0 and "tracker" in purge.stdout


def test_passwd_writes_a_private_users_file_that_logs_in(tmp_path):
    users = tmp_path / "staff-users"
    result = machimori(
        "web",
        "passwd",
        "--users-file",
        str(users),
        "sato",
        "--password-stdin",
        stdin="long enough password\n",
    )
    assert result.returncode == 0, result.stderr
    assert os.stat(users).st_mode & 0o777 == 0o600
    assert "long enough" not in users.read_text()  # a hash, not the password
    auth = StaffAuth(users)
    assert auth.user(auth.login("sato", "long enough password", "test")) == "sato"
    assert auth.login("sato", "wrong password!", "test") is None
    short = machimori(
        "web", "passwd", "--users-file", str(users), "sato", "--password-stdin", stdin="short\n"
    )
    assert short.returncode == 1 and "10 characters" in short.stderr


def test_the_demo_hook_runs_store_and_pages_behind_the_city_acl(tmp_path):
    passwords = {"river-01": "gauge-secret-01", "city": "city-secret"}
    acl = (ROOT / "configs" / "mosquitto" / "acl").read_text()
    with Mosquitto(users=passwords, acl=acl) as broker:
        running = start_store(
            tmp_path / "store", broker.host, broker.port, "city", passwords["city"]
        )
        try:
            gauge = Publisher(broker, "river-01", passwords["river-01"])
            sites = running.url + "api/v1/sites"
            level = wait_until(
                lambda: (gauge.level("river-01", 2.2), get_json(sites)["sites"][0]["level_m"])[1],
                timeout_s=30,
                what="the gauge's reading on the page",
            )
            assert level == 2.2
            page = get(running.url)[2].decode()
            assert "氾濫注意水位" in page and "2.20 m" in page
            assert login(running.url, running.staff_user, running.staff_password)
            assert "secret" not in (tmp_path / "store" / "store.log").read_text()
            secrets = tmp_path / "store" / "secrets"
            assert all(os.stat(f).st_mode & 0o777 == 0o600 for f in secrets.iterdir())
            gauge.close()
        finally:
            assert running.stop() == 0
