"""Clients of ``asr serve``'s WebSocket for its tests and bench/serve_load.py: a client that
streams utterances in real time and times each final, a raw-socket client that sends a frame
of any declared size, and the server process's memory from ``/proc``.

    async with aiohttp.ClientSession() as session:
        finals = await realtime_client(session, url, [audio1, audio2], speed=1.0)
    code, reason, sent = hostile_frame(url, declared=400_000_000)
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time
from dataclasses import dataclass
from urllib.parse import urlparse

import aiohttp
import numpy as np

RATE = 16000


def pcm16(audio: np.ndarray) -> bytes:
    """float32 samples in [-1, 1] as little-endian int16 bytes (the protocol's audio)."""
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


@dataclass(frozen=True)
class Final:
    """A final result as a client sees it: its text and ``latency``, the seconds from the
    ``end`` message after the utterance's last audio to the final's arrival."""

    text: str
    latency: float


class Refused(Exception):
    """The server closed the socket before a final: ``code`` and ``reason``."""

    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed {code}: {reason}")
        self.code, self.reason = code, reason


async def realtime_client(
    session: aiohttp.ClientSession,
    url: str,
    utterances: list[np.ndarray],
    chunk: float = 0.1,
    speed: float = 1.0,
) -> list[Final]:
    """Stream each utterance in ``chunk``-second messages at ``speed`` times real time (0: as
    fast as possible), each followed by ``{"type": "end"}``; the finals of the ``end``s with
    their latencies (endpoint finals inside an utterance are not counted). Raises Refused
    when the server closes the stream first."""
    step = round(chunk * RATE)
    finals: list[Final] = []
    closed: list[tuple[int | None, str]] = []
    async with session.ws_connect(url + "/ws") as ws:
        ended: list[float] = []  # when each end was sent, not yet answered

        async def receive() -> None:
            while True:
                msg = await ws.receive()
                if msg.type != aiohttp.WSMsgType.TEXT:
                    closed.append((ws.close_code, msg.extra if msg.type == aiohttp.WSMsgType.CLOSE else ""))
                    return
                data = json.loads(msg.data)
                if data["type"] == "final" and ended:
                    finals.append(Final(data["text"], time.monotonic() - ended.pop(0)))
                    if len(finals) == len(utterances):
                        return

        reader = asyncio.create_task(receive())
        start, sent = time.monotonic(), 0.0  # seconds of audio sent
        for audio in utterances:
            for i in range(0, len(audio), step):
                if reader.done():
                    break
                await ws.send_bytes(pcm16(audio[i : i + step]))
                sent += min(step, len(audio) - i) / RATE
                if speed > 0:
                    await asyncio.sleep(max(0.0, start + sent / speed - time.monotonic()))
            if reader.done():
                break
            ended.append(time.monotonic())
            await ws.send_str(json.dumps({"type": "end"}))
        await reader
    if len(finals) < len(utterances):
        raise Refused(*(closed[0] if closed else (None, "")))
    return finals


def _handshake(url: str) -> tuple[socket.socket, bytes]:
    """A raw TCP socket upgraded to a WebSocket at ``url``/ws, and the bytes read past the
    handshake."""
    parts = urlparse(url)
    sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=30)
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET /ws HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    response = b""
    while b"\r\n\r\n" not in response:
        data = sock.recv(4096)
        if not data:
            raise ConnectionError("the server closed during the handshake")
        response += data
    if not response.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"no upgrade: {response.splitlines()[0]!r}")
    return sock, response.split(b"\r\n\r\n", 1)[1]


def _close_frame(data: bytes) -> tuple[int | None, str] | None:
    """The code and reason of a server close frame at the start of ``data`` (unmasked, short)."""
    if len(data) < 2 or data[0] & 0x0F != 0x8:
        return None
    n = data[1] & 0x7F
    if len(data) < 2 + n:
        return None
    payload = data[2 : 2 + n]
    return (struct.unpack(">H", payload[:2])[0], payload[2:].decode()) if n >= 2 else (None, "")


def hostile_frame(
    url: str, declared: int, send: int | None = None, block: int = 1 << 20
) -> tuple[int | None, str, int]:
    """Open a WebSocket by hand and start one binary frame whose header declares ``declared``
    payload bytes, then send ``send`` (default: all of them) zero bytes in ``block``-byte
    writes until the server closes. Returns the close code and reason the server sent (None,
    "" if it sent none) and the payload bytes written before it stopped reading."""
    sock, buffer = _handshake(url)
    header = bytes([0x82, 0x80 | 127]) + struct.pack(">Q", declared) + os.urandom(4)  # FIN binary, masked, 64-bit
    sent, total, zeros = 0, declared if send is None else send, bytes(block)
    try:
        sock.sendall(header)
        sock.settimeout(0.0)
        while sent < total and _close_frame(buffer) is None:
            try:
                sent += sock.send(zeros[: min(block, total - sent)])
            except BlockingIOError:
                time.sleep(0.001)
            try:
                data = sock.recv(4096)
                if not data:
                    break
                buffer += data
            except BlockingIOError:
                pass
        sock.settimeout(10)
        while _close_frame(buffer) is None and (data := sock.recv(4096)):
            buffer += data
    except OSError:
        pass  # the server reset the connection: what it sent before is in buffer
    finally:
        sock.close()
    code, reason = _close_frame(buffer) or (None, "")
    return code, reason, sent


def memory(pid: int) -> dict[str, float]:
    """A process's resident memory now (``rss``) and at its peak (``peak``: since
    :func:`reset_peak`), in MB."""
    with open(f"/proc/{pid}/status") as f:
        fields = dict(line.split(":", 1) for line in f if ":" in line)
    return {"rss": int(fields["VmRSS"].split()[0]) / 1024, "peak": int(fields["VmHWM"].split()[0]) / 1024}


def reset_peak(pid: int) -> None:
    """Start a new peak (``VmHWM``) for ``pid`` at its current resident size (Linux)."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
