"""A minimal headless Chromium driven over the Chrome DevTools Protocol (CDP).

No webdriver dependency: Chromium is started with ``--remote-debugging-port=0``, the port it
picked is read from ``DevToolsActivePort`` in its profile folder, and one page target is
driven over a websocket (the ``websockets`` package). Pages are single-page apps, so every
wait polls the DOM with a JavaScript predicate until it holds or a generous bound expires
(the bound is a failure limit, not a speed assertion).
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Self

CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def find_chromium() -> str | None:
    for name in CHROMIUM_CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


class BrowserError(AssertionError):
    """A page did not reach the expected state (raised as a test failure)."""


class Chromium:
    """``with Chromium(binary, profile_dir) as browser: browser.goto(url)``."""

    def __init__(self, binary: str, profile_dir: Path, *, width: int = 1400, height: int = 1000):
        self.binary = binary
        self.profile_dir = profile_dir
        self.size = (width, height)
        self.process: subprocess.Popen[bytes] | None = None
        self.socket: Any = None
        self._ids = itertools.count(1)

    def __enter__(self) -> Self:
        from websockets.sync.client import connect

        self.profile_dir.mkdir(parents=True, exist_ok=True)
        (self.profile_dir / "DevToolsActivePort").unlink(missing_ok=True)  # a previous run's
        self.process = subprocess.Popen(
            [
                self.binary,
                "--headless=new",
                "--no-sandbox",  # CI containers run as root
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile_dir}",
                f"--window-size={self.size[0]},{self.size[1]}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.profile_dir / "chromium.log").open("wb"),
        )
        try:
            port = self._debugging_port(timeout=60)
            page = self._page_target(port, timeout=30)
            self.socket = connect(page, max_size=None, open_timeout=30)
            self.send("Page.enable")
            self.send("Runtime.enable")
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self.socket is not None:
            self.socket.close()
            self.socket = None
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)

    def _debugging_port(self, timeout: float) -> int:
        marker = self.profile_dir / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                log = (self.profile_dir / "chromium.log").read_text(errors="replace")[-2000:]
                raise BrowserError(f"chromium exited with {self.process.returncode}: {log}")
            if marker.exists():
                first = marker.read_text().splitlines()[:1]
                if first and first[0].isdigit():
                    return int(first[0])
            time.sleep(0.1)
        raise BrowserError(f"chromium wrote no DevToolsActivePort within {timeout:.0f} s")

    @staticmethod
    def _page_target(port: int, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        targets: list[dict[str, Any]] = []
        while True:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/json/list", timeout=10
                ) as answer:
                    targets = json.load(answer)
            except OSError:  # not listening yet
                targets = []
            pages = [item for item in targets if item.get("type") == "page"]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            if time.monotonic() > deadline:
                raise BrowserError(f"chromium has no page target: {targets}")
            time.sleep(0.2)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One CDP command; events received meanwhile are dropped (waits poll the DOM)."""
        ident = next(self._ids)
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=60))
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"javascript error: {text}\n{expression}")
        return result.get("result", {}).get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def wait_for(self, predicate: str, *, what: str, timeout: float = 60.0) -> Any:
        """Poll ``predicate`` (a JavaScript expression) until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(predicate)
            except BrowserError as error:  # navigation in progress: context destroyed
                last_error = str(error)
                value = None
            if value:
                return value
            time.sleep(0.25)
        text = self.evaluate("document.body ? document.body.innerText.slice(0, 3000) : ''")
        raise BrowserError(
            f"timed out after {timeout:.0f} s waiting for {what}; {last_error}\npage text:\n{text}"
        )

    def text(self) -> str:
        return self.evaluate("document.body ? document.body.innerText : ''") or ""

    def type_text(self, text: str) -> None:
        """Type into the focused element as a user would (real input events for Vue)."""
        self.send("Input.insertText", text=text)

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data["data"]))
        return path
