"""``asr serve``: a web page that streams the microphone to a :class:`StreamingRecognizer`.

``GET /`` is the page (``asr/web/``: microphone or an uploaded file → 16 kHz mono int16 PCM
over the WebSocket; an input level meter, the partial hypothesis, final lines with their times
and confidence-shaded words, copy and download of the transcript); ``GET /info`` describes
the model, LM and settings the server runs (JSON: :func:`describe`); ``/ws`` is the
WebSocket. Protocol, client → server: optionally first a text message
``{"type": "config", "hotwords": ["phrase" or ["phrase", weight], ...], "extra_text": ["a
sentence", ...]}`` (this connection's hotwords, and sentences mixed into the LM as
``--extra-text`` does; answered ``{"type": "ready", "lm", "hotwords", "words"}``: the LM in
use, the hotword count and the lexicon's size), then binary messages of little-endian int16
samples at 16 kHz (at most ``max_message`` bytes each), and the text message
``{"type": "end"}`` to close the utterance; server → client: JSON text messages
``{"type": "partial", "text"}`` after each audio message and
``{"type": "final", "text", "start", "end", "words": [[word, start, end, confidence], ...]}``
at each endpoint and after ``end``.

Each connection has its own recognizer; recognition runs in a thread pool (torch releases
the GIL). Violations close the socket with a code: a binary message of odd length or an
unknown text message or a bad config 1003 (unsupported data, with the reason), an oversized
one 1009 (too big); when
``max_streams`` are open a new one is refused with 1013 (try again later).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web

from asr.lm import LMError
from asr.streaming import StreamingRecognizer, StreamResult
from asr.vad import FRAME_SECONDS

WEB = Path(__file__).with_name("web")
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
    def parse(cls, message: dict[str, Any]) -> ConnectionOptions:
        """Raises ValueError naming the field that is not what the protocol says."""
        unknown = set(message) - {"type", "hotwords", "extra_text"}
        if unknown:
            raise ValueError(f"config: unknown fields {sorted(unknown)}")
        hotwords, extra = message.get("hotwords", []), message.get("extra_text", [])
        if not isinstance(hotwords, list) or not isinstance(extra, list) or not all(isinstance(t, str) for t in extra):
            raise ValueError("config: hotwords and extra_text must be lists (extra_text of strings)")
        parsed: list[tuple[str, float | None]] = []
        for h in hotwords:
            if isinstance(h, str):
                parsed.append((h, None))
            elif isinstance(h, list) and len(h) == 2 and isinstance(h[0], str) and isinstance(h[1], (int, float)):
                parsed.append((h[0], float(h[1])))
            else:
                raise ValueError(f"config: hotword {h!r} is neither a phrase nor [phrase, weight]")
        return cls(tuple(parsed), tuple(extra))


class Server:
    """The app's state: a recognizer factory (given each connection's options), limits, and
    the streams open now."""

    def __init__(
        self,
        make_recognizer: Callable[[ConnectionOptions], StreamingRecognizer],
        max_streams: int = 16,
        max_message: int = 64000,
        workers: int = 2,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.make_recognizer, self.max_streams, self.max_message = make_recognizer, max_streams, max_message
        self.info = info or {}
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="asr-stream")
        self.open = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/", self.page)
        app.router.add_get("/info", self.describe)
        app.router.add_get("/ws", self.websocket)
        app.router.add_static("/static", WEB)
        app.on_shutdown.append(self._shutdown)
        return app

    async def _shutdown(self, app: web.Application) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def page(self, request: web.Request) -> web.FileResponse:
        return web.FileResponse(WEB / "index.html")

    async def describe(self, request: web.Request) -> web.Response:
        return web.json_response(self.info)

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)  # sizes are checked here, with our own close code
        await ws.prepare(request)
        if self.open >= self.max_streams:
            await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=b"too many streams")
            return ws
        self.open += 1
        try:
            await self._serve(ws)
        finally:
            self.open -= 1
        return ws

    async def _serve(self, ws: web.WebSocketResponse) -> None:
        loop = asyncio.get_running_loop()
        recognizer: StreamingRecognizer | None = None

        async def run(fn: Callable[..., Any], *args: Any) -> Any:
            return await loop.run_in_executor(self.pool, fn, *args)

        async for msg in ws:
            if recognizer is None:
                config = _message(msg) if msg.type == WSMsgType.TEXT else None
                if config is None or config.get("type") != "config":
                    recognizer = await run(self.make_recognizer, ConnectionOptions())
                else:
                    try:
                        recognizer = await run(self.make_recognizer, ConnectionOptions.parse(config))
                    except (ValueError, LMError) as e:  # ConfigError is a ValueError
                        await ws.close(code=WSCloseCode.UNSUPPORTED_DATA, message=str(e)[:120].encode())
                        return
                    await ws.send_str(json.dumps({"type": "ready", **_describe(recognizer)}))
                    continue
            if msg.type == WSMsgType.BINARY:
                data: bytes = msg.data
                if len(data) > self.max_message:
                    await ws.close(code=WSCloseCode.MESSAGE_TOO_BIG, message=b"audio message too big")
                    return
                if len(data) % 2:
                    await ws.close(code=WSCloseCode.UNSUPPORTED_DATA, message=b"odd byte count: not int16 PCM")
                    return
                samples = np.frombuffer(data, "<i2").astype(np.float32) / 32768
                finals, partial = await run(_accept, recognizer, samples)
                for result in finals:
                    await ws.send_str(_final(result))
                await ws.send_str(json.dumps({"type": "partial", "text": partial}))
            elif msg.type == WSMsgType.TEXT:
                if (_message(msg) or {}).get("type") != "end":
                    await ws.close(code=WSCloseCode.UNSUPPORTED_DATA, message=b'text messages: {"type": "end"}')
                    return
                await ws.send_str(_final(await run(recognizer.finalize)))
            elif msg.type == WSMsgType.ERROR:
                log.warning("websocket error: %s", ws.exception())
                return


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
    """Serve until interrupted; prints the address."""
    web.run_app(server.app(), host=host, port=port, print=lambda *a: print(f"asr serve: http://{host}:{port}/"))
