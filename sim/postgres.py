"""A real PostgreSQL server in a temporary directory on a free loopback port, for tests and
benchmarks of the city store.

It uses Debian's ``postgresql`` binaries (``/usr/lib/postgresql/<version>/bin``). PostgreSQL
refuses to run as root, so when started by root the temporary directory is handed to the
``postgres`` OS user and the server programs run as that user. Connections are trusted on loopback
only: this is a throw-away server, never a deployment.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from sim.broker import MissingDependency, free_port, stop_process

BINARY_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
RUN_AS_ROOT_USER = "postgres"


def postgres_binary(name: str) -> str:
    """Path of a PostgreSQL server program (``initdb``, ``postgres``, ``pg_ctl``)."""
    for directory in BINARY_DIRS:
        if (directory / name).exists():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise MissingDependency(
            f"{name} not found: install Debian's 'postgresql' package "
            "(`make test` does this with apt-get)"
        )
    return found


class Postgres:
    """Start and stop one throw-away server; ``url(db)`` names a database on it."""

    def __init__(self, port: int | None = None, fsync: bool = False) -> None:
        self.initdb = postgres_binary("initdb")
        self.postgres = postgres_binary("postgres")
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self.fsync = fsync
        self._tmp = tempfile.TemporaryDirectory(prefix="postgres-")
        self.workdir = Path(self._tmp.name)
        self.datadir = self.workdir / "data"
        self.log_path = self.workdir / "postgres.log"
        self.user = "postgres"
        # Popen's user/group switch in the child without a shell or runuser in between, so
        # signals reach postgres itself.
        self._as: dict[str, object] = {}
        if os.geteuid() == 0:
            owner = pwd.getpwnam(RUN_AS_ROOT_USER)
            os.chown(self.workdir, owner.pw_uid, owner.pw_gid)
            self._as = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        self.proc: subprocess.Popen[bytes] | None = None

    def _run(self, args: list[str]) -> None:
        result = subprocess.run(args, capture_output=True, text=True, cwd=self.workdir, **self._as)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed:\n{result.stdout}\n{result.stderr}")

    def start(self) -> Postgres:
        self._run(
            [self.initdb, "-D", str(self.datadir), "-U", self.user, "--auth=trust"]
            + ["--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"]
        )
        settings = {
            "listen_addresses": self.host,
            "port": str(self.port),
            "unix_socket_directories": str(self.workdir),
            "fsync": "on" if self.fsync else "off",
            "synchronous_commit": "on" if self.fsync else "off",
            "full_page_writes": "on" if self.fsync else "off",
            "max_connections": "100",
            "shared_buffers": "64MB",
        }
        args = [self.postgres, "-D", str(self.datadir)]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=log, cwd=self.workdir, **self._as)
        self._wait_ready()
        return self

    def _wait_ready(self, timeout_s: float = 30.0) -> None:
        import psycopg

        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if self.proc is not None and self.proc.poll() is not None:
                    tail = self.log_path.read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"postgres exited at start:\n{tail}") from None
                if time.monotonic() > deadline:
                    raise TimeoutError(f"postgres not ready after {timeout_s}s") from None
                time.sleep(0.05)

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str | None = None) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = name or f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        stop_process(self.proc, signal.SIGINT, 15)  # SIGINT, "fast" shutdown: ends sessions too
        self.proc = None

    def close(self) -> None:
        self.stop()
        self._tmp.cleanup()

    def __enter__(self) -> Postgres:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()
