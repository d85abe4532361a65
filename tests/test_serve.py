"""``asr serve``: many WebSocket clients at once, malformed messages, the stream cap."""

from __future__ import annotations

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import numpy as np
import pytest

from tests.test_transcribe import TEXTS, clips
from tools.chromium import start_serve

PAIRS = [(0, 1), (1, 2), (2, 3), (3, 0)]


def start_server(checkpoint: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    return start_serve(["--model", str(checkpoint), "--endpoint", "0.6", *extra])


@pytest.fixture()
def server(streaming_checkpoint: Path) -> Iterator[str]:
    proc, url = start_server(streaming_checkpoint, "--max-streams", "30", "--workers", "2")
    yield url
    proc.terminate()
    proc.wait(10)


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


async def good_client(session: aiohttp.ClientSession, url: str, pair: tuple[int, int]) -> list[str]:
    a, b = clips()[pair[0]], clips()[pair[1]]
    audio = np.concatenate([a, np.zeros(16000, np.float32), b, np.zeros(4000, np.float32)])
    finals: list[str] = []
    async with session.ws_connect(url + "/ws") as ws:
        for i in range(0, len(audio), 1600):
            await ws.send_bytes(pcm16(audio[i : i + 1600]))
            while True:  # one partial per audio message, finals before it
                msg = json.loads((await ws.receive()).data)
                if msg["type"] == "final":
                    finals.append(msg["text"])
                else:
                    break
        await ws.send_str(json.dumps({"type": "end"}))
        msg = json.loads((await ws.receive()).data)
        finals.append(msg["text"])
    return [f for f in finals if f]


async def bad_client(session: aiohttp.ClientSession, url: str, payload: bytes | str) -> int:
    async with session.ws_connect(url + "/ws") as ws:
        await ws.send_bytes(pcm16(clips()[0][:1600]))
        await ws.receive()
        await (ws.send_bytes(payload) if isinstance(payload, bytes) else ws.send_str(payload))
        msg = await ws.receive()
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
        return ws.close_code


def test_twenty_clients_and_malformed_ones(server: str) -> None:
    async def main() -> tuple[list[list[str]], list[int]]:
        async with aiohttp.ClientSession() as session:
            good = [good_client(session, server, PAIRS[i % 4]) for i in range(20)]
            bad = [bad_client(session, server, p) for p in (b"\x01\x02\x03", b"\x00" * 100_000, "hello", '{"type": 1}')]
            results = await asyncio.gather(*good, *bad)
        return results[:20], results[20:]

    finals, codes = asyncio.run(main())
    for i, got in enumerate(finals):
        a, b = PAIRS[i % 4]
        assert got == [TEXTS[a], TEXTS[b]], i
    assert codes == [1003, 1009, 1003, 1003]


def test_stream_cap_and_page(streaming_checkpoint: Path) -> None:
    proc, url = start_server(streaming_checkpoint, "--max-streams", "2")
    try:

        async def main() -> tuple[int | None, str, str]:
            async with aiohttp.ClientSession() as session:
                first = await session.ws_connect(url + "/ws")
                second = await session.ws_connect(url + "/ws")
                third = await session.ws_connect(url + "/ws")
                msg = await third.receive()
                assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                await first.close()
                await second.close()
                texts = []
                for path in ("/", "/static/capture.js", "/static/page.js"):
                    async with session.get(url + path) as response:
                        texts.append(await response.text())
                async with session.get(url + "/info") as info:
                    return third.close_code, *texts, await info.json()

        code, page, js, script, info = asyncio.run(main())
        assert code == 1013
        assert '<script src="/static/page.js">' in page and 'id="level"' in page and 'id="file"' in page
        assert "getUserMedia" in script and "/ws" in script and "/info" in script
        assert 'registerProcessor("pcm16-capture"' in js
        assert info == {
            "model": str(streaming_checkpoint),
            "architecture": "2x128 LSTM, lookahead 240 ms, 0.5 M parameters",
            "decoding": "greedy",
            "lm": None,
            "hotwords": 0,
            "words": 0,
            "calibrated": False,
            "sample_rate": 16000,
            "vad": "silero",
            "endpoint": 0.6,
        }
    finally:
        proc.terminate()
        proc.wait(10)


def test_per_connection_hotwords_and_extra_text(server: str) -> None:
    """A first ``config`` message gives this connection its own decoder: here, with no LM on
    the server, the extra text's n-gram becomes the LM and its words the lexicon."""

    async def configured(session: aiohttp.ClientSession, config: dict) -> tuple[dict, list[str]]:
        async with session.ws_connect(server + "/ws") as ws:
            await ws.send_str(json.dumps({"type": "config", **config}))
            ready = json.loads((await ws.receive()).data)
            audio = np.concatenate([clips()[0], np.zeros(16000, np.float32), clips()[1]])
            finals = []
            for i in range(0, len(audio), 3200):
                await ws.send_bytes(pcm16(audio[i : i + 3200]))
                while (msg := json.loads((await ws.receive()).data))["type"] == "final":
                    finals.append(msg["text"])
            await ws.send_str(json.dumps({"type": "end"}))
            finals.append(json.loads((await ws.receive()).data)["text"])
        return ready, [f for f in finals if f]

    async def refused(session: aiohttp.ClientSession, config: dict) -> tuple[int | None, str]:
        async with session.ws_connect(server + "/ws") as ws:
            await ws.send_str(json.dumps({"type": "config", **config}))
            msg = await ws.receive()
            return ws.close_code, msg.extra

    async def main() -> tuple:
        async with aiohttp.ClientSession() as session:
            good = await configured(
                session,
                {"hotwords": ["open the door", ["hello", 2.0]], "extra_text": ["Hello world.", "open the door"]},
            )
            bad = [
                await refused(session, c)
                for c in ({"hotwords": "hello"}, {"hotwords": [["hello", "x"]]}, {"colour": 1}, {"extra_text": ["!!"]})
            ]
            return good, bad

    (ready, finals), bad = asyncio.run(main())
    assert ready == {"type": "ready", "lm": "<extra text: 2 sentences>", "hotwords": 2, "words": 5}
    assert finals == [TEXTS[0], TEXTS[1]]
    assert [code for code, _ in bad] == [1003] * 4
    assert "must be lists" in bad[0][1] and "neither a phrase" in bad[1][1] and "unknown fields" in bad[2][1]
    assert "no extra text" in bad[3][1]
