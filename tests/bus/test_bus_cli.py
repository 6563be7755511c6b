"""`machimori bus`: the card registry as the pass counter uses it, and the feed check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from bus_rig import SAMPLE

from edge.protocol.bus import card_hash
from gateway.services.cards import CardRegistry
from gateway.store.db import open_store


def bus(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "machimori", "bus", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_issue_revoke_and_list_passes_storing_only_the_hash(tmp_path: Path):
    config = tmp_path / "store.yaml"
    config.write_text(yaml.safe_dump({"database": "sqlite:///store.db"}))
    secret = tmp_path / "card-secret"
    secret.write_text("the-city-card-secret-2026\n")
    card = ["--secret-file", str(secret), "--tech", "em4100", "--uid", "62E3086CED"]
    issued = bus(
        "cards",
        "issue",
        "--config",
        str(config),
        *card,
        "--category",
        "child",
        "--pass-type",
        "student",
        "--valid-from",
        "2026-04-01",
        "--valid-to",
        "2027-03-31",
    )
    assert issued.returncode == 0, issued.stderr
    hashed = card_hash(b"the-city-card-secret-2026", "em4100", bytes.fromhex("62E3086CED"))
    assert hashed in issued.stdout
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    try:
        (record,) = CardRegistry(store).all().values()
        assert (record.card, record.category, record.revoked_ms) == (hashed, "child", None)
    finally:
        store.close()
    assert b"62e3086ced" not in (tmp_path / "store.db").read_bytes().lower()
    assert bus("cards", "revoke", "--config", str(config), *card).returncode == 0
    listed = bus("cards", "list", "--config", str(config))
    assert "child       0" in listed.stdout and "revoked     1" in listed.stdout
    unknown = bus("cards", "revoke", "--config", str(config), "--hash", "0" * 32)
    assert unknown.returncode == 1 and "unknown card" in unknown.stderr
    bad = bus(
        "cards",
        "revoke",
        "--config",
        str(config),
        "--secret-file",
        str(secret),
        "--tech",
        "em4100",
        "--uid",
        "not-hex",
    )
    assert bad.returncode == 2 and "--uid" in bad.stderr


def test_gtfs_check_lists_a_day_s_trips_and_names_a_broken_feed(tmp_path: Path):
    ok = bus("gtfs-check", str(SAMPLE), "--route", "M1", "--date", "2026-12-05")
    assert ok.returncode == 0 and "10 trips" in ok.stdout and "HO-01" in ok.stdout
    broken = bus("gtfs-check", str(tmp_path))
    assert broken.returncode == 1 and "missing agency.txt" in broken.stderr
