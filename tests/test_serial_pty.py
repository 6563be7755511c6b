"""The pty simulator base, observed the way a driver sees it: through a real pyserial port."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
import serial

from edge.drivers.serialport import PortError, SerialPort
from sim.serial_pty import PtyDevice

AT = {b"AT": b"\r\nOK\r\n", b"AT+VER?": b"\r\n+VER=1.2.3\r\n\r\nOK\r\n"}


@pytest.fixture
def modem() -> Iterator[PtyDevice]:
    with PtyDevice(on_line=AT.get) as dev:
        yield dev


def open_port(dev: PtyDevice, timeout: float = 1.0) -> serial.Serial:
    return serial.Serial(dev.path, 115200, timeout=timeout)


def test_path_is_a_stable_link_to_a_pty(modem):
    assert os.path.islink(modem.path)
    assert os.path.realpath(modem.path) == modem.pts
    assert modem.pts.startswith("/dev/pts/")


def test_line_commands_get_their_scripted_replies(modem):
    with open_port(modem) as port:
        port.write(b"AT\r")
        assert port.read(6) == b"\r\nOK\r\n"
        port.write(b"AT+VER?\r\n")
        assert port.read(len(AT[b"AT+VER?"])) == AT[b"AT+VER?"]


def test_lines_split_and_joined_across_writes_and_terminators(modem):
    with open_port(modem) as port:
        port.write(b"A")
        port.write(b"T\nAT\r\nAT\n")  # LF, CRLF (no empty line in between), LF
        assert port.read(18) == b"\r\nOK\r\n" * 3
        port.timeout = 0.2
        assert port.read(1) == b""


def test_unknown_lines_get_no_reply(modem):
    with open_port(modem, timeout=0.2) as port:
        port.write(b"AT+NOPE\r")
        assert port.read(1) == b""


class CountingModem(PtyDevice):
    """State lives in the subclass and is set before the thread starts."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []
        super().__init__("ttyAMA0")

    def on_line(self, line: bytes) -> bytes | None:
        self.seen.append(line)
        return b"+N=%d\r\n" % len(self.seen)


def test_subclass_keeps_state_between_lines():
    with CountingModem() as dev, open_port(dev) as port:
        assert dev.path.endswith("/ttyAMA0")
        port.write(b"AT+A\rAT+B\r")
        assert port.read(12) == b"+N=1\r\n+N=2\r\n"
        assert dev.seen == [b"AT+A", b"AT+B"]


def test_handler_failure_is_recorded_and_the_device_keeps_answering():
    def handler(line: bytes) -> bytes:
        if line == b"BOOM":
            raise RuntimeError("handler bug")
        return b"OK\r\n"

    with PtyDevice(on_line=handler) as dev, open_port(dev) as port:
        port.write(b"BOOM\rAT\r")
        assert port.read(4) == b"OK\r\n"
        assert [str(e) for e in dev.errors] == ["handler bug"]


def test_stream_emits_in_order_at_its_period():
    count = iter(range(1000))
    with PtyDevice() as dev, open_port(dev) as port:
        dev.stream(0.02, lambda: b"%d\n" % next(count))
        time.sleep(0.3)
        dev.stop_stream()
        time.sleep(0.05)
        lines = port.read(port.in_waiting).split()
        assert [int(n) for n in lines] == list(range(len(lines)))
        assert 8 <= len(lines) <= 16  # ~15 in 0.3 s; a loaded CI host may skip ticks, never burst
        port.timeout = 0.1
        assert port.read(1) == b""


def test_garbage_is_sent_as_given_or_seeded_random():
    with PtyDevice(seed=7) as dev, open_port(dev) as port:
        assert dev.inject_garbage(b"\x00\xff\r") == b"\x00\xff\r"
        assert port.read(3) == b"\x00\xff\r"
        noise = dev.inject_garbage(16)
        assert port.read(16) == noise
    with PtyDevice(seed=7) as again:
        again.inject_garbage(b"\x00\xff\r")
        assert again.inject_garbage(16) == noise  # reproducible


def test_silenced_device_neither_talks_nor_listens():
    heard: list[bytes] = []

    def handler(line: bytes) -> bytes:
        heard.append(line)
        return b"OK\r\n"

    with PtyDevice(on_line=handler) as dev, open_port(dev, timeout=0.15) as port:
        dev.stream(0.02, lambda: b".")
        assert port.read(1) == b"."
        dev.silence()
        time.sleep(0.03)  # let a tick already in flight land
        port.reset_input_buffer()
        port.write(b"AT+JOIN\r")
        assert port.read(1) == b""
        dev.silence(False)
        port.write(b"AT\r")
        assert b"OK" in port.read(20)
        assert heard == [b"AT"]


def test_unplug_fails_the_open_port_and_the_path_until_replug(modem):
    with open_port(modem) as port:
        port.write(b"AT\r")
        assert port.read(6) == b"\r\nOK\r\n"
        modem.unplug()
        assert not modem.plugged
        assert not os.path.lexists(modem.path)
        with pytest.raises(serial.SerialException):
            port.read(1)
        with pytest.raises(serial.SerialException):
            port.write(b"AT\r")
    with pytest.raises(serial.SerialException):
        open_port(modem)

    modem.replug()
    assert modem.plugged
    with open_port(modem) as port:
        port.write(b"AT\r")
        assert port.read(6) == b"\r\nOK\r\n"


def test_driver_port_fails_cleanly_on_unplug_and_reopens_after_replug(modem):
    with SerialPort(modem.path, 115200) as port:
        port.write(b"AT\r")
        assert port.read(1.0) == b"\r\nOK\r\n"
        modem.unplug()
        with pytest.raises(PortError, match="write failed"):
            port.write(b"AT\r")
        assert not port.is_open
        with pytest.raises(PortError, match="open failed"):
            port.open()
        modem.replug()
        port.write(b"AT\r")
        assert port.read(1.0) == b"\r\nOK\r\n"


def test_stream_resumes_after_replug():
    with PtyDevice() as dev:
        dev.stream(0.02, lambda: b"x")
        dev.unplug()
        time.sleep(0.1)
        dev.replug()
        with open_port(dev, timeout=0.5) as port:
            port.reset_input_buffer()
            assert port.read(3) == b"xxx"
        assert dev.errors == []


def test_output_nobody_reads_is_dropped_not_blocking():
    with PtyDevice() as dev:
        started = time.monotonic()
        dev.write(b"x" * 1_000_000)
        assert time.monotonic() - started < 1.0
        assert 0 < dev.dropped_bytes < 1_000_000


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_close_releases_thread_fds_and_link_promptly():
    threads, fds = threading.active_count(), fd_count()
    dev = PtyDevice(on_line=AT.get)
    dev.stream(10.0, lambda: b"")  # a long wait in select must not delay close
    link_dir = os.path.dirname(dev.path)
    assert threading.active_count() == threads + 1
    started = time.monotonic()
    dev.close()
    assert time.monotonic() - started < 0.5
    dev.close()  # idempotent
    assert threading.active_count() == threads
    assert fd_count() == fds
    assert not os.path.exists(link_dir)


def test_link_dir_is_caller_owned(tmp_path):
    with PtyDevice("ttyS9", link_dir=tmp_path) as dev:
        assert dev.path == str(tmp_path / "ttyS9")
        assert os.path.islink(dev.path)
    assert tmp_path.exists()
    assert not os.path.lexists(tmp_path / "ttyS9")
