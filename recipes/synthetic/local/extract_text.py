"""Collect English sentences from Debian text packages and split them by sentence.

Usage (from the repository root)::

    python recipes/synthetic/local/extract_text.py --out data/synthetic/text \
        [--seed 0] [--dev 500] [--test 500] [--min-words 3] [--max-words 20]

Sources, in priority order (a sentence found in two sources is credited to the first):

- ``wordnet``: the quoted usage examples in the glosses of ``/usr/share/wordnet/data.*``
  (wordnet-base); clean everyday English, so dev and test are drawn from these only;
- ``fortunes``: ``/usr/share/games/fortunes/*`` entries (fortunes, fortunes-min) split
  into sentences, without the ASCII-art and non-English files;
- ``jargon``: prose paragraphs of the Jargon File (jargon-text);
- ``devil``: definitions from Bierce's Devil's Dictionary (dict-devil).

Every sentence is normalized with :func:`asr.text.normalize`, filtered (see
:func:`clean_sentence`) and deduplicated on its normalized form, so a dev or test sentence
can never reappear in train. Writes ``train.txt``, ``dev.txt``, ``test.txt`` (one
normalized sentence a line; train shuffled so any prefix mixes the sources) and
``sources.tsv`` (``split<TAB>source<TAB>sentence``) under ``--out``.

A missing package is skipped with a warning; finding no sentence at all is an error.
"""

from __future__ import annotations

import argparse
import gzip
import random
import re
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from asr.files import write_text
from asr.text import normalize

SPLITS = ("train", "dev", "test")
HELDOUT_SOURCE = "wordnet"
# Fortune files that are pictures or not English.
SKIP_FORTUNE_FILES = frozenset({"ascii-art", "translate-me"})


@dataclass(frozen=True)
class SourcePaths:
    """Where each text package lives; tests point these at small fake files."""

    wordnet_dir: Path = Path("/usr/share/wordnet")
    fortunes_dir: Path = Path("/usr/share/games/fortunes")
    jargon: Path = Path("/usr/share/doc/jargon-text/jargon.txt.gz")
    devil: Path = Path("/usr/share/dictd/devil.dict.dz")


@dataclass
class Corpus:
    """Normalized sentences per split, each with its source (``wordnet``, ``fortunes/law`` ...)."""

    splits: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    rejected: Counter[str] = field(default_factory=Counter)


def _warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr)


def _read_text(path: Path) -> str:
    """Text of a plain or gzip/dictzip file, undecodable bytes replaced."""
    if path.suffix in {".gz", ".dz"}:
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
            return f.read()
    return path.read_text(encoding="utf-8", errors="replace")


# --------------------------------------------------------------------------- splitting

