"""``asr serve``: a web page that streams the microphone to a :class:`StreamingRecognizer`.

``GET /`` is the page (``asr/web/``: microphone or an uploaded file → 16 kHz mono int16 PCM
over the WebSocket; an input level meter, the partial hypothesis, final lines with their times
and confidence-shaded words, copy and download of the transcript); ``GET /info`` describes
the model, LM and settings the server runs (JSON: :func:`describe`); ``GET /stats`` its load
now (:meth:`Server.stats`); ``/ws`` is the WebSocket.

Protocol, client → server: optionally first a text message ``{"type": "config", "hotwords":
["phrase" or ["phrase", weight], ...], "extra_text": ["a sentence", ...]}`` (this connection's
hotwords, and sentences mixed into the LM as ``--extra-text`` does; answered ``{"type":
"ready", "lm", "hotwords", "words"}``: the LM in use, the hotword count and the lexicon's
size), then binary messages of little-endian int16 samples at 16 kHz, and the text message
``{"type": "end"}`` to close the utterance; server → client: ``{"type": "final", "text",
"start", "end", "words": [[word, start, end, confidence], ...]}`` at each endpoint and after
``end``, and ``{"type": "partial", "text"}`` after the audio it has recognized (audio messages
that queued behind a busy recognizer are recognized together and answered by one partial:
partials may be dropped, finals never are).

Everything a client can make the server hold is bounded (:class:`~asr.config.ServeConfig`):
- bytes: a frame over ``max(max_message, max_config)`` is refused by the WebSocket reader from
  its header, before any payload is buffered (close 1009); an audio message over
  ``max_message`` or a config over ``max_config`` bytes, ``max_hotwords`` hotwords or
  ``max_extra_text`` sentences is refused too (1009, 1003);
- queued audio: a stream's messages wait in a queue of at most ``max_backlog`` seconds of
  audio; past it the server stops reading that socket (TCP pushes back on the client);
- time: no first message within ``config_timeout`` seconds, or none for ``idle_timeout``
  seconds after (the open utterance's final is sent first), closes with 1008; so does a
  client that reads nothing for ``idle_timeout`` seconds; pings every ``heartbeat`` seconds
  drop a peer that stopped answering;
- streams: past ``max_streams``, or while recognition work waits more than ``max_wait``
  seconds for a thread (the server is past capacity), new streams are refused with 1013.
Other violations close with 1003 (unsupported data) and a reason. On SIGTERM the server stops
accepting, gives each open stream the final of the audio it has received and a 1001 close
within ``drain_timeout`` seconds, and exits 0.

Each connection has its own recognizer; recognition runs in a thread pool (torch releases
the GIL).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web

from asr.config import ServeConfig
from asr.lm import LMError
from asr.streaming import StreamingRecognizer, StreamResult
from asr.vad import FRAME_SECONDS

WEB = Path(__file__).with_name("web")
# closes (idle, drain) that send the open utterance's final first
FINAL_FIRST = (WSCloseCode.POLICY_VIOLATION, WSCloseCode.GOING_AWAY)
WAIT_WINDOW = 2.0  # seconds of finished recognition work whose queueing delay judges the load
log = logging.getLogger("asr.serve")


def _final(result: StreamResult) -> str:
    words = [[w.word, round(w.start, 3), round(w.end, 3), round(w.confidence, 3)] for w in result.words]
    span = {"start": round(result.start, 3), "end": round(result.end, 3)}
    return json.dumps({"type": "final", "text": result.text, **span, "words": words})


@dataclass(frozen=True)
class ConnectionOptions:
    """What a connection's ``config`` message asks for: ``hotwords`` as ``(phrase, weight or
    None for the default)`` and ``extra_text`` sentences."""

    hotwords: tuple[tuple[str, float | None], ...] = ()
    extra_text: tuple[str, ...] = ()

    @classmethod
    def parse(
        cls, message: dict[str, Any], max_hotwords: int | None = None, max_extra_text: int | None = None
    ) -> ConnectionOptions:
        """Raises ValueError naming the field that is not what the protocol says, or the cap
        (``max_hotwords``, ``max_extra_text``: None for none) it exceeds."""
        unknown = set(message) - {"type", "hotwords", "extra_text"}
        if unknown:
            raise ValueError(f"config: unknown fields {sorted(unknown)}")
        hotwords, extra = message.get("hotwords", []), message.get("extra_text", [])
        if not isinstance(hotwords, list) or not isinstance(extra, list) or not all(isinstance(t, str) for t in extra):
            raise ValueError("config: hotwords and extra_text must be lists (extra_text of strings)")
        if max_hotwords is not None and len(hotwords) > max_hotwords:
            raise ValueError(f"config: {len(hotwords)} hotwords, at most {max_hotwords}")
        if max_extra_text is not None and len(extra) > max_extra_text:
            raise ValueError(f"config: {len(extra)} extra_text sentences, at most {max_extra_text}")
        parsed: list[tuple[str, float | None]] = []
        for h in hotwords:
            if isinstance(h, str):
                parsed.append((h, None))
            elif isinstance(h, list) and len(h) == 2 and isinstance(h[0], str) and isinstance(h[1], (int, float)):
                parsed.append((h[0], float(h[1])))
            else:
                raise ValueError(f"config: hotword {h!r} is neither a phrase nor [phrase, weight]")
        return cls(tuple(parsed), tuple(extra))


class _Socket(web.WebSocketResponse):
    """aiohttp's WebSocket, whose own closes (a frame over ``max_msg_size``, refused from its
    header; text that is not UTF-8; a protocol error) carry a reason: aiohttp sends none."""

    def __init__(self, reasons: dict[int, str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._reasons = reasons

    async def close(self, *, code: int = WSCloseCode.OK, message: bytes = b"", drain: bool = True) -> bool:
        return await super().close(code=code, message=message or self._reasons.get(code, "").encode(), drain=drain)


class Load:
    """The recognition threads and what they have done: each job's queueing delay (the load
    signal: :meth:`wait`), audio and compute seconds."""

    def __init__(self, workers: int) -> None:
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="asr-stream")
        self.lock = threading.Lock()
        self.queued: deque[float] = deque()  # submit times of jobs not started (the pool is FIFO)
        self.waits: deque[tuple[float, float]] = deque()  # (finish time, queueing delay) of recent jobs
        self.audio = self.compute = 0.0

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on a recognition thread."""
        submitted = time.monotonic()
        with self.lock:
            self.queued.append(submitted)

        def job() -> tuple[Any, float, float]:
            started = time.monotonic()
            with self.lock:
                self.queued.popleft()
            return fn(*args), started - submitted, time.monotonic() - started

        out, wait, took = await asyncio.get_running_loop().run_in_executor(self.pool, job)
        now = time.monotonic()
        self.waits.append((now, wait))
        self._forget(now)
        self.compute += took
        return out

    def _forget(self, now: float) -> None:
        while self.waits and self.waits[0][0] < now - WAIT_WINDOW:
            self.waits.popleft()

    def wait(self) -> float:
        """Seconds recognition work waits for a thread now: the longest delay of the jobs
        finished in the last ``WAIT_WINDOW`` seconds or of the oldest job still queued."""
        now = time.monotonic()
        self._forget(now)
        with self.lock:
            oldest = now - self.queued[0] if self.queued else 0.0
        return max([oldest, *(w for _, w in self.waits)])


