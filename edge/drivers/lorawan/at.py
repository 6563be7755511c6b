"""AT command lines over a serial port, shared by the modem drivers.

A modem answers a command with one or more lines and, at any time, says things nobody asked (the
RUI3 ``+EVT:`` lines). ``exchange`` writes a command and returns its answer up to the line that
ends it; lines the caller marks as unsolicited are kept in ``events`` for ``wait`` to find, in
the order they came, so an event that arrives in the middle of another command is not lost.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from edge.drivers.lorawan import ModemError
from edge.drivers.serialport import PortError, SerialPort

Match = Callable[[str], bool]
MAX_LINE = 1024


def redact(command: str) -> str:
    """A command as it may appear in logs and errors: never a key."""
    head, sep, _ = command.partition("=")
    return f"{head}=…" if sep and "KEY" in head.upper() else command


class AtChannel:
    def __init__(self, port: SerialPort, unsolicited: Match) -> None:
        self.port = port
        self.unsolicited = unsolicited
        self.events: deque[str] = deque()
        self._buf = bytearray()

    def exchange(self, command: str, done: Match, timeout_s: float) -> list[str]:
        """Send ``command``; its answer lines, the last being the first one ``done`` accepts."""
        self._drop_stale()
        self.write(command)
        deadline = time.monotonic() + timeout_s
        lines: list[str] = []
        while True:
            line = self._readline(deadline)
            if line is None:
                raise ModemError("timeout", f"{redact(command)}: no answer in {timeout_s:g} s")
            if line == command:  # echo (ATE on)
                continue
            if self.unsolicited(line) and not done(line):
                self.events.append(line)
                continue
            lines.append(line)
            if done(line):
                return lines

    def _drop_stale(self) -> None:
        """Lines that arrived before a command are not its answer: they are the late answer of
        one that timed out (a busy modem). Events among them are kept; the rest is dropped, or
        every later command would read the answer of the one before it, for ever."""
        while (line := self._readline(0.0)) is not None:
            if self.unsolicited(line):
                self.events.append(line)

    def write(self, command: str) -> None:
        try:
            self.port.write(command.encode("ascii") + b"\r\n")
        except PortError as exc:
            raise ModemError("port", str(exc)) from exc

    def wait(self, match: Match, timeout_s: float) -> str | None:
        """The first event ``match`` accepts, from those kept or arriving within ``timeout_s``."""
        for line in list(self.events):
            if match(line):
                self.events.remove(line)
                return line
        deadline = time.monotonic() + timeout_s
        while (line := self._readline(deadline)) is not None:
            if match(line):
                return line
            self.events.append(line)
        return None

    def drain(self) -> None:
        """Keep whatever lines have already arrived as events, without waiting."""
        while (line := self._readline(0.0)) is not None:
            self.events.append(line)

    def discard(self, match: Match) -> None:
        """Forget the events ``match`` accepts, kept or already arrived: stale outcomes of an
        earlier operation must not pass for the next one's."""
        self.drain()
        for line in [line for line in self.events if match(line)]:
            self.events.remove(line)

    def clear(self) -> None:
        """Forget kept events and partial input (after a modem reset)."""
        self.events.clear()
        self._buf.clear()

    def _readline(self, deadline: float) -> str | None:
        while True:
            end = self._buf.find(b"\n")
            if end >= 0:
                line = bytes(self._buf[:end]).decode("ascii", "replace").strip()
                del self._buf[: end + 1]
                if line:
                    return line
                continue
            remaining = deadline - time.monotonic()
            try:
                data = self.port.read(max(0.0, remaining))
            except PortError as exc:
                self._buf.clear()
                raise ModemError("port", str(exc)) from exc
            self._buf += data
            if len(self._buf) > MAX_LINE:  # no line end in sight: noise, not an answer
                self._buf.clear()
            if not data or (remaining <= 0 and b"\n" not in data):
                return None
