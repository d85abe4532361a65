"""Extract LibriSpeech archives and write one manifest per part.

``<part>.tar.gz`` (already MD5-checked by the download stage) is extracted under
``--corpus`` (it holds ``LibriSpeech/<part>/<speaker>/<chapter>/``); each chapter's
``<speaker>-<chapter>.trans.txt`` lists ``<utterance-id> TRANSCRIPT`` for the
``<utterance-id>.flac`` files beside it. Durations come from the FLAC headers (no
decoding); transcripts go through the project's normalizer (``asr.text.normalize``).
``--train-parts`` are also concatenated into ``train.jsonl``.

    python local/prepare.py --download DL --corpus CORPUS --out MANIFESTS --parts dev-clean ... \\
        --train-parts train-clean-100 ...
"""

from __future__ import annotations

import argparse
import sys
import tarfile
from pathlib import Path

from asr.audio import AudioError, audio_duration
from asr.data import Utterance, read_manifest, write_manifest
from asr.text import normalize


def extract(archive: Path, corpus: Path, part: str) -> Path:
    """``corpus/LibriSpeech/<part>``, extracting ``archive`` unless done before."""
    target = corpus / "LibriSpeech" / part
    marker = corpus / f".{part}.extracted"
    if marker.is_file() and target.is_dir():
        return target
    if not archive.is_file():
        raise SystemExit(f"error: {archive}: no such archive (run the download stage)")
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(corpus, filter="data")
    except (tarfile.TarError, OSError, EOFError) as e:
        raise SystemExit(f"error: {archive}: cannot extract ({e})") from None
    if not target.is_dir():
        raise SystemExit(f"error: {archive}: holds no LibriSpeech/{part}/ directory")
    marker.touch()
    return target


def part_utterances(root: Path) -> list[Utterance]:
    """Utterances of one extracted part, sorted by id."""
    utts = []
    transcripts = sorted(root.glob("*/*/*.trans.txt"))
    if not transcripts:
        raise SystemExit(f"error: {root}: no <speaker>/<chapter>/*.trans.txt transcripts")
    for trans in transcripts:
        for lineno, line in enumerate(trans.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            uid, _, text = line.partition(" ")
            audio = trans.parent / f"{uid}.flac"
            if not audio.is_file():
                raise SystemExit(f"error: {trans}:{lineno}: {audio.name} is missing")
            try:
                duration = audio_duration(audio)
            except AudioError as e:
                raise SystemExit(f"error: {e}") from None
            utts.append(Utterance(uid, audio, duration, normalize(text)))
    return sorted(utts, key=lambda u: u.id)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--download", type=Path, required=True, help="directory holding <part>.tar.gz")
    parser.add_argument("--corpus", type=Path, required=True, help="where the archives are extracted")
    parser.add_argument("--out", type=Path, required=True, help="manifest directory")
    parser.add_argument("--parts", nargs="+", required=True)
    parser.add_argument("--train-parts", nargs="+", required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for part in dict.fromkeys(args.parts + args.train_parts):
        root = extract(args.download / f"{part}.tar.gz", args.corpus, part)
        utts = part_utterances(root)
        write_manifest(args.out / f"{part}.jsonl", utts)
        hours = sum(u.duration for u in utts) / 3600
        print(f"{part}: {len(utts)} utterances, {hours:.2f} h -> {args.out / f'{part}.jsonl'}", flush=True)
    train = [u for part in args.train_parts for u in read_manifest(args.out / f"{part}.jsonl")]
    write_manifest(args.out / "train.jsonl", train)
    print(f"train ({' + '.join(args.train_parts)}): {len(train)} utterances -> {args.out / 'train.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
