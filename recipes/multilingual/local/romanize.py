"""A manifest with its text romanized, for a warm start: the same audio, a small alphabet.

    python recipes/multilingual/local/romanize.py --scheme pinyin IN.jsonl OUT.jsonl

A CTC model over thousands of characters (Mandarin) sits on the all-blank plateau for most
of a short CPU budget; over the ~30 letters and tone digits of its romanization it learns in
minutes, as the alphabetic languages do. The recipe trains that model first and starts the
character model from it (``--train.init_from ... --train.init_head false``): the encoder
already hears syllables, only the output layer starts fresh.

Schemes: ``pinyin`` (Mandarin, pypinyin): each character its syllable and tone digit, ``5``
for the neutral tone, ``v`` for ü ("绿" → "lv4"); characters pypinyin does not know are
kept as they are. The other keys of each line are kept; ``audio`` is rewritten relative to
OUT's folder.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path


def pinyin(text: str) -> str:
    """``text``'s Han characters as toned pinyin syllables, separated by spaces."""
    from pypinyin import Style, lazy_pinyin

    return " ".join(lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True))


SCHEMES: dict[str, Callable[[str], str]] = {"pinyin": pinyin}


def romanize(src: Path, out: Path, scheme: str) -> int:
    """Write ``src``'s lines to ``out`` with romanized text; returns the number of lines."""
    convert = SCHEMES[scheme]
    rows = []
    for number, line in enumerate(src.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            text, audio = row["text"], Path(row["audio"])
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise ValueError(f"{src}:{number}: not a manifest line with text and audio ({e})") from None
        full = audio if audio.is_absolute() else src.parent / audio
        row["text"], row["audio"] = convert(text), os.path.relpath(full, out.parent)
        rows.append(json.dumps(row, ensure_ascii=False))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("".join(r + "\n" for r in rows), encoding="utf-8")
    tmp.replace(out)
    return len(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scheme", choices=sorted(SCHEMES), required=True)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    try:
        n = romanize(args.manifest, args.out, args.scheme)
    except (OSError, ValueError) as e:
        print(f"error: romanize: {e}", file=sys.stderr)
        return 1
    except ImportError as e:
        print(f"error: romanize: {args.scheme} needs {e.name} (run 'make setup')", file=sys.stderr)
        return 1
    print(f"romanized {n} lines ({args.scheme}) into {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
