"""Drive Debian's headless Chromium over the DevTools protocol, a WAV file as its microphone;
start ``asr serve`` for it to show (:func:`start_serve`).

Used by the ``asr serve`` page's browser test (tests/test_browser.py) and by
tools/serve_screenshot.py (the README's screenshot)::

    with Chromium(url, profile_dir, microphone=wav, downloads=folder) as page:
        page.poll("document.title", lambda title: bool(title), timeout=10)
        page.evaluate("document.getElementById('stop').click()")
        page.set_files("#file", [path])
        page.screenshot(Path("page.png"))
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


class BrowserError(RuntimeError):
    """Chromium did not start, a DevTools call failed, or the page threw."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_serve(arguments: list[str], timeout: float = 60) -> tuple[subprocess.Popen, str]:
    """``python -m asr.cli serve ARGUMENTS`` on a free port; the process and its URL once it
    accepts connections. Raises RuntimeError with its output if it exits first."""
    port = free_port()
    command = [sys.executable, "-m", "asr.cli", "serve", "--port", str(port), *arguments]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(proc.stdout.read() if proc.stdout else "asr serve exited") from None
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"asr serve did not start in {timeout:g} s")


class Chromium:
    """A headless Chromium showing ``url``: ``microphone`` is played (once, in real time) as
    the fake capture device, media permission is granted, files it downloads land in
    ``downloads``, and the page believes it has focus (so the clipboard works)."""

    def __init__(
        self,
        url: str,
        profile: Path,
        microphone: Path | None = None,
        downloads: Path | None = None,
        size: tuple[int, int] = (1000, 760),
    ) -> None:
        if CHROMIUM is None:
            raise BrowserError("no chromium on PATH (Debian: apt-get install chromium)")
        self.url, self.profile, self.microphone, self.downloads, self.size = url, profile, microphone, downloads, size
        self.loop = asyncio.new_event_loop()
        self.process: subprocess.Popen | None = None
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.ids = 0

    # ------------------------------------------------------------------------- lifetime

    def __enter__(self) -> Chromium:
        port = free_port()
        flags = [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={self.profile}",
            f"--remote-debugging-port={port}", f"--window-size={self.size[0]},{self.size[1]}",
            "--use-fake-ui-for-media-stream", "--autoplay-policy=no-user-gesture-required",
        ]  # fmt: skip
        if self.microphone is not None:
            flags += [
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={self.microphone}%noloop",
            ]
        self.process = subprocess.Popen(
            [CHROMIUM, *flags, "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            self.loop.run_until_complete(self._connect(port))
            if self.downloads is not None:
                self.call("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(self.downloads))
            self.call("Browser.grantPermissions", permissions=["clipboardReadWrite", "clipboardSanitizedWrite"])
            self.call("Emulation.setFocusEmulationEnabled", enabled=True)
            self.call("Page.enable")
            self.call("Page.navigate", url=self.url)
            self.poll("document.readyState", lambda state: state == "complete", timeout=30)
        except BaseException:
            self.__exit__()
            raise
        return self

    async def _connect(self, port: int) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=1) as r:
                    pages = [t for t in json.load(r) if t["type"] == "page"]
                if pages:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or (self.process and self.process.poll() is not None):
                raise BrowserError(f"chromium's DevTools did not come up on port {port}")
            await asyncio.sleep(0.2)
        self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(pages[0]["webSocketDebuggerUrl"], max_msg_size=0)

    def __exit__(self, *exc: object) -> None:
        async def close() -> None:
            if self.ws is not None:
                await self.ws.close()
            if self.session is not None:
                await self.session.close()

        self.loop.run_until_complete(close())
        self.loop.close()
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()

    # ------------------------------------------------------------------------- protocol

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command; its result (events in between are dropped)."""

        async def roundtrip() -> dict[str, Any]:
            assert self.ws is not None
            self.ids += 1
            await self.ws.send_json({"id": self.ids, "method": method, "params": params})
            while True:
                reply = json.loads((await self.ws.receive()).data)
                if reply.get("id") == self.ids:
                    if "error" in reply:
                        raise BrowserError(f"{method}: {reply['error'].get('message')}")
                    return reply.get("result", {})

        return self.loop.run_until_complete(asyncio.wait_for(roundtrip(), 60))

    def evaluate(self, expression: str, await_promise: bool = False) -> Any:
        """The JSON value of ``expression`` in the page (run as if from a click)."""
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=await_promise, userGesture=True
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"{expression[:80]}: {details.get('exception', {}).get('description', details)}")
        return result["result"].get("value")

    def poll(self, expression: str, until: Callable[[Any], bool], timeout: float, interval: float = 0.05) -> list[Any]:
        """Evaluate ``expression`` every ``interval`` seconds until ``until(value)``; every
        value seen, in order (the last one satisfies ``until`` unless ``timeout`` ran out)."""
        deadline, seen = time.monotonic() + timeout, []
        while True:
            seen.append(self.evaluate(expression))
            if until(seen[-1]) or time.monotonic() > deadline:
                return seen
            time.sleep(interval)

    def set_files(self, selector: str, paths: list[Path]) -> None:
        """Choose ``paths`` in the ``<input type=file>`` at ``selector`` (fires its change event)."""
        root = self.call("DOM.getDocument")["root"]["nodeId"]
        node = self.call("DOM.querySelector", nodeId=root, selector=selector)["nodeId"]
        if not node:
            raise BrowserError(f"no element matches {selector!r}")
        self.call("DOM.setFileInputFiles", nodeId=node, files=[str(p.resolve()) for p in paths])

    def screenshot(self, path: Path) -> None:
        """The page down to the end of its content, as a PNG."""
        height = self.evaluate("Math.ceil(document.body.getBoundingClientRect().bottom) + 16")
        clip = {"x": 0, "y": 0, "width": self.size[0], "height": max(height, 100), "scale": 1}
        data = self.call("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
