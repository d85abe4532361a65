"""A test manifest of recorded speech from Asterisk's core sound prompts (one telephone speaker
per language, 8 kHz): each ``name: transcript`` line of the package's ``core-sounds-xx.txt``
becomes an utterance of ``SOUNDS/name.wav``.

    python local/prompts.py --text core-sounds-es.txt.gz --sounds DIR/es_MX_f_Allison --language es \
        --chars DATA/text/train.txt --out DATA/prompts.jsonl

Lines whose transcript is a sound description (``[tono simple]``) or empty after
normalization, whose audio is missing or does not open, or whose text holds a character
``--chars``' text never uses (the model's units could not write it) are skipped and counted.
"""

from __future__ import annotations

import argparse
import gzip
import re
import sys
from collections import Counter
from pathlib import Path

from asr.audio import AudioError, AudioStream
from asr.data import Utterance, write_manifest
from asr.text import normalize

BRACKETED = re.compile(r"\[[^\]]*\]")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", type=Path, required=True, help="core-sounds-xx.txt(.gz)")
    parser.add_argument("--sounds", type=Path, required=True, help="the language's folder of prompt wavs")
    parser.add_argument("--language", required=True)
    parser.add_argument("--chars", type=Path, required=True, help="text whose characters the model writes")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    opener = gzip.open if args.text.suffix == ".gz" else open
    with opener(args.text, "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    allowed = set(args.chars.read_text(encoding="utf-8"))
    utts, skipped = [], Counter()
    for line in lines:
        name, sep, raw = line.partition(":")
        if line.startswith(";") or not sep or not name.strip():
            continue
        name, raw = name.strip(), " ".join(BRACKETED.sub(" ", raw).split())  # as read back: without the brackets
        text = normalize(raw, args.language)
        if not text:
            skipped["no words (a sound description)"] += 1
            continue
        if not set(text) <= allowed:
            skipped["characters the training text never uses"] += 1
            continue
        audio = args.sounds / f"{name}.wav"
        try:
            with AudioStream(audio, f"prompt {name}") as stream:
                duration = stream.duration
        except AudioError:
            skipped["audio missing or unreadable"] += 1
            continue
        utts.append(Utterance(name.replace("/", "-"), audio.resolve(), duration, text, raw))
    # a sound listed twice with two transcripts (es: "digits/0: cero", "digits/0: diez") has no
    # trustworthy reference: both go; the same transcript twice is one prompt
    texts: dict[str, set[str]] = {}
    for u in utts:
        texts.setdefault(u.id, set()).add(u.text)
    ambiguous = {uid for uid, seen in texts.items() if len(seen) > 1}
    if ambiguous:
        skipped["one sound, two transcripts"] += sum(u.id in ambiguous for u in utts)
    unique: dict[str, Utterance] = {}
    for u in utts:
        if u.id not in ambiguous:
            unique.setdefault(u.id, u)
    utts = list(unique.values())
    if not utts:
        print(f"error: prompts: no usable prompt in {args.text}", file=sys.stderr)
        return 1
    write_manifest(args.out, utts)
    hours = sum(u.duration for u in utts) / 3600
    print(f"wrote {args.out}: {len(utts)} prompts ({hours:.2f} h); skipped "
          + (", ".join(f"{reason} {n}" for reason, n in skipped.most_common()) or "none"))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
