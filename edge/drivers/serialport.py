"""A serial port by path that outlives its device: the shared transport of the UART drivers.

A USB adapter shaken loose in a storm, or a sensor that browns out, must cost readings, not the
agent. So a failure closes the port and raises ``PortError``; the next call opens the path again,
and a device that is back (udev re-created ``/dev/ttyUSB0``) just works. Opening is lazy for the
same reason: an agent may start before its adapter enumerates.

``path`` is anything pyserial's ``serial_for_url`` takes: a device node, or ``socket://``,
``rfc2217://`` for a sensor behind a serial server. Not thread-safe: one driver owns one port.
"""

from __future__ import annotations

import logging

import serial

from edge.drivers.closing import Closing

log = logging.getLogger(__name__)


class PortError(Exception):
    """The port could not be opened, or failed in use. The next call tries to open it again."""


class SerialPort(Closing):
    """Lazily opened, self-reopening pyserial port (8N1, exclusive, input flushed on open)."""

    def __init__(self, path: str, baudrate: int) -> None:
        self.path = path
        self.baudrate = baudrate
        self._serial: serial.SerialBase | None = None
        self._failing = False  # log the first failure loudly, the retries quietly

    @property
    def is_open(self) -> bool:
        return self._serial is not None

    def open(self) -> None:
        """Open now rather than on first use; raises ``PortError``."""
        self._ensure_open()

    def read(self, timeout_s: float, max_bytes: int = 4096) -> bytes:
        """Wait up to ``timeout_s`` for data; return what has arrived (``b""`` on timeout).

        ``timeout_s=0`` polls: it returns whatever is buffered without waiting.
        """
        port = self._ensure_open()
        try:
            port.timeout = max(0.0, timeout_s)
            data = port.read(1)
            if data and (waiting := min(port.in_waiting, max_bytes - 1)) > 0:
                data += port.read(waiting)
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise self._failure(exc, "read") from exc
        return data

    def write(self, data: bytes) -> None:
        port = self._ensure_open()
        try:
            port.write(data)
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise self._failure(exc, "write") from exc

    def close(self) -> None:
        port, self._serial = self._serial, None
        if port is not None:
            try:
                port.close()
            except (serial.SerialException, OSError) as exc:  # closing a vanished device
                log.debug("%s: close failed: %s", self.path, exc)

    def _ensure_open(self) -> serial.SerialBase:
        if self._serial is None:
            try:
                port = serial.serial_for_url(self.path, baudrate=self.baudrate, exclusive=True)
                port.reset_input_buffer()  # what piled up while nobody listened is stale
            except (serial.SerialException, OSError, ValueError) as exc:
                raise self._failure(exc, "open") from exc
            if self._failing:
                log.info("%s: port is back", self.path)
            self._failing = False
            self._serial = port
        return self._serial

    def _failure(self, exc: Exception, action: str) -> PortError:
        level = logging.DEBUG if self._failing else logging.WARNING
        log.log(level, "%s: %s failed: %s", self.path, action, exc)
        self._failing = True
        return PortError(f"{self.path}: {action} failed: {exc}")
