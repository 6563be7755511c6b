"""Headless Chromium driven over the DevTools protocol, for testing pages as a resident sees them.

Debian's ``chromium`` package provides the browser; nothing here downloads one. One browser process
serves a test session; each :class:`Tab` lives in its own browser context (its own cookies), so an
anonymous visitor and a logged-in member of staff never share a session by accident.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import websocket

from sim.broker import MissingDependency, stop_process

# The Debian wrapper script /usr/bin/chromium adds nothing a test needs and complains on stderr.
CANDIDATES = ("/usr/lib/chromium/chromium", "chromium", "chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
]


class BrowserError(RuntimeError):
    """The browser answered a command with an error, or a page script threw."""


def chromium_binary() -> str:
    for name in CANDIDATES:
        found = name if Path(name).is_file() else shutil.which(name)
        if found:
            return found
    raise MissingDependency(
        "chromium not found: install Debian's 'chromium' package "
        "(`make test` does this with apt-get)"
    )


class Chromium:
    """One headless browser process with a fresh profile, spoken to over one websocket."""

    def __init__(self) -> None:
        self.binary = chromium_binary()
        self.profile = Path(tempfile.mkdtemp(prefix="chromium-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self._ws: websocket.WebSocket | None = None
        self._ids = itertools.count(1)

    def start(self, timeout_s: float = 30.0) -> Chromium:
        log = open(self.profile / "chromium.log", "wb")  # noqa: SIM115 - lives with the process
        self.proc = subprocess.Popen(
            [self.binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdout=log,
            stderr=log,
            start_new_session=True,  # its helpers (zygote, crashpad) can be stopped with it
        )
        log.close()
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout_s
        while not port_file.exists() or len(port_file.read_text().splitlines()) < 2:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = (self.profile / "chromium.log").read_text(errors="replace")[-2000:]
                self.close()
                raise RuntimeError(f"chromium did not start:\n{tail}")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self._ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}{path}", timeout=timeout_s, suppress_origin=True
        )
        return self

    def send(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout_s: float = 30.0,
    ) -> dict[str, Any]:
        """Send one command and wait for its answer; events arriving meanwhile are dropped."""
        if self._ws is None:
            raise RuntimeError("browser not started")
        ident = next(self._ids)
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session is not None:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._ws.settimeout(max(0.1, deadline - time.monotonic()))
            reply = json.loads(self._ws.recv())
            if reply.get("id") != ident:
                continue
            if "error" in reply:
                raise BrowserError(f"{method}: {reply['error'].get('message')}")
            return reply.get("result", {})
        raise TimeoutError(f"{method}: no answer in {timeout_s}s")

    def new_tab(self, width: int = 390, height: int = 844, mobile: bool = True) -> Tab:
        """A tab in a new, empty browser context; the default size is a phone's."""
        context = self.send("Target.createBrowserContext")["browserContextId"]
        target = self.send(
            "Target.createTarget", {"url": "about:blank", "browserContextId": context}
        )["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        tab = Tab(self, context, target, session)
        tab.send("Page.enable")
        tab.send("Runtime.enable")
        tab.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 2, "mobile": mobile},
        )
        return tab

    def close(self) -> None:
        if self._ws is not None:
            try:
                self._ws.close()
            except OSError:
                pass
            self._ws = None
        if self.proc is not None:
            stop_process(self.proc, timeout_s=10)
            with contextlib.suppress(ProcessLookupError):  # helpers still writing the profile
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc = None
        for _ in range(50):  # a killed helper may take a moment to let go of its files
            try:
                shutil.rmtree(self.profile)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.close()


class Tab:
    """One page in its own browser context: navigate, read the DOM, wait, take screenshots."""

    def __init__(self, browser: Chromium, context: str, target: str, session: str) -> None:
        self.browser = browser
        self.context = context
        self.target = target
        self.session = session

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.browser.send(method, params, session=self.session)

    def goto(self, url: str, timeout_s: float = 20.0) -> None:
        """Navigate and wait until the document has loaded."""
        result = self.send("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"cannot open {url}: {result['errorText']}")
        self.wait_for("document.readyState === 'complete'", timeout_s)

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (awaited if it is a promise)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"script failed: {text}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 20.0, interval_s: float = 0.1) -> Any:
        """Poll until ``expression`` is truthy in the page; returns its value."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                value = self.evaluate(expression)
            except BrowserError:
                value = None  # e.g. the page is between two documents
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"still false after {timeout_s}s: {expression}")
            time.sleep(interval_s)

    @property
    def url(self) -> str:
        return self.evaluate("location.href")

    def screenshot(self, path: str | Path) -> Path:
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path = Path(path)
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def close(self) -> None:
        self.browser.send("Target.closeTarget", {"targetId": self.target})
        self.browser.send("Target.disposeBrowserContext", {"browserContextId": self.context})
