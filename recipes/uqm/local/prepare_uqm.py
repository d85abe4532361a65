"""Cut The Ur-Quan Masters' voice clips into line utterances and write speaker-split manifests.

Usage (from the repository root)::

    python recipes/uqm/local/prepare_uqm.py --voice DATA/extract/voice --content DATA/extract/content \
        --out DATA [--jobs 2]

``--voice`` is the unzipped ``uqm-*-voice.uqm`` (``3dovoice/3dovoice.rmp``, ``3dovoice/<race>/``
with ``*.ogg``, ``<race>.ts`` and sometimes ``<race>.txt``), ``--content`` the unzipped
``uqm-*-content.uqm`` (``base/comm/<race>/<race>.txt``). The resource map ``3dovoice.rmp``
names, for each of the 27 characters, its dialogue text, audio folder and timing file.

A dialogue block is ``#(KEY)<TAB>clip.ogg`` followed by the lines spoken in the clip; its
``.ts`` entry ``#(KEY) 5387,3475,...`` gives each line's duration in ms but the last, which
takes the rest of the clip. Blocks without a clip are the player's lines (no audio).
Each line becomes one utterance: its stretch of the clip plus :data:`PAD_S` on each side,
16 kHz mono FLAC. The manifest keeps each line as written (``asr.data.read_manifest``
normalizes it: markup such as ``*time*`` or the Talking Pet's ``-<...>-`` goes with the
punctuation); ``text/*.txt`` hold the normalized lines.
Lines whose block's timing count does not fit its line count, whose stretch is shorter
than :data:`MIN_S` or longer than :data:`MAX_S`, or whose text normalizes to nothing are
skipped and counted.

Writes ``OUT/{train,dev,test}.jsonl`` (keys ``id audio duration text speaker``; and
``OUT/test400.jsonl``, 400 evenly spaced test lines (all four speakers), for quick runs;
``audio`` relative to OUT), ``OUT/text/{train,dev,test}.txt`` (normalized lines) and
``OUT/wav/<speaker>/*.flac``. The split is by speaker and fixed (:data:`SPLIT`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from asr.audio import SAMPLE_RATE, load_audio, write_audio
from asr.files import write_text
from asr.text import normalize

SPLIT = {"dev": ("shofixti", "supox"), "test": ("syreen", "spathi", "yehat", "thraddash")}  # train: the rest
PAD_S = 0.1  # audio kept before and after a line's stretch (the .ts cuts are approximate)
MIN_S, MAX_S = 0.5, 20.0  # line stretches outside this range are skipped
SMALL_TEST = 400  # test400.jsonl: evenly spaced test lines, a fixed subset for quick runs (the demo)
LICENCE = (
    "The Ur-Quan Masters voice acting and dialogue (Debian non-free uqm-voice, uqm-content) are "
    "licensed CC BY-NC-SA 2.5 (non-commercial, share alike): keep them and models trained on them "
    "out of commercial use and out of this repository."
)
_RMP = re.compile(r"^comm\.(\S+)\.dialogue\s*=\s*CONVERSATION:([^:\s]+):([^:\s]+):([^:\s]+)\s*$", re.M)
_KEY = re.compile(r"^#\((\w+)\)\s*(\S*)")


@dataclass(frozen=True)
class Line:
    speaker: str
    key: str  # dialogue block key
    index: int  # line number inside the block
    clip: Path
    start: float  # seconds into the clip
    end: float  # seconds; inf = to the end of the clip
    raw_text: str

    @property
    def id(self) -> str:
        return f"uqm-{self.speaker}-{self.key.lower()}-{self.index:02d}"


def speaker_of(name: str) -> str:
    """The speaker (folder) name of an ``.rmp`` entry: ``yehat.rebel`` → ``yehatrebels``."""
    return {"yehat.rebel": "yehatrebels"}.get(name, name)


def split_of(speaker: str) -> str:
    for part, speakers in SPLIT.items():
        if speaker in speakers:
            return part
    return "train"


def read_blocks(path: Path) -> dict[str, tuple[str, list[str]]]:
    """Dialogue blocks of a ``.txt``: ``{key: (clip file name or "", [lines])}``."""
    blocks: dict[str, tuple[str, list[str]]] = {}
    current = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = _KEY.match(line)
        if m:
            current = m.group(1)
            blocks[current] = (m.group(2), [])
        elif current is not None and line.strip():
            blocks[current][1].append(line.strip())
    return blocks


def read_timings(path: Path) -> dict[str, list[float]]:
    """Per-line durations (seconds) of a ``.ts`` file: ``{key: [seconds, ...]}``."""
    timings = {}
    for line in path.read_text(errors="replace").splitlines():
        m = re.match(r"^#\((\w+)\)\s*(.*)$", line.strip())
        if m:
            timings[m.group(1)] = [int(x) / 1000 for x in m.group(2).split(",") if x.strip()]
    return timings


def find_lines(voice: Path, content: Path, skipped: Counter) -> list[Line]:
    """Every spoken line the resource map points at, in map order."""
    rmp = voice / "3dovoice" / "3dovoice.rmp"
    if not rmp.is_file():
        raise SystemExit(f"{rmp}: no such file (is --voice the unzipped uqm-*-voice.uqm?)")

    def resolve(resource: str) -> Path:  # addons/3dovoice/x -> VOICE/3dovoice/x; base/... -> CONTENT/base/...
        return voice / resource.removeprefix("addons/") if resource.startswith("addons/") else content / resource

    lines = []
    entries = _RMP.findall(rmp.read_text(errors="replace"))
    if not entries:
        raise SystemExit(f"{rmp}: no 'comm.*.dialogue = CONVERSATION:...' entries")
    for name, text_res, audio_res, timing_res in entries:
        speaker = speaker_of(name)
        text_file, audio_dir, timing_file = resolve(text_res), resolve(audio_res), resolve(timing_res)
        for f in (text_file, timing_file):
            if not f.is_file():
                raise SystemExit(f"{f}: no such file (named by {rmp})")
        timings = read_timings(timing_file)
        for key, (clip, texts) in read_blocks(text_file).items():
            if not clip:
                continue  # the player's lines: no audio
            durations = timings.get(key)
            if durations is None or len(durations) != len(texts) - 1:
                skipped["block: timings do not match the line count"] += 1
                continue
            if not (audio_dir / clip).is_file():
                skipped["block: clip missing"] += 1
                continue
            start = 0.0
            for i, text in enumerate(texts):
                end = start + durations[i] if i < len(durations) else float("inf")
                lines.append(Line(speaker, key, i, audio_dir / clip, start, end, text))
                start = end
    return lines


def cut_clip(lines: list[Line], out: Path) -> list[tuple[Line, float, str] | str]:
    """Cut one clip's ``lines`` into 16 kHz FLAC files under ``out/wav/<speaker>``; for each
    line ``(line, duration, relative path)`` or the reason it was skipped."""
    audio = load_audio(lines[0].clip, SAMPLE_RATE)
    total = len(audio) / SAMPLE_RATE
    results: list[tuple[Line, float, str] | str] = []
    for line in lines:
        end = min(line.end, total)
        if end - line.start < MIN_S:
            results.append("line: shorter than 0.5 s (or past the clip's end)")
            continue
        if end - line.start > MAX_S:
            results.append(f"line: longer than {MAX_S:.0f} s")
            continue
        if not normalize(line.raw_text):
            results.append("line: no words after normalization")
            continue
        a = max(0, round((line.start - PAD_S) * SAMPLE_RATE))
        b = min(len(audio), round((end + PAD_S) * SAMPLE_RATE))
        rel = Path("wav") / line.speaker / f"{line.id}.flac"
        write_audio(out / rel, audio[a:b])
        results.append((line, (b - a) / SAMPLE_RATE, str(rel)))
    return results


def prepare(voice: Path, content: Path, out: Path, jobs: int) -> dict[str, dict[str, float]]:
    """Cut every line and write the manifests; returns per-part utterance counts and hours."""
    skipped: Counter = Counter()
    lines = find_lines(voice, content, skipped)
    by_clip: dict[Path, list[Line]] = {}
    for line in lines:
        by_clip.setdefault(line.clip, []).append(line)
    rows: dict[str, list[dict]] = {"train": [], "dev": [], "test": []}
    with ProcessPoolExecutor(max(1, jobs)) as pool:
        for results in pool.map(cut_clip, by_clip.values(), [out] * len(by_clip), chunksize=8):
            for r in results:
                if isinstance(r, str):
                    skipped[r] += 1
                    continue
                line, duration, rel = r
                rows[split_of(line.speaker)].append({
                    "id": line.id, "audio": rel, "duration": round(duration, 3), "text": line.raw_text,
                    "speaker": line.speaker,
                })  # fmt: skip
    (out / "text").mkdir(parents=True, exist_ok=True)
    summary = {}
    for part, part_rows in rows.items():
        _write_lines(out / f"{part}.jsonl", [json.dumps(r, ensure_ascii=False) for r in part_rows])
        _write_lines(out / "text" / f"{part}.txt", [normalize(r["text"]) for r in part_rows])
        speakers = sorted({r["speaker"] for r in part_rows})
        hours = sum(r["duration"] for r in part_rows) / 3600
        summary[part] = {"utterances": len(part_rows), "hours": round(hours, 2), "speakers": len(speakers)}
        print(f"{part}: {len(part_rows)} utterances, {hours:.2f} h, {len(speakers)} speakers ({', '.join(speakers)})")
    n = len(rows["test"])
    k = min(n, SMALL_TEST)
    small = [rows["test"][i * n // k] for i in range(k)]  # evenly spaced: every speaker
    _write_lines(out / f"test{SMALL_TEST}.jsonl", [json.dumps(r, ensure_ascii=False) for r in small])
    print(f"test{SMALL_TEST}: {len(small)} of the {n} test lines, evenly spaced")
    for reason, n in sorted(skipped.items()):
        print(f"skipped {n}: {reason}")
    summary["skipped"] = dict(skipped)
    (out / "prepare.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def _write_lines(path: Path, lines: list[str]) -> None:
    write_text(path, "".join(line + "\n" for line in lines))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--voice", type=Path, required=True, help="the unzipped uqm-*-voice.uqm")
    parser.add_argument("--content", type=Path, required=True, help="the unzipped uqm-*-content.uqm")
    parser.add_argument("--out", type=Path, required=True, help="data directory for wav/, manifests and text/")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    print(LICENCE)
    summary = prepare(args.voice, args.content, args.out, args.jobs)
    if not summary["train"]["utterances"] or not summary["test"]["utterances"]:
        print("error: no train or no test utterances were cut", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
