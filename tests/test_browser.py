"""The ``asr serve`` page in a real headless Chromium, a WAV file as its microphone.

Needs Debian's ``chromium`` (``make test`` installs it); skipped where it is missing.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path

import aiohttp
import numpy as np
import pytest
import soundfile as sf

from tests.conftest import free_port
from tests.test_serve import start_server
from tests.test_transcribe import TEXTS, clips

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


async def page_text(devtools: int, expression: str, want: str, timeout: float) -> str:
    """Evaluate ``expression`` in the page over the DevTools protocol until it contains ``want``."""
    deadline, text = time.monotonic() + timeout, ""
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{devtools}/json") as r:
            pages = [t for t in json.load(r) if t["type"] == "page"]
        async with aiohttp.ClientSession() as session, session.ws_connect(pages[0]["webSocketDebuggerUrl"]) as ws:
            while time.monotonic() < deadline:
                await ws.send_json({"id": 1, "method": "Runtime.evaluate", "params": {"expression": expression}})
                reply = await ws.receive_json()
                text = reply.get("result", {}).get("result", {}).get("value", "") or ""
                if want in text:
                    return text
                await asyncio.sleep(0.5)
    return text


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package")
def test_page_transcribes_a_fake_microphone(streaming_checkpoint: Path, tmp_path: Path) -> None:
    wav = tmp_path / "mic.wav"
    silence = np.zeros(16000, np.float32)
    sf.write(wav, np.concatenate([silence, clips()[1], silence, clips()[2], silence, silence]), 16000, "PCM_16")
    server, url = start_server(streaming_checkpoint)
    devtools = free_port()
    flags = ["--headless=new", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
             f"--remote-debugging-port={devtools}", "--use-fake-ui-for-media-stream",
             "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}%noloop",
             "--autoplay-policy=no-user-gesture-required"]  # fmt: skip
    browser = subprocess.Popen(
        [CHROMIUM, *flags, f"{url}/?autostart"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        for _ in range(100):  # DevTools up?
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{devtools}/json", timeout=1).close()
                break
            except OSError:
                time.sleep(0.2)
        expression = "Array.from(document.querySelectorAll('#finals p')).map(p => p.textContent).join('|')"
        text = asyncio.run(page_text(devtools, expression, TEXTS[2], timeout=60))
        status = asyncio.run(page_text(devtools, "document.getElementById('status').textContent", "", 5))
        assert text.split("|")[:2] == [TEXTS[1], TEXTS[2]], (text, status)
    finally:
        browser.terminate()
        browser.wait(10)
        server.terminate()
        server.wait(10)