class _Gone(Exception):
    """The client went away, or stopped reading: nothing more can be sent."""


class Stream:
    """One connection: :meth:`read` takes messages off the socket into a queue of at most
    ``max_backlog`` seconds of audio, :meth:`run` recognizes what the queue holds."""

    def __init__(self, server: Server, ws: _Socket, request: web.Request) -> None:
        self.server, self.ws, self.request, self.cfg = server, ws, request, server.config
        # ("config", options), ("audio", samples), ("end",), ("close", code, reason), ("gone",)
        self.items: deque[tuple[Any, ...]] = deque()
        self.arrived = asyncio.Event()
        self.room = asyncio.Event()  # the queue has room for more audio
        self.room.set()
        self.queued = 0  # samples in items
        self.limit = round(self.cfg.max_backlog * server.rate)
        self.recognizer: StreamingRecognizer | None = None
        self.heard = False  # audio since the last final

    def put(self, item: tuple[Any, ...]) -> None:
        self.items.append(item)
        if item[0] == "audio":
            self.queued += len(item[1])
            self.server.peak_backlog = max(self.server.peak_backlog, self.queued / self.server.rate)
            if self.queued >= self.limit:
                self.room.clear()
        self.arrived.set()

    async def _next(self) -> tuple[Any, ...]:
        """The next item; queued audio messages joined into one."""
        while not self.items:
            self.arrived.clear()
            await self.arrived.wait()
        item = self.items.popleft()
        if item[0] != "audio":
            return item
        parts = [item[1]]
        while self.items and self.items[0][0] == "audio":
            parts.append(self.items.popleft()[1])
        self.queued -= sum(len(p) for p in parts)
        if self.queued < self.limit:
            self.room.set()
        return ("audio", np.concatenate(parts) if len(parts) > 1 else parts[0])

    async def read(self) -> None:
        """Messages to items until the client closes, breaks a rule or falls silent."""
        first, last = True, time.monotonic()
        while True:
            if not self.room.is_set():
                await self.room.wait()  # backpressure: the socket is not read while the queue is full
                last = time.monotonic()
            timeout = self.cfg.config_timeout if first else self.cfg.idle_timeout
            try:
                async with asyncio.timeout(last + timeout - time.monotonic() if timeout else None):
                    msg = await self.ws.receive()  # pongs come and go inside: they do not count as activity
            except TimeoutError:
                what = "no config or audio message" if first else "idle: no message"
                self.put(("close", WSCloseCode.POLICY_VIOLATION, f"{what} for {timeout:g} s"))
                return
            if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                if msg.type == WSMsgType.ERROR:  # aiohttp's reader refused a frame and closed (_Socket's reason)
                    code = getattr(msg.data, "code", WSCloseCode.ABNORMAL_CLOSURE)
                    self.server.closes[code] += 1
                self.put(("gone",))
                return
            item = self._parse(msg, first)
            first, last = False, time.monotonic()
            self.put(item)
            if item[0] == "close":
                return

    def _parse(self, msg: Any, first: bool) -> tuple[Any, ...]:
        refuse = WSCloseCode.UNSUPPORTED_DATA
        if msg.type == WSMsgType.BINARY:
            data: bytes = msg.data
            if len(data) > self.cfg.max_message:
                return ("close", WSCloseCode.MESSAGE_TOO_BIG, f"audio message over {self.cfg.max_message} bytes")
            if len(data) % 2:
                return ("close", refuse, "odd byte count: not int16 PCM")
            return ("audio", np.frombuffer(data, "<i2").astype(np.float32) / 32768)
        message = _message(msg) if msg.type == WSMsgType.TEXT else None
        kind = (message or {}).get("type")
        if kind == "end":
            return ("end",)
        if kind != "config":
            return ("close", refuse, 'text messages: {"type": "config", ...} first, or {"type": "end"}')
        if not first:
            return ("close", refuse, "config must be the first message")
        if len(msg.data.encode()) > self.cfg.max_config:
            return ("close", WSCloseCode.MESSAGE_TOO_BIG, f"config message over {self.cfg.max_config} bytes")
        try:
            return ("config", ConnectionOptions.parse(message, self.cfg.max_hotwords, self.cfg.max_extra_text))
        except ValueError as e:
            return ("close", refuse, str(e))

    async def send(self, text: str) -> None:
        """Send, or raise _Gone when the client has gone or read nothing for idle_timeout."""
        try:
            async with asyncio.timeout(self.cfg.idle_timeout or None):
                await self.ws.send_str(text)
        except TimeoutError:
            log.info("a client read nothing for %g s: dropped", self.cfg.idle_timeout)
            if self.request.transport is not None:
                self.request.transport.abort()
            raise _Gone from None
        except ConnectionError:
            raise _Gone from None

    async def close(self, code: int, reason: str) -> None:
        self.server.closes[code] += 1
        async with asyncio.timeout(5):
            await self.ws.close(code=code, message=reason.encode()[:123].decode(errors="ignore").encode())

    async def run(self) -> None:
        """Recognize the queue until the client leaves or a close is due."""
        reader = asyncio.create_task(self.read())
        try:
            await self._recognize()
        except (_Gone, TimeoutError):
            pass
        finally:
            reader.cancel()
            if not self.ws.closed and self.request.transport is not None:
                self.request.transport.abort()

    async def _start(self, options: ConnectionOptions) -> StreamingRecognizer:
        return await self.server.load.run(self.server.make_recognizer, options)

    async def _recognize(self) -> None:
        load = self.server.load
        while True:
            item = await self._next()
            kind = item[0]
            if kind == "gone":
                return
            if kind == "config":
                try:
                    self.recognizer = await self._start(item[1])
                except (ValueError, LMError) as e:  # ConfigError is a ValueError
                    return await self.close(WSCloseCode.UNSUPPORTED_DATA, str(e))
                await self.send(json.dumps({"type": "ready", **_describe(self.recognizer)}))
                continue
            if self.recognizer is None and kind in ("audio", "end"):
                self.recognizer = await self._start(ConnectionOptions())
            if kind == "audio":
                finals, partial = await load.run(_accept, self.recognizer, item[1])
                load.audio += len(item[1]) / self.server.rate
                self.heard = True
                for result in finals:
                    await self.send(_final(result))
                await self.send(json.dumps({"type": "partial", "text": partial}))
            elif kind == "end" or (kind == "close" and self.heard and item[1] in FINAL_FIRST):
                await self.send(_final(await load.run(self.recognizer.finalize)))
                self.heard = False
            if kind == "close":
                return await self.close(item[1], item[2])

    def drain(self) -> None:
        """SIGTERM: recognize what is queued, send the final, close with 1001."""
        self.put(("close", WSCloseCode.GOING_AWAY, "server shutting down"))


