"""The README's picture of the ``asr serve`` page: test utterances played into a headless
Chromium's fake microphone, the page captured while the last one is heard (its partial
hypothesis in grey, the level meter up, the earlier lines final).

    python tools/serve_screenshot.py --model data/synthetic-demo/exp/streaming/best.pt \\
        --manifest data/synthetic-demo/uqm/test400.jsonl --utts 3 [-- --lm data/synthetic-demo/lm ...]

Arguments after ``--`` go to ``asr serve`` (LM, tuned weights, decoding options).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asr.audio import load_audio
from asr.data import read_manifest
from tools.chromium import Chromium, start_serve

# finals so far, characters in the partial hypothesis
PROGRESS = "[document.querySelectorAll('.final').length, document.getElementById('partial').textContent.length]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="streaming checkpoint")
    parser.add_argument("--manifest", type=Path, required=True, help="utterances to play (JSONL)")
    parser.add_argument("--utts", type=int, default=3)
    parser.add_argument("--skip", type=int, default=0, help="utterances of the manifest to pass over first")
    parser.add_argument("--partial", type=int, default=6, help="characters of the last partial when captured")
    parser.add_argument("--out", type=Path, default=Path("docs/serve.png"))
    parser.add_argument("serve", nargs=argparse.REMAINDER, help="-- then asr serve options")
    args = parser.parse_args()
    extra = args.serve[1:] if args.serve[:1] == ["--"] else args.serve
    utts = read_manifest(args.manifest)[args.skip : args.skip + args.utts]
    pause = np.zeros(16000, np.float32)
    audio = np.concatenate([pause] + [x for u in utts for x in (load_audio(u.audio), pause)] + [pause])
    proc, url = start_serve(["--model", str(args.model), *extra], timeout=120)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "microphone.wav"
            sf.write(wav, audio, 16000, "PCM_16")
            with Chromium(f"{url}/?autostart", Path(tmp) / "profile", microphone=wav) as page:
                # the picture: the last utterance half heard (its partial in grey, the meter up)
                page.poll(
                    PROGRESS, lambda p: p[0] >= len(utts) - 1 and p[1] >= args.partial, timeout=len(audio) / 16000 + 60
                )
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(args.out)
                page.poll(PROGRESS, lambda p: p[0] >= len(utts), timeout=60, interval=0.5)
                lines = page.evaluate("Array.from(document.querySelectorAll('.final .text')).map(p => p.textContent)")
    finally:
        proc.terminate()
        proc.wait(10)
    print(json.dumps({"out": str(args.out), "references": [u.text for u in utts], "lines": lines}, indent=1))


if __name__ == "__main__":
    main()
