"""Sentences in one language from Debian text packages: fortune files and manual pages.

    python local/extract_text.py --language es --script latin --files 'DIR/usr/share/games/fortunes/es/*' \
        --out DATA/text --dev 200 --test 300 [--seed 0]

Fortune files (entries between ``%`` lines; the ``.u8`` copy read where there is one, the
``-- author`` lines dropped) and roff manual pages (``.gz`` too; macros and any span set in
bold or italics, i.e. commands and options, dropped with their sentence) are split into
sentences, cleaned (no code, URLs, digits inside words or letters of another script than
``--script``), normalized in the language (:func:`asr.text.normalize`) and deduplicated. Dev
and test are drawn first, and keep only sentences whose characters all occur in train, so a
model whose units are train's characters can write every reference. Writes ``train.txt``,
``dev.txt``, ``test.txt`` (one sentence a line) and prints the counts and what was rejected.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import random
import re
import sys
import unicodedata
from collections import Counter
from pathlib import Path

from asr.files import write_text
from asr.text import language, normalize

SCRIPTS = {"latin": "LATIN", "cyrillic": "CYRILLIC", "han": "CJK"}  # unicodedata name prefixes
ANSI = re.compile(r"\x1b\[[0-9;]*m")
ATTRIBUTION = re.compile(r"^\s*(--|―|—)")
SENTENCE_END = re.compile(r"(?<=[.!?;。！？；])\s*")
CODE = re.compile(r"[@#$%^*_=<>{}\[\]|\\/~`+]|https?:|www\.|\w\.\w")
ROFF_SPAN = re.compile(r"\\f[BI](.*?)(\\f[PR]|$)")
ROFF_ESCAPE = re.compile(r"\\(\(..|\[[^]]*\]|\*\(..|\*.|f.|[-&e ~|^,/]|.)")


def read_file(path: Path) -> str:
    """A text file (``.gz`` too) as UTF-8, else Latin-1."""
    raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def fortune_passages(text: str) -> list[str]:
    """The entries of a fortune file, each one line, without attribution lines."""
    out = []
    for entry in re.split(r"\n%\n", ANSI.sub("", text)):
        lines = [line.strip() for line in entry.splitlines() if line.strip() and not ATTRIBUTION.match(line)]
        out.append(" ".join(lines))
    return out


def roff_passages(text: str) -> list[str]:
    """The paragraphs of a manual page: text lines between macros; a bold or italic span
    (a command, an option, a file name) becomes a NUL that rejects its sentence."""
    out, para = [], []
    for line in text.splitlines():
        if line.startswith((".", "'")):
            if para:
                out.append(" ".join(para))
                para = []
            continue
        line = ROFF_SPAN.sub("\0", line)
        para.append(ROFF_ESCAPE.sub(lambda m: {"-": "-", "&": ""}.get(m.group(1), " "), line))
    if para:
        out.append(" ".join(para))
    return out


def files_of(patterns: list[str]) -> list[Path]:
    """The text files the globs name: no ``.dat`` index, and ``X`` left out where ``X.u8`` exists."""
    paths = sorted({Path(p) for pattern in patterns for p in glob.glob(pattern) if Path(p).is_file()})
    names = {str(p) for p in paths}
    return [p for p in paths if p.suffix != ".dat" and f"{p}.u8" not in names]


def clean(sentence: str, script: str) -> str | None:
    """The sentence if it is plain prose in ``script`` (a :data:`SCRIPTS` key), else None."""
    if "\0" in sentence or CODE.search(sentence) or re.search(r"\d[^\W\d_]|[^\W\d_]\d", sentence):
        return None
    letters = [c for c in sentence if c.isalpha()]
    if not letters or not all(unicodedata.name(c, "").startswith(SCRIPTS[script]) for c in letters):
        return None
    return sentence


def split(text: str) -> list[str]:
    return [s.strip() for s in SENTENCE_END.split(text) if s.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--language", required=True, help="ISO 639 code")
    parser.add_argument("--script", choices=sorted(SCRIPTS), required=True, help="the letters a sentence may hold")
    parser.add_argument("--files", nargs="+", required=True, help="glob patterns of fortune files or man pages")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--dev", type=int, default=200)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-words", type=int, default=3, help="(characters / 2 without spaces)")
    parser.add_argument("--max-words", type=int, default=20)
    args = parser.parse_args(argv)
    lang = language(args.language)
    files = files_of(args.files)
    if not files:
        print(f"error: extract_text: no text file matches {' '.join(args.files)}", file=sys.stderr)
        return 1
    rejected: Counter[str] = Counter()
    kept: dict[str, None] = {}
    for path in files:
        text = read_file(path)
        passages = roff_passages(text) if text.lstrip().startswith((".", "'\\\"")) else fortune_passages(text)
        for sentence in (s for p in passages for s in split(p)):
            if clean(sentence, args.script) is None:
                rejected["code or other script"] += 1
                continue
            normalized = normalize(sentence, lang)
            size = len(normalized.split()) if lang.spaces else len(normalized) / 2
            if not args.min_words <= size <= args.max_words:
                rejected["length"] += 1
            elif normalized in kept:
                rejected["duplicate"] += 1
            else:
                kept[normalized] = None
    sentences = list(kept)
    random.Random(args.seed).shuffle(sentences)
    if len(sentences) < 2 * (args.dev + args.test):
        print(f"error: extract_text: {len(sentences)} sentences from {len(files)} files: too few for "
              f"--dev {args.dev} --test {args.test}", file=sys.stderr)  # fmt: skip
        return 1
    held, train = sentences[: args.dev + args.test], sentences[args.dev + args.test :]
    chars = set("".join(train))
    writable = [s for s in held if set(s) <= chars]
    rejected["dev/test characters not in train"] = len(held) - len(writable)
    splits = {"train": train, "dev": writable[: args.dev], "test": writable[args.dev :]}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, lines in splits.items():
        write_text(args.out / f"{name}.txt", "".join(f"{s}\n" for s in lines))
    print(f"{len(files)} files: " + ", ".join(f"{name} {len(lines)}" for name, lines in splits.items()) + " sentences")
    print("rejected: " + ", ".join(f"{reason} {n}" for reason, n in rejected.most_common()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
