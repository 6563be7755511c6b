"""Start the city store (ingest + river page + staff page + API) as its own process against a given
broker, for the demo: it writes a config, a staff login and the broker password into ``workdir``
(secrets mode 0600), runs ``machimori store run`` and waits until the pages answer."""

from __future__ import annotations

import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

SITES = Path(__file__).resolve().parents[2] / "configs" / "sites.yaml"
STAFF_USER = "staff"


@dataclass
class RunningStore:
    url: str  # the public river page
    staff_url: str
    staff_user: str
    staff_password: str
    workdir: Path
    process: subprocess.Popen[bytes]

    def stop(self, timeout_s: float = 15.0) -> int | None:
        """SIGTERM (the store commits and acknowledges what it has, then exits)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _secret_file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.write_text(text)
    path.chmod(0o600)
    return path


def start_store(
    workdir: str | Path,
    broker_host: str,
    broker_port: int,
    username: str | None = None,
    password: str | None = None,
    *,
    clock_speed: float = 1.0,
    clock_epoch: str | None = None,
    clock_start: str | None = None,
    refresh_s: int = 10,
    sites_file: Path = SITES,
    http_port: int | None = None,
    transit: dict[str, object] | None = None,
    timeout_s: float = 30.0,
) -> RunningStore:
    """Run the store on SQLite in ``workdir``; returns once the river page answers."""
    from gateway.api.auth import set_password

    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    port = http_port or _free_port()
    staff_password = secrets.token_urlsafe(12)
    users = workdir / "secrets" / "staff-users"
    _secret_file(users, "")
    set_password(users, STAFF_USER, staff_password)
    mqtt: dict[str, object] = {"host": broker_host, "port": broker_port, "reconnect_max_s": 5}
    if username is not None:
        mqtt["username"] = username
    if password is not None:
        mqtt["password_file"] = str(_secret_file(workdir / "secrets" / "store.mqtt", password))
    config = {
        "database": f"sqlite:///{workdir / 'store.db'}",
        "images_dir": str(workdir / "images"),
        "sites_file": str(sites_file),
        "mqtt": mqtt,
        "ingest": {"client_id": "machimori-store-demo"},
        "http": {"host": "127.0.0.1", "port": port, "refresh_s": refresh_s},
        "staff": {
            "users_file": str(users),
            "session_secret_file": str(
                _secret_file(workdir / "secrets" / "session-secret", secrets.token_hex(32))
            ),
            "secure_cookie": False,  # plain HTTP on loopback
        },
        "clock_speed": clock_speed,
        "clock_epoch": clock_epoch,
        "clock_start": clock_start,
        "log_level": "info",
    }
    if transit is not None:
        config["transit"] = transit
    config_path = workdir / "store.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False, allow_unicode=True))
    with open(workdir / "store.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "machimori", "store", "run", "--config", str(config_path)],
            stdout=log,
            stderr=log,
        )
    base = f"http://127.0.0.1:{port}/"
    running = RunningStore(base, base + "staff", STAFF_USER, staff_password, workdir, process)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(base + "healthz", timeout=2):
                return running
        except (urllib.error.URLError, OSError):
            if process.poll() is not None or time.monotonic() > deadline:
                running.stop()
                tail = (workdir / "store.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the store did not start:\n{tail}") from None
            time.sleep(0.2)