class Server:
    """The app's state: a recognizer factory (given each connection's options), the limits
    (:class:`~asr.config.ServeConfig`), the streams open now and what was refused."""

    def __init__(
        self,
        make_recognizer: Callable[[ConnectionOptions], StreamingRecognizer],
        config: ServeConfig | None = None,
        info: dict[str, Any] | None = None,
        rate: int = 16000,
    ) -> None:
        self.make_recognizer, self.config, self.rate = make_recognizer, config or ServeConfig(), rate
        self.info = info or {}
        self.load = Load(self.config.workers)
        self.streams: dict[Stream, asyncio.Task] = {}
        self.refused = {"streams": 0, "capacity": 0, "draining": 0}
        self.closes: Counter[int] = Counter()
        self.limit = max(self.config.max_message, self.config.max_config)  # the WebSocket reader's frame limit
        self.reasons = {  # of the closes aiohttp's reader makes itself
            WSCloseCode.MESSAGE_TOO_BIG: f"message over {self.limit} bytes",
            WSCloseCode.INVALID_TEXT: "text message is not UTF-8",
            WSCloseCode.PROTOCOL_ERROR: "WebSocket protocol error",
        }
        self.peak_backlog = 0.0
        self.draining = False

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.page)
        app.router.add_get("/info", self.describe)
        app.router.add_get("/stats", self.report)
        app.router.add_get("/ws", self.websocket)
        app.router.add_static("/static", WEB)
        app.on_shutdown.append(self._drain)
        app.on_cleanup.append(self._cleanup)
        return app

    async def _drain(self, app: web.Application) -> None:
        self.draining = True
        if not self.streams:
            return
        print(f"asr serve: draining {len(self.streams)} streams", flush=True)
        for stream in self.streams:
            stream.drain()
        _, late = await asyncio.wait(list(self.streams.values()), timeout=self.config.drain_timeout)
        if late:
            print(f"asr serve: {len(late)} streams not drained in {self.config.drain_timeout:g} s", flush=True)

    async def _cleanup(self, app: web.Application) -> None:
        self.load.pool.shutdown(wait=False, cancel_futures=True)

    async def page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB / "index.html")

    async def describe(self, request: web.Request) -> web.Response:
        return web.json_response(self.info)

    def stats(self) -> dict[str, Any]:
        """The load now: open ``streams``, those ``refused`` (too many streams, past capacity,
        while draining), server ``closes`` by code, queued audio now and at its peak
        (``backlog``, ``peak_backlog``: seconds, the most one stream held), recognition
        ``wait`` (s), and the ``audio`` and ``compute`` seconds recognized so far."""
        backlog = max((s.queued for s in self.streams), default=0) / self.rate
        return {
            "streams": len(self.streams),
            "refused": dict(self.refused),
            "closes": {str(code): n for code, n in sorted(self.closes.items())},
            "backlog": round(backlog, 3),
            "peak_backlog": round(self.peak_backlog, 3),
            "wait": round(self.load.wait(), 4),
            "audio": round(self.load.audio, 3),
            "compute": round(self.load.compute, 3),
        }

    async def report(self, request: web.Request) -> web.Response:
        return web.json_response(self.stats())

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = _Socket(self.reasons, max_msg_size=self.limit, heartbeat=self.config.heartbeat or None)
        await ws.prepare(request)
        refusal = self._refusal()
        if refusal is not None:
            self.refused[refusal[0]] += 1
            code = WSCloseCode.GOING_AWAY if refusal[0] == "draining" else WSCloseCode.TRY_AGAIN_LATER
            await ws.close(code=code, message=refusal[1].encode())
            return ws
        stream = Stream(self, ws, request)
        self.streams[stream] = asyncio.current_task()  # type: ignore[assignment]
        try:
            await stream.run()
        finally:
            del self.streams[stream]
        return ws

    def _refusal(self) -> tuple[str, str] | None:
        """Why a new stream is refused now (a ``refused`` key and the reason), or None."""
        if self.draining:
            return "draining", "server shutting down"
        if len(self.streams) >= self.config.max_streams:
            return "streams", f"too many streams ({len(self.streams)} open)"
        wait = self.load.wait()
        if self.config.max_wait and wait > self.config.max_wait:
            return "capacity", f"server at capacity (recognition {wait:.1f} s behind)"
        return None


