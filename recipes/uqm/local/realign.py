"""Re-cut the UQM lines where a trained model hears them, and drop lines whose text does not
match their audio (CTC forced alignment, ``asr.align``).

Usage (from the repository root)::

    python recipes/uqm/local/realign.py --model exp/bilstm/best.pt --voice DATA/extract/voice \
        --content DATA/extract/content --out DATA/aligned [--keep 0.95]

1. Each clip's whole text (its lines joined) is aligned to the whole clip: a line then runs
   from its first word's start to its last word's end (plus ``prepare_uqm.PAD_S`` each side)
   instead of the ``.ts`` durations. Clips the model cannot align keep their ``.ts`` cuts.
2. Each re-cut line is aligned again, alone, to its own text and to the text of another line
   of about the same length (a text known not to match). Its score (``asr.align``: ln P of the
   forced path minus the best path's, per frame) is kept when it beats the ``--keep``
   quantile of the mismatched texts' scores: a line is dropped when its own text fits its
   audio no better than other lines' texts usually do.

Writes ``OUT/{train,dev,test}.jsonl`` (with ``align_score``), ``OUT/wav/`` and
``OUT/realign.json`` (how many lines moved, how far, how many were dropped, the threshold).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np

from asr.align import AlignError, Alignment, align_batch, align_posteriors, targets_of
from asr.audio import load_audio
from asr.checkpoint import LoadedModel, load_model
from asr.data import bucket
from asr.text import normalize
from asr.transcribe import posteriors_of

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prepare_uqm import Line, cut_clip, find_lines, split_of  # the same folder


def realigned(lines: list[Line], alignment: Alignment) -> list[Line]:
    """``lines`` of one clip moved to where ``alignment`` (of their joined text) puts their
    words; a line with no words (nothing left after normalization) keeps its cut."""
    out, w = [], 0
    for line in lines:
        n = len(normalize(line.raw_text).split())
        words = alignment.words[w : w + n]
        w += n
        out.append(dataclasses.replace(line, start=words[0].start, end=words[-1].end) if words else line)
    return out


def recut_clips(loaded: LoadedModel, by_clip: dict[Path, list[Line]]) -> tuple[list[Line], dict[str, float]]:
    """Every clip's lines at their aligned positions, and how far the cut points moved."""
    rate = loaded.config.features.sample_rate
    moved: list[float] = []
    out: list[Line] = []
    failed = 0
    for clip, lines in by_clip.items():
        text = " ".join(line.raw_text for line in lines)
        result = align_batch(loaded, [(load_audio(clip, rate), text)], [str(clip)])[0]
        if isinstance(result, AlignError):
            failed += 1
            out += lines
            continue
        new = realigned(lines, result)
        moved += [abs(a.start - b.start) for a, b in zip(lines, new, strict=True) if a.start > 0]
        out += new
    stats = {"clips": len(by_clip), "clips_not_aligned": failed}
    if moved:
        stats |= {"start_moved_median_s": float(np.median(moved)), "start_moved_p90_s": float(np.quantile(moved, 0.9))}
    return out, stats


def line_scores(
    loaded: LoadedModel, audios: list[np.ndarray], texts: list[str], seed: int = 0
) -> tuple[list[float], list[float]]:
    """Each line's score with its own text, and with another line's text of about its length."""
    spf, blank = loaded.config.seconds_per_frame, loaded.vocab.blank
    rng = random.Random(seed)
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    rank = {i: r for r, i in enumerate(order)}
    rate = loaded.config.features.sample_rate
    seconds = [len(a) / rate for a in audios]
    own, other = [0.0] * len(audios), [0.0] * len(audios)
    for batch in bucket(range(len(audios)), seconds, max(200.0, max(seconds))):  # similar lengths: little padding
        for i, post in zip(batch, posteriors_of(loaded, [audios[i] for i in batch]), strict=True):
            neighbour = order[min(len(order) - 1, max(0, rank[i] + rng.choice((-2, -1, 1, 2))))]
            scores = []
            for text in (texts[i], texts[neighbour]):
                try:
                    scores.append(
                        align_posteriors(
                            post, targets_of(loaded.vocab, text, language=loaded.config.text.language), spf, blank
                        ).score
                    )
                except AlignError:
                    scores.append(-np.inf)
            own[i], other[i] = scores
    return own, other


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="a trained checkpoint that has heard UQM speech")
    parser.add_argument("--voice", type=Path, required=True)
    parser.add_argument("--content", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--keep", type=float, default=0.95, help="quantile of mismatched texts' scores to beat")
    args = parser.parse_args()
    loaded = load_model(args.model)
    by_clip: dict[Path, list[Line]] = {}
    for line in find_lines(args.voice, args.content, Counter()):
        by_clip.setdefault(line.clip, []).append(line)
    lines, stats = recut_clips(loaded, by_clip)
    print(f"re-cut {len(lines)} lines of {stats['clips']} clips: {json.dumps(stats)}")
    cut: list = []
    regrouped: dict[Path, list[Line]] = {}
    for line in lines:
        regrouped.setdefault(line.clip, []).append(line)
    for clip_lines in regrouped.values():
        cut += [r for r in cut_clip(clip_lines, args.out) if not isinstance(r, str)]
    rate = loaded.config.features.sample_rate
    audios = [load_audio(args.out / rel, rate) for _, _, rel in cut]
    own, other = line_scores(loaded, audios, [line.raw_text for line, _, _ in cut])
    threshold = float(np.quantile(np.array(other)[np.isfinite(other)], args.keep))
    rows: dict[str, list[dict]] = {"train": [], "dev": [], "test": []}
    dropped = {"train": 0, "dev": 0, "test": 0}
    for (line, duration, rel), score in zip(cut, own, strict=True):
        part = split_of(line.speaker)
        if score < threshold:
            dropped[part] += 1
            continue
        rows[part].append({"id": line.id, "audio": rel, "duration": round(duration, 3), "text": line.raw_text,
                           "speaker": line.speaker, "align_score": round(score, 4)})  # fmt: skip
    for part, part_rows in rows.items():
        (args.out / f"{part}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in part_rows))
        hours = sum(r["duration"] for r in part_rows) / 3600
        print(f"{part}: kept {len(part_rows)} lines ({hours:.2f} h), dropped {dropped[part]}")
    stats |= {"threshold": threshold, "keep_quantile": args.keep, "dropped": dropped,
              "own_median": float(np.median(own)), "other_median": float(np.median(other))}  # fmt: skip
    (args.out / "realign.json").write_text(json.dumps(stats, indent=1) + "\n")
    print(f"threshold {threshold:.3f} (the {args.keep:.2f} quantile of mismatched texts' scores); "
          f"median score {stats['own_median']:.3f} own text, {stats['other_median']:.3f} another line's")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
