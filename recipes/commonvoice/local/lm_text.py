"""The LM text and the units of a Common Voice release. The LM text: every sentence of
``train.tsv``, ``validated.tsv`` and, where the release has it, ``validated_sentences.tsv``
(the sentence collection, read or not), normalized in the language, each once, but none that
dev or test holds. The units: every character of those and of dev's and test's sentences (a
model must be able to write every reference it is scored on; only the characters are shared).

    python local/lm_text.py --release cv-corpus-17.0/de --language de --out DATA/text

writes ``OUT/lm.txt``, ``OUT/dev.txt`` (dev's sentences, for perplexity) and ``OUT/units.txt``
(:func:`asr.text.units_from_texts`: the model's ``--vocabulary``) and prints how many
sentences each source gave and how many were held out.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path

from asr.files import write_text
from asr.text import normalize, units_from_texts

SOURCES = ("train.tsv", "validated.tsv", "validated_sentences.tsv")


def sentences(tsv: Path, language: str) -> Iterator[str]:
    """The non-empty normalized ``sentence`` column of a Common Voice TSV (ValueError naming
    the file when it has no such column)."""
    with tsv.open(encoding="utf-8") as f:
        header = f.readline().rstrip("\r\n").split("\t")
        if "sentence" not in header:
            raise ValueError(f"{tsv}:1: no 'sentence' column in the header")
        col = header.index("sentence")
        for line in f:
            fields = line.rstrip("\r\n").split("\t")
            if len(fields) > col and (text := normalize(fields[col], language)):
                yield text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--release", type=Path, required=True, help="one language of a release (train.tsv, ...)")
    parser.add_argument("--language", required=True, help="ISO 639 code the text is normalized in")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    args = parser.parse_args(argv)
    try:
        dev = list(sentences(args.release / "dev.tsv", args.language))
        held = set(dev) | set(sentences(args.release / "test.tsv", args.language))
        units = units_from_texts(held)
        kept: dict[str, None] = {}
        for name in SOURCES:
            if not (args.release / name).is_file():
                continue
            found = list(sentences(args.release / name, args.language))
            new = [t for t in found if t not in held and t not in kept]
            kept.update(dict.fromkeys(new))
            print(
                f"{name}: {len(found)} sentences, {len(new)} new, {sum(t in held for t in found)} held out (dev/test)"
            )
    except (OSError, UnicodeDecodeError, ValueError) as e:
        print(f"error: lm_text: {e}", file=sys.stderr)
        return 1
    if not kept:
        print(f"error: lm_text: no training sentence in {args.release} outside dev and test", file=sys.stderr)
        return 1
    args.out.mkdir(parents=True, exist_ok=True)
    write_text(args.out / "lm.txt", "".join(f"{t}\n" for t in kept))
    write_text(args.out / "dev.txt", "".join(f"{t}\n" for t in dev))
    units = units_from_texts([units, *kept])
    write_text(args.out / "units.txt", units)
    print(f"wrote {args.out / 'lm.txt'} ({len(kept)} sentences), {args.out / 'dev.txt'} ({len(dev)}) and "
          f"{args.out / 'units.txt'} ({len(units)} characters)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
