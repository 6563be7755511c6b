"""The city's and the field's processes as a simulation runs them: each ``machimori`` command in
its own process with its own log, as systemd runs them, so a fault can SIGKILL one and start it
again with the same command, and a report can say what each cost in CPU and memory."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil


@dataclass
class Usage:
    """CPU seconds and peak resident memory of one named process, over all its restarts."""

    cpu_s: float = 0.0
    peak_rss: int = 0
    restarts: int = 0


@dataclass
class Managed:
    name: str
    args: list[str]
    log: Path
    proc: subprocess.Popen[bytes]
    usage: Usage = field(default_factory=Usage)
    _ps: psutil.Process | None = None
    _cpu_seen: float = 0.0

    def sample(self) -> None:
        """Add the CPU time used since the last sample; keep the peak RSS."""
        try:
            if self._ps is None or self._ps.pid != self.proc.pid:
                self._ps, self._cpu_seen = psutil.Process(self.proc.pid), 0.0
            times = self._ps.cpu_times()
            cpu = times.user + times.system
            self.usage.cpu_s += cpu - self._cpu_seen
            self._cpu_seen = cpu
            self.usage.peak_rss = max(self.usage.peak_rss, self._ps.memory_info().rss)
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            pass


class Processes:
    """Named ``python -m machimori ...`` processes, logs in ``logs``."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.logs.mkdir(parents=True, exist_ok=True)
        self.running: dict[str, Managed] = {}

    def spawn(self, name: str, *args: str, prefix: tuple[str, ...] = ()) -> Managed:
        """``prefix``: a command the process runs under (``ip netns exec NS``)."""
        argv = [*prefix, sys.executable, "-m", "machimori", *args]
        log = self.logs / f"{name}.log"
        self.running[name] = Managed(name, argv, log, self._popen(argv, log))
        return self.running[name]

    def adopt(self, name: str, proc: subprocess.Popen[bytes] | None, log: Path) -> None:
        """Count a process started elsewhere (the broker, the store) in the report."""
        if proc is not None:
            usage = self.running[name].usage if name in self.running else Usage()
            if name in self.running:
                self.running[name].sample()
                usage.restarts += 1
            self.running[name] = Managed(name, list(map(str, proc.args)), log, proc, usage)

    @staticmethod
    def _popen(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:
            return subprocess.Popen(argv, stdout=out, stderr=out)

    def kill(self, name: str) -> None:
        """SIGKILL: no flush, no clean close, as a crash or the OOM killer."""
        managed = self.running[name]
        managed.sample()
        if managed.proc.poll() is None:
            managed.proc.send_signal(signal.SIGKILL)
            managed.proc.wait()

    def restart(self, name: str) -> None:
        """Start the same command again (systemd's ``Restart=always``)."""
        managed = self.running[name]
        with open(managed.log, "ab") as out:
            out.write(f"--- restarted at {time.strftime('%H:%M:%S')}\n".encode())
        managed.sample()
        managed.proc = self._popen(managed.args, managed.log)
        managed.usage.restarts += 1

    def stop(self, name: str, timeout_s: float = 20.0) -> int:
        """SIGTERM and wait; the exit status (SIGKILL after ``timeout_s``: negative)."""
        managed = self.running[name]
        managed.sample()
        proc = managed.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def sample(self) -> None:
        for managed in self.running.values():
            if managed.proc.poll() is None:
                managed.sample()

    def tail(self, name: str, chars: int = 2000) -> str:
        return self.running[name].log.read_text(errors="replace")[-chars:]
