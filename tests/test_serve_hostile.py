"""``asr serve`` against hostile clients: each case asserts the close code, its reason, what
the server still holds, and that a well-behaved client is served afterwards."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import numpy as np
import pytest

from tests.test_transcribe import TEXTS, clips
from tools.chromium import start_serve
from tools.serve_clients import Refused, hostile_frame, memory, pcm16, realtime_client, reset_peak

T = TypeVar("T")
LIMITS = [
    "--max-streams", "4", "--max-message", "64000", "--max-config", "20000", "--serve.max_hotwords", "3",
    "--config-timeout", "1.5", "--idle-timeout", "2", "--heartbeat", "1", "--serve.max_backlog", "1",
    "--serve.max_wait", "0", "--endpoint", "0.6",
]  # fmt: skip


@pytest.fixture(scope="module")
def server(streaming_checkpoint: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    proc, url = start_serve(["--model", str(streaming_checkpoint), *LIMITS])
    yield proc, url
    proc.terminate()
    proc.wait(10)


def run(coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
    """Run a client coroutine, bounded in seconds."""

    async def bounded() -> T:
        async with asyncio.timeout(timeout):
            return await coro

    return asyncio.run(bounded())


async def stats(url: str) -> dict:
    async with aiohttp.ClientSession() as session, session.get(url + "/stats") as response:
        return await response.json()


def assert_serves(url: str) -> None:
    """A well-behaved client gets both utterances right."""

    async def main() -> list[str]:
        async with aiohttp.ClientSession() as session:
            return [f.text for f in await realtime_client(session, url, clips()[:2], speed=0)]

    assert run(main()) == TEXTS[:2]


async def closed_after(url: str, *messages: bytes | str) -> tuple[int | None, str, list[dict]]:
    """Send ``messages``; the close code, reason and the text messages received before it."""
    async with aiohttp.ClientSession() as session, session.ws_connect(url + "/ws") as ws:
        for m in messages:
            await (ws.send_bytes(m) if isinstance(m, bytes) else ws.send_str(m))
        got = []
        while (msg := await ws.receive()).type == aiohttp.WSMsgType.TEXT:
            got.append(json.loads(msg.data))
        return ws.close_code, msg.extra if msg.type == aiohttp.WSMsgType.CLOSE else "", got


def test_frame_over_the_limit_refused_from_its_header(server: tuple[subprocess.Popen, str]) -> None:
    proc, url = server
    reset_peak(proc.pid)
    before = memory(proc.pid)
    code, reason, sent = hostile_frame(url, declared=400_000_000, send=50_000_000)
    after = memory(proc.pid)
    assert (code, reason) == (1009, "message over 64000 bytes")
    assert after["peak"] - before["rss"] < 10, (before, after, sent)
    assert run(closed_after(url, pcm16(np.zeros(40000, np.float32))))[:2] == (1009, "message over 64000 bytes")
    assert_serves(url)


def test_garbage_and_oversized_config(server: tuple[subprocess.Popen, str]) -> None:
    _, url = server
    cases = {
        "hello": (1003, 'text messages: {"type": "config", ...} first, or {"type": "end"}'),
        '{"type": "config", "hotwords": "x"}': (1003, "config: hotwords and extra_text must be lists"),
        json.dumps({"type": "config", "hotwords": ["a", "b", "c", "d"]}): (1003, "config: 4 hotwords, at most 3"),
        json.dumps({"type": "config", "extra_text": ["word " * 5000]}): (1009, "config message over 20000 bytes"),
        json.dumps({"type": "config", "extra_text": ["word " * 20000]}): (1009, "message over 64000 bytes"),
    }
    for message, (code, reason) in cases.items():
        got_code, got_reason, _ = run(closed_after(url, message))
        assert got_code == code and got_reason.startswith(reason), (message[:40], got_code, got_reason)
    assert_serves(url)


def test_binary_before_config(server: tuple[subprocess.Popen, str]) -> None:
    _, url = server
    config = json.dumps({"type": "config", "hotwords": ["hello"]})
    code, reason, got = run(closed_after(url, pcm16(clips()[0][:1600]), config))
    assert (code, reason) == (1003, "config must be the first message")
    assert [m["type"] for m in got] == ["partial"]
    assert_serves(url)


def test_ten_thousand_tiny_frames(server: tuple[subprocess.Popen, str]) -> None:
    """One sample a frame, sent without reading: queued frames are recognized together (one
    partial for them), the final comes, the audio all counted."""
    _, url = server
    before = run(stats(url))
    code, reason, got = run(closed_after(url, *[b"\x00\x00"] * 10_000, '{"type": "end"}', "bye"), timeout=60)
    after = run(stats(url))
    assert (code, reason[:13]) == (1003, "text messages")  # "bye" after the final
    kinds = [m["type"] for m in got]
    assert kinds[-1] == "final" and got[-1]["text"] == "" and set(kinds[:-1]) == {"partial"}
    assert len(kinds) - 1 < 10_000  # partials dropped, not the final
    assert after["audio"] - before["audio"] == pytest.approx(10_000 / 16000, abs=1e-3)
    assert_serves(url)


def test_fast_sender_queue_bounded_and_finals_kept(server: tuple[subprocess.Popen, str]) -> None:
    """Audio as fast as the socket takes it, the replies read only at the end: the server's
    queue stays within max_backlog (1 s) plus a message, and both finals arrive."""
    _, url = server
    silence = np.zeros(16000, np.float32)
    audio = np.concatenate([clips()[0], silence, clips()[1], silence] * 4)
    chunks = [pcm16(audio[i : i + 1600]) for i in range(0, len(audio), 1600)]
    code, _, got = run(closed_after(url, *chunks, '{"type": "end"}', "bye"), timeout=60)
    finals = [m["text"] for m in got if m["type"] == "final" and m["text"]]
    assert finals == [TEXTS[0], TEXTS[1]] * 4 and code == 1003
    assert 0 < run(stats(url))["peak_backlog"] <= 1.1
    assert_serves(url)


def test_client_gone_silent_mid_utterance(server: tuple[subprocess.Popen, str]) -> None:
    """Audio, then nothing and no close: the open utterance's final, then 1008 after the idle
    timeout (pings answered by the client do not count as activity)."""
    _, url = server
    chunks = [pcm16(clips()[0][i : i + 1600]) for i in range(0, len(clips()[0]), 1600)]
    code, reason, got = run(closed_after(url, *chunks), timeout=15)
    assert (code, reason) == (1008, "idle: no message for 2 s")
    assert [m["text"] for m in got if m["type"] == "final"] == [TEXTS[0]]
    assert_serves(url)


def test_silent_clients_lose_their_slots(server: tuple[subprocess.Popen, str]) -> None:
    """Four silent clients fill --max-streams 4: a fifth is refused with 1013; the four are
    closed after the config timeout and the slots serve again."""
    _, url = server

    async def main() -> tuple[list[tuple[int | None, str]], tuple[int | None, str], float]:
        async with aiohttp.ClientSession() as session:
            start = asyncio.get_running_loop().time()
            silent = [await session.ws_connect(url + "/ws") for _ in range(4)]
            closes = [asyncio.create_task(ws.receive()) for ws in silent]  # answers pings, sends nothing
            await asyncio.sleep(0.3)
            extra = await session.ws_connect(url + "/ws")
            refused = await extra.receive()
            messages = await asyncio.gather(*closes)
            waited = asyncio.get_running_loop().time() - start
            codes = [(ws.close_code, m.extra) for ws, m in zip(silent, messages, strict=True)]
            return codes, (extra.close_code, refused.extra), waited

    silent, refused, waited = run(main())
    assert refused == (1013, "too many streams (4 open)")
    assert silent == [(1008, "no config or audio message for 1.5 s")] * 4 and waited < 2.5
    assert_serves(url)


def test_more_clients_than_max_streams(server: tuple[subprocess.Popen, str]) -> None:
    """Six real-time clients at once on four slots: four are served, two refused with 1013."""
    _, url = server

    async def one(session: aiohttp.ClientSession) -> list[str] | tuple[int | None, str]:
        try:
            return [f.text for f in await realtime_client(session, url, clips()[:2], speed=2.0)]
        except Refused as e:
            return e.code, e.reason

    async def main() -> list:
        async with aiohttp.ClientSession() as session:
            return await asyncio.gather(*(one(session) for _ in range(6)))

    results = run(main())
    assert sorted(map(str, results)) == sorted(map(str, [TEXTS[:2]] * 4 + [(1013, "too many streams (4 open)")] * 2))
    assert run(stats(url))["refused"]["streams"] >= 2
    assert_serves(url)


def test_sigterm_drains_open_streams(streaming_checkpoint: Path) -> None:
    """SIGTERM with three streams mid-utterance: each gets its final and a 1001 close, new
    connections are refused, and the server exits 0."""
    proc, url = start_serve(["--model", str(streaming_checkpoint), "--drain-timeout", "5", "--endpoint", "0"])

    async def client(session: aiohttp.ClientSession, k: int, ready: asyncio.Event) -> tuple:
        async with session.ws_connect(url + "/ws") as ws:
            for i in range(0, len(clips()[k]), 1600):
                await ws.send_bytes(pcm16(clips()[k][i : i + 1600]))
                assert json.loads((await ws.receive()).data)["type"] == "partial"
            ready.set()
            got = []
            while (msg := await ws.receive()).type == aiohttp.WSMsgType.TEXT:
                got.append(json.loads(msg.data))
            return [m["text"] for m in got if m["type"] == "final"], ws.close_code, msg.extra

    async def main() -> list:
        async with aiohttp.ClientSession() as session:
            ready = [asyncio.Event() for _ in range(3)]
            tasks = [asyncio.create_task(client(session, k, ready[k])) for k in range(3)]
            for event in ready:
                await event.wait()
            proc.send_signal(signal.SIGTERM)
            return await asyncio.gather(*tasks)

    try:
        results = run(main())
        assert proc.wait(10) == 0
    finally:
        proc.kill()
    assert results == [([TEXTS[k]], 1001, "server shutting down") for k in range(3)]
    assert "draining 3 streams" in proc.stdout.read()
