"""A real headless Chromium for the dashboard's test, driven over the Chrome DevTools Protocol.

The browser is Debian's ``chromium`` package (scripts/setup installs it where it can: as
root, with apt-get). ``executable_or_skip()`` finds it, skips the test with the reason where
it cannot be installed, and fails where it could have been. ``Chromium`` starts one browser
process on a temporary profile with ``--remote-debugging-port=0``, reads the port Chromium
chose from ``DevToolsActivePort``, and talks to its one page over a websocket
(``websocket-client``): load a URL, evaluate JavaScript, take a screenshot. ``close()`` kills
the process by its pid.
"""
from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import pytest

from jetmq.embedded import kill_trees
from jetmq.testing import wait_until

START_TIMEOUT_S = 30.0
CALL_TIMEOUT_S = 30.0
NAMES = ("chromium", "chromium-browser")


def executable_or_skip() -> str:
    """The path of Chromium; a skip where none can be installed, a failure where it could be."""
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        pytest.fail("Chromium is not installed though it can be here: scripts/setup installs it "
                    "(apt-get install -y chromium; its output is in .venv/.chromium.log)", pytrace=False)
    pytest.skip("no Chromium, and it cannot be installed here (needs root and apt-get: apt-get install chromium)")


class Chromium:
    """One headless Chromium process and its page, over the DevTools Protocol."""

    def __init__(self, executable: str, profile: Path, processes, width: int = 1280, height: int = 860):
        import websocket  # websocket-client, in the test extra

        profile.mkdir(parents=True, exist_ok=True)
        port_file = profile / "DevToolsActivePort"  # Chromium writes it once it listens
        port_file.unlink(missing_ok=True)
        self.width, self.height = width, height
        self.log_path = profile / "chromium.log"
        command = [executable, "--headless", "--remote-debugging-port=0", f"--user-data-dir={profile}",
                   f"--window-size={width},{height}", "--hide-scrollbars", "--no-first-run",
                   "--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
                   "--disable-component-update", "--disable-sync", "--mute-audio", "--disable-gpu",
                   "about:blank"]
        if os.geteuid() == 0:
            command.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
        with open(self.log_path, "wb") as log:
            self.process = processes.popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_until(lambda: port_file.exists() and port_file.read_text().strip() or self.process.poll() is not None,
                       START_TIMEOUT_S, lambda: f"Chromium did not open its DevTools port; see {self.log_path}")
            if self.process.poll() is not None:
                raise AssertionError(f"Chromium exited with code {self.process.returncode}: {self._log_tail()}")
            port = int(port_file.read_text().split()[0])
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as reply:
                pages = [t for t in json.load(reply) if t["type"] == "page"]
            assert pages, f"Chromium has no page to drive: {self._log_tail()}"
            self._socket = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=CALL_TIMEOUT_S,
                                                       suppress_origin=True)
        except BaseException:
            self.close()
            raise
        self._ids = itertools.count(1)
        self.call("Page.enable")
        self.call("Runtime.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-2000:]
        except OSError:
            return "(no log)"

    def call(self, method: str, **params):
        """One DevTools command; its result (events that arrive meanwhile are dropped)."""
        call_id = next(self._ids)
        self._socket.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise AssertionError(f"DevTools {method} failed: {message['error']}")
                return message["result"]

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression!r} raised in the page: {result['exceptionDetails']}")
        return result["result"].get("value")

    def load(self, url: str) -> None:
        """Navigate to ``url`` and wait until its document has loaded."""
        self.call("Page.navigate", url=url)
        wait_until(lambda: self.evaluate("document.readyState === 'complete' && location.href") == url,
                   CALL_TIMEOUT_S, lambda: f"{url} did not load; the page is at {self.evaluate('location.href')}")

    def screenshot(self, path: Path) -> None:
        """A PNG of the whole page, as tall as its content."""
        height = max(200, int(self.evaluate("Math.ceil(document.body.getBoundingClientRect().bottom)")))
        self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=height, deviceScaleFactor=1,
                  mobile=False)
        try:
            shot = self.call("Page.captureScreenshot", format="png")
        finally:
            self.call("Emulation.setDeviceMetricsOverride", width=self.width, height=self.height,
                      deviceScaleFactor=1, mobile=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

    def close(self) -> None:
        """Close the websocket and kill the browser and its helper processes, by pid."""
        socket = getattr(self, "_socket", None)
        if socket is not None:
            socket.close()
        if self.process.poll() is None:
            kill_trees([self.process.pid], timeout_s=10)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
