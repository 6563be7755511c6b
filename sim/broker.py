"""A real Mosquitto broker on a free loopback port, for tests, the demo and benchmarks.

It runs the city's production settings (``configs/mosquitto/mosquitto.conf``: persistence,
autosave, queue and packet limits) with this broker's own listener, files and log in place of the
production paths; optionally with per-device passwords and an ACL, so the demo runs with the same
least-privilege topic rules a city deploys. ``kill`` and ``forget`` let a test crash it and take
its persistence file away.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

SEARCH_PATH = "/usr/sbin:/usr/local/sbin:/usr/bin:/usr/local/bin"
PRODUCTION_CONF = Path(__file__).resolve().parents[1] / "configs" / "mosquitto" / "mosquitto.conf"
# settings of the production file that name its host's paths, listeners and logging: each broker
# here sets its own
LOCAL = {
    "listener",
    "cafile",
    "certfile",
    "keyfile",
    "tls_version",
    "require_certificate",
    "persistence_location",
    "password_file",
    "acl_file",
    "allow_anonymous",
    "log_dest",
    "log_type",
    "user",
}


def production_settings(path: Path = PRODUCTION_CONF) -> list[str]:
    """The production file's settings that hold anywhere (persistence, queues, limits)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise MissingDependency(f"{path}: the broker's production settings: {exc}") from exc
    lines = [line.strip() for line in text.splitlines()]
    return [
        line for line in lines if line and not line.startswith("#") and line.split()[0] not in LOCAL
    ]


class MissingDependency(RuntimeError):
    """A real part the project needs is not installed."""


def mosquitto_binary(name: str = "mosquitto") -> str:
    found = shutil.which(name) or shutil.which(name, path=SEARCH_PATH)
    if found is None:
        raise MissingDependency(
            f"{name} not found: install Debian's 'mosquitto' package "
            "(`make test` and `make demo` do this with apt-get)"
        )
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 10.0, host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"nothing listening on {host}:{port} after {timeout_s}s"
                ) from None
            time.sleep(0.02)


def stop_process(
    proc: subprocess.Popen[bytes] | None, sig: int = signal.SIGTERM, timeout_s: float = 5.0
) -> None:
    """Ask a server to stop with ``sig``; kill it if it has not stopped within ``timeout_s``."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class Mosquitto:
    """Start, stop and restart one broker; it keeps its port across restarts."""

    def __init__(
        self,
        port: int | None = None,
        workdir: str | Path | None = None,
        users: dict[str, str] | None = None,
        acl: str | None = None,
        tls: tuple[Path, Path, Path] | None = None,
        password_file: Path | None = None,
        acl_file: Path | None = None,
        settings: tuple[str, ...] = (),
    ) -> None:
        """``tls``: (CA file, certificate, key) to make the listener TLS-only. ``password_file``
        and ``acl_file``: files written elsewhere (by ``machimori provision sync``), instead of
        ``users`` and ``acl``. ``settings``: more lines for the listener (require_certificate)."""
        self.binary = mosquitto_binary()
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._tmp = None if workdir else tempfile.TemporaryDirectory(prefix="mosquitto-")
        self.workdir = Path(workdir or self._tmp.name)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "mosquitto.log"
        self.conf_path = self.workdir / "mosquitto.conf"
        lines = [
            *production_settings(),
            f"listener {self.port} {self.host}",
            *(
                [f"cafile {tls[0]}", f"certfile {tls[1]}", f"keyfile {tls[2]}"]
                if tls is not None
                else []
            ),
            f"persistence_location {self.workdir}/",
            "log_dest stderr",
            # run as whoever started us: as root, mosquitto would otherwise switch to the
            # 'mosquitto' user and lose access to the files written here
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
        ]
        if password_file is not None:
            lines += ["allow_anonymous false", f"password_file {password_file}"]
        elif users:
            # every user in plain text, then hashed in place in one go (-U): a city of 1,200
            # trackers would take minutes of one mosquitto_passwd run per user
            passwd = self.workdir / "passwd"
            passwd.write_text("")
            passwd.chmod(0o600)
            passwd.write_text("".join(f"{user}:{password}\n" for user, password in users.items()))
            subprocess.run(
                [mosquitto_binary("mosquitto_passwd"), "-U", str(passwd)],
                check=True,
                capture_output=True,
            )
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if acl is not None:
            acl_file = self.workdir / "acl"
            acl_file.write_text(acl)
        if acl_file is not None:
            lines.append(f"acl_file {acl_file}")
        lines += settings
        self.conf_path.write_text("\n".join(lines) + "\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Mosquitto:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, "-c", str(self.conf_path)], stdout=log, stderr=log
            )
        try:
            wait_for_port(self.port)
        except TimeoutError as exc:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"mosquitto did not start: {exc}\n{tail}") from exc
        return self

    def reload(self) -> None:
        """SIGHUP: Mosquitto re-reads its password file and ACL, keeping its clients."""
        assert self.proc is not None, "the broker is not running"
        self.proc.send_signal(signal.SIGHUP)

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def kill(self) -> None:
        """Crash it: SIGKILL, no chance to write its persistence file."""
        stop_process(self.proc, signal.SIGKILL)
        self.proc = None

    def forget(self) -> None:
        """Take its persistence file away (a broker rebuilt, or its disk lost): the next start
        has no sessions, no queued and no retained messages."""
        (self.workdir / "mosquitto.db").unlink(missing_ok=True)

    def close(self) -> None:
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()