_ABBREVIATION_LIST = """mr mrs ms dr st jr sr prof vs etc eg ie no vol pp inc ltd co gen col lt
sgt rev capt mt ft approx dept est fig al"""
_ABBREVIATIONS = frozenset(_ABBREVIATION_LIST.split())
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]\u201d\u2019]*\s+(?=[\"'(\[\u201c\u2018]?[A-Z0-9])")


def split_sentences(text: str) -> list[str]:
    """Split prose into sentences at ``.!?`` followed by a capital, sparing abbreviations.

    >>> split_sentences("Dr. Smith left. He was tired! Why? J. R. Bob came.")
    ['Dr. Smith left.', 'He was tired!', 'Why?', 'J. R. Bob came.']
    """
    text = " ".join(text.split())
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        words = text[start : match.start() + 1].split()
        last = words[-1].rstrip(".").lower() if words else ""
        if last.replace(".", "") in _ABBREVIATIONS or (len(last) == 1 and last.isalpha()):
            continue
        sentences.append(text[start : match.end()].strip())
        start = match.end()
    sentences.append(text[start:].strip())
    return [s for s in sentences if s]


_CODE_LINE = re.compile(r"[{}<>|\\_=#$^~]|;\s*$|->|\(\)|^\s*[-+*/]{2,}|\t\s*\S.*\t")


def is_prose_line(line: str) -> bool:
    """False for code, ASCII art, headers and other lines that are not running text."""
    visible = line.strip()
    if not visible or _CODE_LINE.search(visible):
        return False
    letters = sum(c.isalpha() or c.isspace() for c in visible)
    return letters / len(visible) >= 0.8


def prose_sentences(lines: Iterable[str]) -> Iterator[str]:
    """Sentences of paragraphs made of prose lines; a blank or non-prose line ends one."""
    paragraph: list[str] = []
    for line in [*lines, ""]:
        if is_prose_line(line):
            paragraph.append(line.strip())
        elif paragraph:
            yield from split_sentences(" ".join(paragraph))
            paragraph = []


# --------------------------------------------------------------------------- sources

_WORDNET_EXAMPLE = re.compile(r'"([^"]+)"')


def wordnet_sentences(wordnet_dir: Path) -> Iterator[tuple[str, str]]:
    """Usage examples quoted in the glosses of ``data.{noun,verb,adj,adv}``."""
    for pos in ("noun", "verb", "adj", "adv"):
        path = wordnet_dir / f"data.{pos}"
        if not path.is_file():
            _warn(f"{path}: missing (install wordnet-base); skipped")
            continue
        for line in _read_text(path).splitlines():
            if line[:1].isdigit() and " | " in line:
                for example in _WORDNET_EXAMPLE.findall(line.split(" | ", 1)[1]):
                    yield "wordnet", example


def fortune_sentences(fortunes_dir: Path) -> Iterator[tuple[str, str]]:
    """Sentences of fortune entries (``%``-separated), attributions and art dropped."""
    if not fortunes_dir.is_dir():
        _warn(f"{fortunes_dir}: missing (install fortunes / fortunes-min); skipped")
        return
    for path in sorted(fortunes_dir.iterdir()):
        if not path.is_file() or path.suffix in {".dat", ".u8"} or path.name in SKIP_FORTUNE_FILES:
            continue
        for entry in re.split(r"^%\s*$", _read_text(path), flags=re.MULTILINE):
            lines = [ln for ln in entry.splitlines() if not ln.strip().startswith(("--", "\u2014"))]
            for sentence in prose_sentences(lines):
                yield f"fortunes/{path.name}", sentence


def jargon_sentences(path: Path) -> Iterator[tuple[str, str]]:
    """Definition prose of the Jargon File: headwords, quotes and lists (indented) dropped."""
    if not path.is_file():
        _warn(f"{path}: missing (install jargon-text); skipped")
        return
    lines = []
    for line in _read_text(path).splitlines():
        body = line[3:] if line.startswith("   ") and not line.startswith("    ") else ""
        if body.startswith(":"):  # ':headword: pos.' line
            body = ""
        body = re.sub(r"\[[^\]]*\]", " ", body)  # etymology and cross-references in brackets
        lines.append(re.sub(r"\{([^}]*)\}", r"\1", body))
    for sentence in prose_sentences(lines):
        yield "jargon", re.sub(r"^\d+\.\s+", "", sentence)


_DEVIL_HEADWORD = re.compile(r"^[A-Z][A-Z'\- ]+,\s*(?:[a-z]+\.\s*)+")


def devil_sentences(path: Path) -> Iterator[tuple[str, str]]:
    """Definitions of the Devil's Dictionary; the indented verse and quotes are dropped."""
    if not path.is_file():
        _warn(f"{path}: missing (install dict-devil); skipped")
        return
    lines, started = [], False
    for line in _read_text(path).splitlines():
        started = started or bool(_DEVIL_HEADWORD.match(line))
        if not started or line.startswith(" "):
            lines.append("")
        else:
            lines.append(_DEVIL_HEADWORD.sub("", line))
    for sentence in prose_sentences(lines):
        yield "devil", sentence


def collect_sentences(paths: SourcePaths) -> Iterator[tuple[str, str]]:
    """Raw ``(source, sentence)`` pairs from every source, WordNet first."""
    yield from wordnet_sentences(paths.wordnet_dir)
    yield from fortune_sentences(paths.fortunes_dir)
    yield from jargon_sentences(paths.jargon)
    yield from devil_sentences(paths.devil)


# --------------------------------------------------------------------------- cleaning

_BAD_CHARS = re.compile(r"[@#$^*_=<>|\\/{}\[\]~]|\w\.\w|https?:|www\.")
_ACRONYM = re.compile(r"[A-Z]{2}")
_VOWEL = re.compile(r"[aeiouy]")
_LONE_LETTERS = frozenset("aio")


def clean_sentence(
    raw: str, *, min_words: int = 3, max_words: int = 20, needs_end: bool = True
) -> tuple[str | None, str]:
    """Normalize ``raw`` if it reads unambiguously aloud; return ``(text or None, reason)``.

    Rejected (the reason is the second element): characters of code, URLs or file names;
    acronyms (two capitals in a row: TTS spells them, the transcript would not); prose
    without a final ``.!?`` when ``needs_end``; a word count outside
    ``[min_words, max_words]``; a word without a vowel (``dr``, ``mr``, ``hmm``: read
    differently from how it is written) or a lone letter other than ``a``/``i``/``o``.
    """
    raw = raw.strip()
    if _BAD_CHARS.search(raw):
        return None, "symbols"
    if _ACRONYM.search(raw):
        return None, "acronym"
    letters = sum(c.isalpha() or c.isspace() for c in raw)
    if letters < 0.85 * len(raw):
        return None, "non_letters"
    if needs_end and not re.search(r"[.!?][\"')\u201d\u2019]*$", raw):
        return None, "fragment"
    text = normalize(raw)
    words = text.split()
    if not min_words <= len(words) <= max_words:
        return None, "length"
    for word in words:
        if len(word) == 1 and word not in _LONE_LETTERS:
            return None, "letters"
        if not _VOWEL.search(word) or len(word) > 20:
            return None, "odd_word"
    return text, "ok"


# --------------------------------------------------------------------------- splitting


def build_corpus(
    pairs: Iterable[tuple[str, str]],
    *,
    n_dev: int = 500,
    n_test: int = 500,
    seed: int = 0,
    min_words: int = 3,
    max_words: int = 20,
) -> Corpus:
    """Clean, deduplicate and split ``(source, raw sentence)`` pairs by sentence.

    Dev and test come from the ``wordnet`` sentences (from all sentences, with a warning,
    when there are fewer than ``n_dev + n_test`` of them); everything else goes to train.
    Deduplication is on the normalized text, so the three splits are disjoint.

    Raises:
        ValueError: no usable sentence, or too few for the dev and test sizes asked for.
    """
    seen: dict[str, str] = {}
    limits = {"min_words": min_words, "max_words": max_words}
    corpus = Corpus()
    for source, raw in pairs:
        needs_end = source != HELDOUT_SOURCE  # wordnet examples seldom end with a period
        text, reason = clean_sentence(raw, **limits, needs_end=needs_end)
        if text is None:
            corpus.rejected[reason] += 1
        elif text in seen:
            corpus.rejected["duplicate"] += 1
        else:
            seen[text] = source
    if not seen:
        raise ValueError("no usable sentence found in any text source")
    items = list(seen.items())
    pool = [(t, s) for t, s in items if s == HELDOUT_SOURCE]
    if len(pool) < n_dev + n_test:
        _warn(f"only {len(pool)} {HELDOUT_SOURCE} sentences; dev/test drawn from all sources")
        pool = items
    if len(pool) < n_dev + n_test or len(items) <= n_dev + n_test:
        raise ValueError(f"{len(items)} sentences: too few for --dev {n_dev} --test {n_test}")
    rng = random.Random(seed)
    rng.shuffle(pool)
    dev, test = pool[:n_dev], pool[n_dev : n_dev + n_test]
    held = {t for t, _ in dev} | {t for t, _ in test}
    train = [(t, s) for t, s in items if t not in held]
    rng.shuffle(train)
    corpus.splits = {"train": train, "dev": dev, "test": test}
    return corpus


def write_corpus(corpus: Corpus, out_dir: Path) -> None:
    """Write ``{train,dev,test}.txt`` and ``sources.tsv`` under ``out_dir`` (each atomically)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {f"{split}.txt": [t for t, _ in corpus.splits[split]] for split in SPLITS}
    rows = [(split, source, text) for split in SPLITS for text, source in corpus.splits[split]]
    files["sources.tsv"] = ["\t".join(row) for row in rows]
    for name, lines in files.items():
        write_text(out_dir / name, "".join(f"{line}\n" for line in lines))


def summary(corpus: Corpus) -> str:
    """A table of sentence counts per coarse source (``fortunes/law`` counts as ``fortunes``)."""
    counts: Counter[tuple[str, str]] = Counter()
    for split in SPLITS:
        for _, source in corpus.splits[split]:
            counts[source.split("/")[0], split] += 1
            counts["total", split] += 1
    sources = [*sorted({s for s, _ in counts} - {"total"}), "total"]
    rows = [f"{'source':<10}" + "".join(f"{s:>9}" for s in SPLITS)]
    rows += [f"{src:<10}" + "".join(f"{counts[src, s]:>9}" for s in SPLITS) for src in sources]
    rejected = ", ".join(f"{k} {v}" for k, v in corpus.rejected.most_common())
    return "\n".join(rows) + f"\nrejected: {rejected}"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dev", type=int, default=500, help="dev sentences (default 500)")
    parser.add_argument("--test", type=int, default=500, help="test sentences (default 500)")
    parser.add_argument("--min-words", type=int, default=3)
    parser.add_argument("--max-words", type=int, default=20)
    defaults = SourcePaths()
    parser.add_argument("--wordnet-dir", type=Path, default=defaults.wordnet_dir)
    parser.add_argument("--fortunes-dir", type=Path, default=defaults.fortunes_dir)
    parser.add_argument("--jargon", type=Path, default=defaults.jargon)
    parser.add_argument("--devil", type=Path, default=defaults.devil)
    args = parser.parse_args(argv)
    paths = SourcePaths(args.wordnet_dir, args.fortunes_dir, args.jargon, args.devil)
    try:
        corpus = build_corpus(
            collect_sentences(paths),
            n_dev=args.dev,
            n_test=args.test,
            seed=args.seed,
            min_words=args.min_words,
            max_words=args.max_words,
        )
    except ValueError as e:
        print(f"error: extract_text: {e}", file=sys.stderr)
        return 1
    write_corpus(corpus, args.out)
    print(summary(corpus))
    print(f"wrote {', '.join(f'{s}.txt' for s in SPLITS)} and sources.tsv to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
