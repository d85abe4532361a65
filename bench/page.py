"""The ``asr serve`` page in headless Chromium: what a person at the browser waits for.

Test utterances of the recipe (each followed by ``--pause`` seconds of silence) are played
into the page three ways, with the recipe's streaming model, its LM and tuned weights:
through the fake microphone (real time), uploaded as one file (the page decodes it and sends
100 ms messages, one in flight), and, for reference, fed in 100 ms chunks to a
:class:`~asr.streaming.StreamingRecognizer` in this process (what ``asr stream --file``
does). Per way: WER of the lines against the references, wall time, speed (audio seconds per
wall second), and for the microphone the delay from the end of each utterance's audio to
its final line on the page (it includes the ``--endpoint`` silence the recognizer waits
for). One recognition thread throughout.

    python bench/page.py [--data data/synthetic-demo] [--model streaming] [--utts 12]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from results import model_parser, publish

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import asr
from asr.audio import load_audio
from asr.config import DecodingConfig, StreamConfig
from asr.data import read_manifest
from asr.metrics import score
from asr.streaming import StreamingRecognizer
from tools.chromium import Chromium, start_serve

SECTION = "## Live page: microphone, file upload and latency in the browser"
RATE = 16000
SESSIONS = "JSON.stringify(sessions)"


def lines_of(page: Chromium, session: int) -> list[dict]:
    got = json.loads(page.evaluate(SESSIONS))
    return got[session]["lines"] if len(got) > session else []


def main() -> None:
    parser = model_parser(__doc__)
    parser.set_defaults(model="streaming")
    parser.add_argument("--test", default="test.jsonl", help="manifest, relative to --data")
    parser.add_argument("--utts", type=int, default=12)
    parser.add_argument("--pause", type=float, default=1.5, help="silence after each utterance (s)")
    parser.add_argument("--beam", type=int, default=20)
    parser.add_argument("--endpoint", type=float, default=0.8, help="endpoint silence (s)")
    args = parser.parse_args()
    exp = args.data / "exp" / args.model
    tuned = exp / "decode" / "tune-lm-dev-mixed.json"
    utts = read_manifest(args.data / args.test)[: args.utts]
    pause = np.zeros(round(args.pause * RATE), np.float32)
    pieces, ends, t = [pause], [], args.pause
    for u in utts:
        audio = load_audio(u.audio)
        pieces += [audio, pause]
        t += len(audio) / RATE
        ends.append(t)
        t += args.pause
    audio = np.concatenate(pieces)
    seconds = len(audio) / RATE
    references = [u.text for u in utts]
    serve_args = ["--model", str(exp / "best.pt"), "--lm", str(args.data / "lm"), "--tuned", str(tuned),
                  "--beam", str(args.beam), "--endpoint", str(args.endpoint)]  # fmt: skip
    rows = []

    def row(way: str, lines: list[str], wall: float, delays: list[float] | None = None) -> None:
        wer = score([" ".join(references)], [" ".join(lines)]).wer
        delay = f"{np.median(delays):.2f} / {np.max(delays):.2f} s" if delays else "–"
        rows.append([way, f"{len(lines)}", f"{100 * wer:.1f} %", f"{wall:.1f} s", f"{seconds / wall:.1f}x", delay])
        print(rows[-1], flush=True)

    proc, url = start_serve(serve_args, timeout=120)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "speech.wav"
            sf.write(wav, audio, RATE, "PCM_16")
            with Chromium(f"{url}/?autostart", Path(tmp) / "profile", microphone=wav) as page:
                start = time.perf_counter()
                page.poll("document.getElementById('status').textContent", lambda s: s == "listening", 30)
                time.sleep(seconds + args.endpoint)
                page.evaluate("document.getElementById('stop').click()")
                page.poll("document.getElementById('status').textContent", lambda s: s == "stopped", 60)
                wall = time.perf_counter() - start
                mic = lines_of(page, 0)
                # the page's clock starts at its first 100 ms message: audio time 0.1 s
                delays = [line["received"] - (end - 0.1) for line, end in zip(mic, ends, strict=False)]
                row("microphone (real time)", [line["text"] for line in mic], wall, delays)

                start = time.perf_counter()
                page.set_files("#file", [wav])
                page.poll("document.getElementById('status').textContent", lambda s: s.startswith("transcribed"),
                          timeout=10 * seconds, interval=0.2)  # fmt: skip
                row("file upload", [line["text"] for line in lines_of(page, 1)], time.perf_counter() - start)
    finally:
        proc.terminate()
        proc.wait(10)

    torch.set_num_threads(1)
    tune = json.loads(tuned.read_text())
    model = asr.load_model(
        exp / "best.pt", "cpu", lm=args.data / "lm", decoding=DecodingConfig(beam_size=args.beam, alpha=tune["alpha"],
                                                                           beta=tune["beta"])
    )  # fmt: skip
    recognizer = StreamingRecognizer(model.loaded, model.decoder, StreamConfig(endpoint_silence=args.endpoint))
    start, texts = time.perf_counter(), []
    for i in range(0, len(audio), RATE // 10):
        texts += [r.text for r in recognizer.accept(audio[i : i + RATE // 10]) if r.text]
    last = recognizer.finalize()
    texts += [last.text] if last.text else []
    row("in process (asr stream --file)", texts, time.perf_counter() - start)

    caption = (
        f"Model `{args.model}` of {args.data}, beam {args.beam} + LM (α {tune['alpha']:.2f}, β {tune['beta']:.2f}), "
        f"endpoint {args.endpoint:g} s, one recognition thread; {len(utts)} utterances of {args.test} with "
        f"{args.pause:g} s pauses ({seconds:.0f} s of audio), headless Chromium on this machine. Delay: from the "
        "end of an utterance's audio to its final line on the page (median / max; includes the endpoint silence)."
    )
    header = ["way in", "lines", "WER", "wall time", "speed", "final delay"]
    publish(SECTION, caption, header, rows, args.out)


if __name__ == "__main__":
    main()
