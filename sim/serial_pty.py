"""A simulated serial device: the far end of a pty that the code under test opens by path.

Drivers open ``device.path`` with pyserial exactly as they open ``/dev/ttyUSB0`` in the field, so
the code that runs in CI is the code that runs on the pole. The path is a symlink to the current
``/dev/pts/N``; ``unplug()`` hangs up the line and removes it, ``replug()`` points it at a fresh
pty, the way udev re-creates a USB serial node.

One background thread per device reads what the driver writes and runs the periodic emitter.
Subclasses (or plain callbacks) decide what the device says:

* line protocols (AT modems): override ``on_line`` or pass ``on_line=`` — a dict's ``.get`` works;
* byte streams (sensors): ``stream(period_s, make_bytes)``;
* binary request/response (RFID readers): override ``on_bytes``.

A subclass sets its own state *before* calling ``super().__init__()``: the thread starts there.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import re
import select
import shutil
import tempfile
import threading
import time
import tty
from collections.abc import Callable
from pathlib import Path

from edge.drivers.closing import Closing

log = logging.getLogger(__name__)

LineHandler = Callable[[bytes], bytes | None]
LINE_END = re.compile(rb"\r|\n")  # CR, LF and CRLF all end a line; empty lines are skipped
MAX_LINE = 4096  # bytes kept while waiting for a terminator; beyond that the line is noise
JOIN_TIMEOUT_S = 2.0


class PtyDevice(Closing):
    """The device end of a pty, reachable at a stable symlink ``path``.

    ``errors`` keeps exceptions raised by handlers: the device keeps running (like hardware would),
    and a test can assert the list is empty.
    """

    def __init__(
        self,
        name: str = "ttyUSB0",
        *,
        link_dir: str | os.PathLike[str] | None = None,
        on_line: LineHandler | None = None,
        seed: int | None = None,
    ) -> None:
        self._own_dir = link_dir is None
        directory = tempfile.mkdtemp(prefix="machimori-sim-") if link_dir is None else link_dir
        self.path = str(Path(directory, name))
        self.rng = random.Random(seed)
        self.errors: list[Exception] = []
        self.dropped_bytes = 0  # output lost because nobody read the port (a UART overrun)
        self._line_handler = on_line
        self._lock = threading.Lock()
        self._polled = threading.Condition(self._lock)  # the thread took a fresh fd snapshot
        self._polled_gen = 0
        self._master: int | None = None
        self._slave: int | None = None
        self._gen = 0  # bumped on unplug/replug so the reader never uses a recycled fd number
        self._silent = False
        self._stream: tuple[float, Callable[[], bytes | None]] | None = None
        self._next_tick = 0.0
        self._line = bytearray()
        self._line_gen = 0
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._plug()
        self._thread = threading.Thread(target=self._run, name=f"pty-{name}", daemon=True)
        self._thread.start()

    # -- what a device says: override or configure --------------------------------------------

    def on_bytes(self, data: bytes) -> None:
        """Bytes from the driver. The default splits lines on CR and/or LF for ``on_line``."""
        self._line += data
        *lines, rest = LINE_END.split(self._line)
        self._line = bytearray(rest)
        for line in lines:
            if line:  # one bad command must not swallow the next
                self._guard(self._answer, bytes(line))
        if len(self._line) > MAX_LINE:
            log.debug("%s: dropping %d bytes without a line end", self.path, len(self._line))
            self._line.clear()

    def on_line(self, line: bytes) -> bytes | None:
        """One line without its terminator; the returned bytes are written back verbatim."""
        return self._line_handler(line) if self._line_handler else None

    def stream(self, period_s: float, make_bytes: Callable[[], bytes | None]) -> None:
        """Write ``make_bytes()`` every ``period_s`` while plugged and not silent."""
        if period_s <= 0:
            raise ValueError("period_s must be positive")
        self._stream = (period_s, make_bytes)
        self._next_tick = time.monotonic() + period_s
        self._wake()

    def stop_stream(self) -> None:
        self._stream = None
        self._wake()

    def write(self, data: bytes) -> None:
        """Send bytes to the driver, unless silenced or unplugged (then they are lost)."""
        if not self._silent:
            self._write(data)

    # -- faults ------------------------------------------------------------------------------

    def answer_later(self, task: Callable[[], list[str]], busy: threading.Event) -> None:
        """Run a long operation (a radio join or send) on its own thread, the way an AT modem
        answers at once and reports the result when the radio is done; the lines ``task`` returns
        are written CRLF-ended. ``busy`` is set meanwhile and cleared before the result goes out, so
        a driver may send its next command as soon as it reads it. A bug in ``task`` is kept in
        ``errors`` and the device stays alive, as hardware would."""
        busy.set()

        def run() -> None:
            lines: list[str] = []
            try:
                lines = task()
            except Exception as exc:
                log.exception("%s: device task failed", self.path)
                self.errors.append(exc)
            busy.clear()
            if lines:
                self.write("".join(f"{line}\r\n" for line in lines).encode())

        threading.Thread(target=run, name=f"answer-later-{self.path}", daemon=True).start()

    def inject_garbage(self, data: bytes | int) -> bytes:
        """Line noise: the given bytes, or that many seeded random bytes. Returns what was sent."""
        noise = self.rng.randbytes(data) if isinstance(data, int) else bytes(data)
        self._write(noise)
        return noise

    def silence(self, on: bool = True) -> None:
        """A hung device: nothing goes out, and what comes in is ignored."""
        self._silent = on

    @property
    def silent(self) -> bool:
        return self._silent

    def unplug(self) -> None:
        """Hang up the line and remove ``path``; the driver's next read or write fails."""
        with self._lock:
            self._close_pty()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            gen = self._gen
        self._wake()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            # The kernel hangs the line up only when the last reference to the master goes, and
            # the thread's poll() holds one: wait until it let go, so unplug is over on return.
            with self._polled:
                self._polled.wait_for(lambda: self._polled_gen >= gen, JOIN_TIMEOUT_S)
        log.debug("%s: unplugged", self.path)

    def replug(self) -> None:
        """A new pty behind the same ``path``. No-op while plugged."""
        if self.plugged:
            return
        self._plug()
        self._wake()
        log.debug("%s: replugged -> %s", self.path, self.pts)

    @property
    def plugged(self) -> bool:
        return self._master is not None

    @property
    def pts(self) -> str | None:
        """The ``/dev/pts/N`` behind ``path`` right now."""
        with self._lock:
            return os.ttyname(self._slave) if self._slave is not None else None

    # -- lifecycle ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the thread, close every fd, remove the link. Safe to call twice."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake()
        if threading.current_thread() is not self._thread:  # a handler may close its own device
            self._thread.join(JOIN_TIMEOUT_S)
            if self._thread.is_alive():
                log.warning("%s: device thread still busy after %.1fs", self.path, JOIN_TIMEOUT_S)
        self.unplug()
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        if self._own_dir:
            shutil.rmtree(Path(self.path).parent, ignore_errors=True)

    # -- internals ---------------------------------------------------------------------------

    def _plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # bytes pass unmodified until pyserial configures the line itself
        os.set_blocking(master, False)
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        os.symlink(os.ttyname(slave), tmp)
        os.replace(tmp, self.path)  # atomic: a reader never sees the path missing mid-replug
        with self._lock:
            # Holding the slave open keeps the master readable when the driver closes its port.
            self._master, self._slave = master, slave
            self._gen += 1

    def _close_pty(self) -> None:
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        self._gen += 1

    def _write(self, data: bytes) -> None:
        with self._lock:
            if self._master is None:
                return
            view = memoryview(data)
            while view:
                try:
                    view = view[os.write(self._master, view) :]
                except BlockingIOError:
                    self.dropped_bytes += len(view)
                    log.debug("%s: reader not keeping up, %d bytes lost", self.path, len(view))
                    return

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_w, b"!")

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._polled:
                master, gen = self._master, self._gen
                self._polled_gen = gen
                self._polled.notify_all()
            poller = select.poll()  # not select(): a big test session may hold fds above 1024
            poller.register(self._wake_r, select.POLLIN)
            if master is not None:
                poller.register(master, select.POLLIN)
            ready = {fd for fd, _ in poller.poll(self._wait_ms())}
            if self._wake_r in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(self._wake_r, 512)
            if master in ready:  # also when unplug() closed it meanwhile: _receive checks gen
                self._receive(master, gen)
            self._tick()

    def _wait_ms(self) -> int | None:
        if self._stream is None:
            return None
        return max(0, math.ceil((self._next_tick - time.monotonic()) * 1000))

    def _receive(self, master: int, gen: int) -> None:
        with self._lock:
            if gen != self._gen:
                return
            try:
                data = os.read(master, 4096)
            except OSError as exc:  # EAGAIN after a spurious wake-up; nothing else is expected
                log.debug("%s: read failed: %s", self.path, exc)
                return
        if gen != self._line_gen:  # a new pty: a half line from before the replug is gone
            self._line.clear()
            self._line_gen = gen
        if self._silent:
            self._line.clear()
            return
        self._guard(self.on_bytes, data)

    def _answer(self, line: bytes) -> None:
        reply = self.on_line(line)
        if reply:
            self.write(reply)

    def _tick(self) -> None:
        stream = self._stream
        if stream is None:
            return
        period_s, make_bytes = stream
        now = time.monotonic()
        if now < self._next_tick:
            return
        self._next_tick += period_s
        if self._next_tick <= now:  # fell behind (a paused process): skip, don't burst
            self._next_tick = now + period_s
        if self.plugged and not self._silent:
            self._guard(lambda: self.write(make_bytes() or b""))

    def _guard(self, fn: Callable[..., object], *args: object) -> None:
        try:
            fn(*args)
        except Exception as exc:
            log.exception("%s: device handler failed", self.path)
            self.errors.append(exc)
