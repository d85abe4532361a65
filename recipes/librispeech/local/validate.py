"""The recipe's last stage: check what the earlier stages wrote, and say what is wrong.

python local/validate.py --data DATA --subset 960
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.checkpoint import CheckpointError, load_model
from asr.data import ManifestError, read_manifest
from asr.lm import KenLM, LMError
from asr.shards import read_shard_index

SETS = ["dev-clean", "dev-other", "test-clean", "test-other"]


def problems(data: Path, models: list[str]) -> list[str]:
    found = []
    for name in [*SETS, "train"]:
        try:
            utts = read_manifest(data / "manifests" / f"{name}.jsonl")
            missing = [u.audio for u in utts if not u.audio.is_file()]
            if missing:
                found.append(f"{name}: {len(missing)} audio files missing, e.g. {missing[0]}")
            if any(not u.text for u in utts):
                found.append(f"{name}: utterances with empty transcripts")
        except ManifestError as e:
            found.append(str(e))
    try:
        train = read_manifest(data / "manifests" / "train.jsonl")
        shards = read_shard_index(data / "shards")
        if len(shards) != len(train):
            found.append(f"{data / 'shards'}: {len(shards)} utterances, the train manifest has {len(train)}")
    except ManifestError as e:
        found.append(str(e))
    try:
        KenLM(data / "lm")
    except LMError as e:
        found.append(str(e))
    for model in models:
        try:
            load_model(data / "exp" / model / "avg.pt")
        except CheckpointError as e:
            found.append(str(e))
        for s in SETS:
            for suffix in ("", "-lm"):
                wer = data / "exp" / model / "decode" / f"wer-{s}{suffix}.json"
                if not wer.is_file():
                    found.append(f"{wer}: missing")
    results = data / "RESULTS.md"
    if not results.is_file() or not all(s in results.read_text() for s in SETS):
        found.append(f"{results}: missing or without every evaluation set")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--models", nargs="+", default=["bilstm", "streaming"])
    args = parser.parse_args()
    found = problems(args.data, args.models)
    for p in found:
        print(f"error: {p}", file=sys.stderr)
    if found:
        return 1
    print(f"validated {args.data}: manifests, shards, LM, models, decodes and RESULTS.md are all in place")
    return 0


if __name__ == "__main__":
    sys.exit(main())
