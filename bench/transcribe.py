"""File transcription speed, memory and accuracy: `asr.load_model(...).transcribe(path)`.

Uses a trained synthetic-recipe model and its LM (``make demo`` makes both), one thread:

1. Batch transcription of the test set, file by file through the segmenting path, greedy
   and beam search + LM (alpha/beta from the recipe's ``tune-lm`` result), fp32 and
   dynamic int8: real-time factor (processing time / audio time) and WER.
2. Long files of 10, 30 and 60 minutes, made by concatenating test utterances (cycled) with
   random 0.5–1.5 s pauses: each transcribed greedily in a fresh process that reports its
   time and peak RSS; the 60/10 minute time ratio (linear would be 6.0) and the WER of the
   long transcript against the per-utterance WER of the same utterances.

Prints the tables and writes them into bench/RESULTS.md.

    python bench/transcribe.py [--data data/synthetic-demo] [--model bilstm] [--minutes 10 30 60]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from results import model_parser, write_section

import asr
from asr.audio import load_audio
from asr.config import DecodingConfig
from asr.data import read_manifest
from asr.metrics import score

SECTION = "## Transcription: real-time factor, long files, int8"
PAUSE = (0.5, 1.5)


def batch_rows(args: argparse.Namespace, checkpoint: Path) -> tuple[list[str], dict[str, str]]:
    """Table rows for the test set, and the fp32 greedy transcript of each utterance id."""
    utts = read_manifest(args.data / "test.jsonl")
    audio_s = sum(u.duration for u in utts)
    refs = [u.text for u in utts]
    tuned_file = args.data / "exp" / args.model / "decode" / "tune-lm-dev-mixed.json"
    tuned = json.loads(tuned_file.read_text()) if tuned_file.is_file() else {"alpha": 0.5, "beta": 1.0}
    beam = DecodingConfig(beam_size=args.beam, alpha=tuned["alpha"], beta=tuned["beta"])
    rows, greedy = [], {}
    for int8 in (False, True):
        for method in ("greedy", "beam"):
            kwargs = {"lm": args.data / "lm", "decoding": beam} if method == "beam" else {}
            model = asr.load_model(checkpoint, device="cpu", int8=int8, **kwargs)
            model.transcribe(utts[0].audio)  # warm-up
            start = time.perf_counter()
            hyps = [model.transcribe(u.audio).text for u in utts]
            rtf = (time.perf_counter() - start) / audio_s
            wer = score(refs, hyps).wer
            if method == "greedy" and not int8:
                greedy = {u.id: h for u, h in zip(utts, hyps, strict=True)}
            how = "greedy" if method == "greedy" else f"beam {args.beam} + LM (α {beam.alpha:.2f}, β {beam.beta:.2f})"
            precision = "int8" if int8 else "fp32"
            print(f"{precision} {how}: RTF {rtf:.4f}, WER {100 * wer:.1f} %", flush=True)
            rows.append(f"| {precision} | {how} | {rtf:.4f} | {1 / rtf:.0f}× | {100 * wer:.1f} % |")
    return rows, greedy


def make_long_file(args: argparse.Namespace, minutes: float, out: Path) -> list[str]:
    """Concatenate test utterances (cycled) with random pauses into ``out``; their ids."""
    utts = read_manifest(args.data / "test.jsonl")
    rng = np.random.default_rng(int(minutes))
    ids, total, i = [], 0, 0
    target = minutes * 60 * 16000
    with sf.SoundFile(out, "w", 16000, 1, "PCM_16") as f:
        while total < target:
            u = utts[i % len(utts)]
            audio = load_audio(u.audio)
            pause = np.zeros(round(rng.uniform(*PAUSE) * 16000), np.float32)
            f.write(np.concatenate([audio, pause]))
            total += len(audio) + len(pause)
            ids.append(u.id)
            i += 1
    return ids


def child(path: str, checkpoint: str) -> None:
    """Transcribe ``path`` in this fresh process; print time, peak RSS and the text as JSON."""
    torch.set_num_threads(1)
    model = asr.load_model(checkpoint, device="cpu")
    start = time.perf_counter()
    result = model.transcribe(path)
    seconds = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds": seconds, "rss_mb": rss_mb, "duration": result.duration, "text": result.text}))


def long_rows(args: argparse.Namespace, checkpoint: Path, greedy: dict[str, str]) -> list[str]:
    texts = {u.id: u.text for u in read_manifest(args.data / "test.jsonl")}
    work = args.data / "bench-transcribe"
    work.mkdir(exist_ok=True)
    rows, base = [], None
    for minutes in args.minutes:
        path = work / f"long-{minutes:g}min.wav"
        ids = make_long_file(args, minutes, path)
        cmd = [sys.executable, __file__, "--child", str(path), "--checkpoint", str(checkpoint)]
        out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
        ref = " ".join(texts[i] for i in ids)
        long_wer = score([ref], [out["text"]]).wer
        utt_wer = score([texts[i] for i in ids], [greedy[i] for i in ids]).wer
        base = base or (minutes, out["seconds"])
        ratio = out["seconds"] / base[1]
        print(f"{minutes:g} min: {out['seconds']:.1f} s, peak RSS {out['rss_mb']:.0f} MB, WER {100 * long_wer:.1f} % "
              f"(per utterance {100 * utt_wer:.1f} %)", flush=True)  # fmt: skip
        rtf = out["seconds"] / out["duration"]
        rows.append(
            f"| {minutes:g} min ({len(ids)} utterances) | {out['seconds']:.1f} s | {rtf:.4f} "
            f"| {ratio:.2f}× (audio {minutes / base[0]:g}×) | {out['rss_mb']:.0f} MB | {100 * long_wer:.1f} % "
            f"| {100 * utt_wer:.1f} % | {100 * (long_wer - utt_wer):+.1f} |"
        )
        path.unlink()
    return rows


def main() -> None:
    parser = model_parser(__doc__)
    parser.add_argument("--beam", type=int, default=50)
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 30, 60])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.checkpoint)
    torch.set_num_threads(1)
    checkpoint = args.data / "exp" / args.model / "best.pt"
    batch, greedy = batch_rows(args, checkpoint)
    long = long_rows(args, checkpoint, greedy)
    n = len(read_manifest(args.data / "test.jsonl"))
    table = "\n".join(
        [
            f"Model `{args.model}` of {args.data}; `asr.load_model(...).transcribe(path)` file by file (segmenter "
            f"included), one torch thread; test set of {n} utterances.",
            "",
            "| precision | decoding | real-time factor | speed | test WER |",
            "|---|---|---|---|---|",
            *batch,
            "",
            "Long files (test utterances cycled, 0.5–1.5 s pauses), greedy fp32, each in a fresh process:",
            "",
            "| file | time | real-time factor | time vs first | peak RSS | WER | per-utterance WER | difference |",
            "|---|---|---|---|---|---|---|---|",
            *long,
        ]
    )
    print("\n" + table)
    write_section(SECTION, table, args.out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