def _message(msg: Any) -> dict[str, Any] | None:
    """A text message's JSON object, or None."""
    try:
        data = json.loads(msg.data)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _describe(recognizer: StreamingRecognizer) -> dict[str, Any]:
    decoder = recognizer.decoder
    if decoder is None:
        return {"lm": None, "hotwords": 0, "words": 0}
    lm = str(decoder.lm.path) if decoder.lm is not None else None
    return {"lm": lm, "hotwords": len(decoder.hotwords), "words": len(decoder.words or [])}


def describe(model: Path | str, recognizer: StreamingRecognizer) -> dict[str, Any]:
    """What ``GET /info`` tells the page: the checkpoint ``model`` and its architecture, the
    decoding (greedy, or beam + LM with its weights), the LM, hotword count, lexicon size,
    whether word confidences are calibrated, and the endpointing settings."""
    loaded, decoder = recognizer.loaded, recognizer.decoder
    cfg = loaded.config.model
    lookahead_ms = round(1000 * cfg.lookahead * loaded.config.seconds_per_frame * cfg.output_frames)
    parameters = loaded.model.num_parameters()
    architecture = (
        f"{cfg.num_layers}x{cfg.hidden_size} {cfg.cell.upper()}, lookahead {lookahead_ms} ms, "
        f"{parameters / 1e6:.1f} M parameters"
    )
    if decoder is None:
        decoding = "greedy"
    else:
        d = decoder.config
        decoding = f"beam {d.beam_size}" + (f" + LM (alpha {d.alpha:g}, beta {d.beta:g})" if decoder.lm else "")
    return {
        "model": str(model),
        "architecture": architecture,
        "decoding": decoding,
        **_describe(recognizer),
        "calibrated": decoder is not None and decoder.calibration is not None,
        "sample_rate": recognizer.rate,
        "vad": recognizer.vad_cfg.vad,
        "endpoint": recognizer.endpoint_frames * FRAME_SECONDS,
    }


def _accept(recognizer: StreamingRecognizer, samples: np.ndarray) -> tuple[list[StreamResult], str]:
    return recognizer.accept(samples), recognizer.partial()


def run_server(server: Server, host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM (then drain: see the module docstring); prints the address."""
    web.run_app(
        server.app(),
        host=host,
        port=port,
        shutdown_timeout=1.0,  # the streams had drain_timeout in on_shutdown
        print=lambda *a: print(f"asr serve: http://{host}:{port}/", flush=True),
    )
