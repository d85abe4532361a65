"""Word n-gram language models: the interface the decoder uses, its backends, and
building ARPA/binary models with KenLM's ``lmplz`` and ``build_binary``.

The decoder only sees :class:`LanguageModel`: a start state, ``score(state, word)`` giving
a natural-log probability and the next state, and ``finish(state)`` for the end of the
sentence. :class:`KenLM` implements it over ``kenlm.Model`` (ARPA or binary files),
:class:`ArpaLM` in Python over an ARPA file (small models, no KenLM needed);
:func:`open_lm` opens either from what ``--lm`` names.

``lmplz`` and ``build_binary`` are not on PyPI as binaries; :func:`kenlm_tools` finds them
on ``PATH`` (or ``$ASR_KENLM_BIN``), else builds them once from the kenlm source
distribution on PyPI with cmake (Debian: cmake, g++, libboost-program-options-dev,
libboost-system-dev, libboost-thread-dev, libboost-test-dev, zlib1g-dev, libbz2-dev,
liblzma-dev) into ``~/.cache/asr/kenlm/bin``.

An LM directory (what ``asr lm build`` writes) holds ``lm.arpa``, ``lm.bin``,
``vocab.txt`` (one word per line: the unigrams without ``<s>``, ``</s>``, ``<unk>``) and
``lm.json`` (order, pruning, sources, counts).
"""

from __future__ import annotations

import gzip
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from asr.text import normalize

LN10 = math.log(10.0)
SPECIAL = frozenset({"<s>", "</s>", "<unk>"})
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "asr" / "kenlm"


class LMError(Exception):
    """A language model file or build that cannot be used; the message names the file."""


class LanguageModel(Protocol):
    """What callers use of a word-level language model (natural-log scores): the beam search
    (``order``, ``begin``, ``score``, ``finish``, ``vocabulary``), ``asr lm eval``
    (``sentence_scores``) and result files (``path``). Backends pickle, so that batch
    decoding can run in worker processes; :func:`open_lm` picks one."""

    order: int
    path: Path

    def begin(self) -> Any:
        """State at the start of a sentence (after ``<s>``)."""

    def score(self, state: Any, word: str) -> tuple[float, Any]:
        """``(ln P(word | state), next state)``; unknown words get the model's ``<unk>`` score."""

    def finish(self, state: Any) -> float:
        """``ln P(</s> | state)``."""

    def vocabulary(self) -> list[str]:
        """The model's words (without ``<s>``, ``</s>``, ``<unk>``); :class:`LMError` when it
        cannot list them (lexicon-constrained decoding needs them)."""

    def sentence_scores(self, sentence: str) -> list[tuple[float, bool]]:
        """``(ln P, is_oov)`` of each word of ``sentence`` and of ``</s>``."""


def open_lm(spec: str | Path) -> LanguageModel:
    """The language model that ``spec`` (what ``--lm`` takes) names: ``kenlm:PATH`` or
    ``arpa:PATH`` choose the backend; a bare PATH (an LM directory, an ARPA or a KenLM binary
    file) opens with :class:`KenLM`, or with :class:`ArpaLM` when it is ARPA text and the
    kenlm module is not installed."""
    backend, sep, rest = str(spec).partition(":")
    if sep and backend in ("kenlm", "arpa"):
        path = Path(rest)
    else:
        path = Path(spec)
        backend = "arpa" if _model_file(path).suffix == ".arpa" and not _has_kenlm() else "kenlm"
    return ArpaLM(path) if backend == "arpa" else KenLM(path)


def _model_file(path: Path) -> Path:
    """The model file of ``path``: itself, or an LM directory's ``lm.bin`` (else ``lm.arpa``)."""
    if path.is_dir():
        found = [path / n for n in ("lm.bin", "lm.arpa") if (path / n).is_file()]
        if not found:
            raise LMError(f"{path}: a directory without lm.bin or lm.arpa, not a language model")
        path = found[0]
    if not path.exists():
        raise LMError(f"{path}: no such language model file")
    if path.stat().st_size == 0:
        raise LMError(f"{path}: empty file, not a language model")
    return path


def _has_kenlm() -> bool:
    try:
        _kenlm()
    except LMError:
        return False
    return True


def _kenlm() -> Any:
    try:
        import kenlm
    except ImportError as e:
        raise LMError("the kenlm Python module is missing: pip install kenlm") from e
    return kenlm


class KenLM:
    """:class:`LanguageModel` over a KenLM ARPA or binary file, or an LM directory."""

    def __init__(self, path: str | Path) -> None:
        path = _model_file(Path(path))
        kenlm = _kenlm()
        try:
            self._model = kenlm.Model(str(path))
        except (OSError, RuntimeError) as e:
            reason = str(e).splitlines()[0][:200]
            raise LMError(f"{path}: not a readable ARPA or KenLM binary file ({reason})") from e
        self._state_type = kenlm.State
        self.path = path
        self.order: int = self._model.order

    def begin(self) -> Any:
        state = self._state_type()
        self._model.BeginSentenceWrite(state)
        return state

    def score(self, state: Any, word: str) -> tuple[float, Any]:
        out = self._state_type()
        return self._model.BaseScore(state, word, out) * LN10, out

    def finish(self, state: Any) -> float:
        return self._model.BaseScore(state, "</s>", self._state_type()) * LN10

    def __contains__(self, word: str) -> bool:
        return word in self._model

    def vocabulary(self) -> list[str]:
        """The model's words: ``vocab.txt`` beside the file, else the ARPA file's unigrams."""
        if (self.path.parent / "vocab.txt").is_file():
            return read_vocabulary(self.path.parent)
        if self.path.suffix == ".arpa":
            return read_vocabulary(self.path)
        raise LMError(f"{self.path}: no vocab.txt beside this binary model to list its words")

    def __reduce__(self) -> tuple[Any, tuple[Path]]:  # pickles as its path (for worker processes)
        return (KenLM, (self.path,))

    def sentence_scores(self, sentence: str) -> list[tuple[float, bool]]:
        """``(ln P, is_oov)`` of each word of ``sentence`` and of ``</s>``."""
        return [(lp * LN10, oov) for lp, _, oov in self._model.full_scores(sentence, bos=True, eos=True)]


class ArpaLM:
    """:class:`LanguageModel` read from an ARPA file in Python (Katz back-off, as KenLM
    scores the same file): no kenlm module or binaries needed, for small models (every
    n-gram is held in a dict, ~200 bytes each). ``path``: an ARPA file or an LM directory
    with ``lm.arpa``."""

    def __init__(self, path: str | Path) -> None:
        path = Path(path)
        path = path / "lm.arpa" if path.is_dir() else path
        self.path = _model_file(path)
        # n-gram -> (log10 P, log10 back-off weight)
        self._ngrams: dict[tuple[str, ...], tuple[float, float]] = {}
        counts: dict[int, int] = {}
        section = 0
        try:
            with open(self.path, encoding="utf-8") as f:
                for number, line in enumerate(f, 1):
                    section = self._read_line(line.split(), section, counts, f"{self.path}:{number}")
        except UnicodeDecodeError as e:
            raise LMError(f"{self.path}: not an ARPA file (not UTF-8 text: {e})") from None
        seen = {n: sum(len(k) == n for k in self._ngrams) for n in counts}
        if not self._ngrams or seen != counts:
            raise LMError(f"{self.path}: not a complete ARPA file (header counts {counts}, n-grams read {seen})")
        self.order = max(counts)
        self._unk = self._ngrams.get(("<unk>",), (-100.0, 0.0))[0]

    def _read_line(self, fields: list[str], section: int, counts: dict[int, int], where: str) -> int:
        """Take one ARPA line (split into ``fields``) read in ``section`` (n of the n-grams
        being read, 0 for the header); returns the section after it."""
        if not fields:
            return section
        head = fields[0]
        if head.startswith("\\"):
            if head.endswith("-grams:"):
                return int(head[1:].split("-")[0])
            return 0  # \data\ or \end\
        if section == 0:
            if head == "ngram" and len(fields) == 2 and "=" in fields[1]:
                n, count = fields[1].split("=")
                counts[int(n)] = int(count)
            return 0
        if len(fields) not in (section + 1, section + 2):
            raise LMError(f"{where}: expected log10 P, {section} words and an optional back-off weight")
        try:
            entry = float(fields[0]), float(fields[section + 1]) if len(fields) == section + 2 else 0.0
        except ValueError:
            raise LMError(f"{where}: not a number in {' '.join(fields)!r}") from None
        self._ngrams[tuple(fields[1 : section + 1])] = entry
        return section

    def begin(self) -> tuple[str, ...]:
        return ("<s>",)

    def _log10(self, context: tuple[str, ...], word: str) -> float:
        backoff = 0.0
        for i in range(len(context) + 1):
            entry = self._ngrams.get((*context[i:], word))
            if entry is not None:
                return entry[0] + backoff
            backoff += self._ngrams.get(context[i:], (0.0, 0.0))[1]
        return self._unk + backoff

    def score(self, state: tuple[str, ...], word: str) -> tuple[float, tuple[str, ...]]:
        context = (*state, word)[-(self.order - 1) :] if self.order > 1 else ()
        while context and context not in self._ngrams:  # no longer n-gram starts with it
            context = context[1:]
        return self._log10(state, word) * LN10, context

    def finish(self, state: tuple[str, ...]) -> float:
        return self._log10(state, "</s>") * LN10

    def vocabulary(self) -> list[str]:
        return [k[0] for k in self._ngrams if len(k) == 1 and k[0] not in SPECIAL]

    def sentence_scores(self, sentence: str) -> list[tuple[float, bool]]:
        state, out = self.begin(), []
        for word in sentence.split():
            ln_p, state = self.score(state, word)
            out.append((ln_p, (word,) not in self._ngrams))
        return [*out, (self.finish(state), False)]


class InterpolatedLM:
    """:class:`LanguageModel` mixing a ``base`` model with a small ``extra`` one (the user's
    sentences or phrases, :func:`with_extra_text`) at ``weight`` (0 < weight < 1)::

        P(w | h) = (1 - weight) P_base(w | h) + weight Q(w | h)

    where ``Q`` is the extra model for its own words and ``</s>``, and for any other word
    spreads the extra model's ``<unk>`` mass by the base model
    (``Q(w | h) = P_extra(<unk> | h) P_base(w | h)``), so the mixture stays a distribution
    and words the extra text never saw are not boosted. Words only the extra text has get
    most of their probability from it. States are ``(base state, extra state)`` pairs."""

    def __init__(self, base: LanguageModel, extra: ArpaLM, weight: float) -> None:
        if not 0.0 < weight < 1.0:
            raise LMError(f"extra-text weight {weight:g} must be between 0 and 1 (exclusive)")
        self.base, self.extra, self.weight = base, extra, weight
        self.path = Path(f"{base.path} + {extra.path}")  # what transcripts and logs name as the LM
        self.order = max(base.order, extra.order)
        self._extra_words = frozenset(extra.vocabulary())
        self._ln_keep, self._ln_weight = math.log1p(-weight), math.log(weight)

    def begin(self) -> tuple[Any, tuple[str, ...]]:
        return self.base.begin(), self.extra.begin()

    def _mix(self, base_ln: float, extra_ln: float, known: bool) -> float:
        if known:
            return _logaddexp(self._ln_keep + base_ln, self._ln_weight + extra_ln)
        return base_ln + _logaddexp(self._ln_keep, self._ln_weight + extra_ln)  # extra_ln: its <unk>

    def score(self, state: tuple[Any, tuple[str, ...]], word: str) -> tuple[float, tuple[Any, tuple[str, ...]]]:
        base_ln, base_next = self.base.score(state[0], word)
        extra_ln, extra_next = self.extra.score(state[1], word)
        return self._mix(base_ln, extra_ln, word in self._extra_words), (base_next, extra_next)

    def finish(self, state: tuple[Any, tuple[str, ...]]) -> float:
        return self._mix(self.base.finish(state[0]), self.extra.finish(state[1]), True)

    def vocabulary(self) -> list[str]:
        """The base model's words, then the extra text's new ones."""
        return list(dict.fromkeys([*self.base.vocabulary(), *self.extra.vocabulary()]))

    def sentence_scores(self, sentence: str) -> list[tuple[float, bool]]:
        """OOV: a word neither model knows."""
        base_oov = [oov for _, oov in self.base.sentence_scores(sentence)]
        state, out = self.begin(), []
        for word, oov in zip(sentence.split(), base_oov, strict=False):  # base_oov ends with </s>
            ln_p, state = self.score(state, word)
            out.append((ln_p, oov and word not in self._extra_words))
        return [*out, (self.finish(state), False)]


def _logaddexp(a: float, b: float) -> float:
    high = max(a, b)
    return high + math.log(math.exp(a - high) + math.exp(b - high))


def with_extra_text(
    base: LanguageModel | None, sentences: Sequence[str], weight: float = 0.3, order: int = 3, language: str = "en"
) -> LanguageModel:
    """``base`` interpolated (:class:`InterpolatedLM`) with an ``order``-gram built by lmplz
    from ``sentences`` (normalized here in ``language``, empty ones dropped; a few lines to a few thousand: it
    is read into Python); the extra model alone when there is no ``base``. Nothing of ``base``
    is rebuilt."""
    sentences = [t for t in (normalize(s, language) for s in sentences) if t]
    if not sentences:
        raise LMError("no extra text: the extra-text files hold no sentences")
    with tempfile.TemporaryDirectory() as tmp:
        extra = ArpaLM(build_lm(sentences, tmp, order=order, memory="64M") / "lm.arpa")
    extra.path = Path(f"<extra text: {len(sentences)} sentence{'s' * (len(sentences) != 1)}>")
    return extra if base is None else InterpolatedLM(base, extra, weight)


@dataclass(frozen=True)
class Perplexity:
    """Result of :func:`evaluate`: perplexity over words and ``</s>`` (OOVs included, as
    KenLM's ``query`` reports), the same without OOVs, and the OOV rate over words."""

    perplexity: float
    perplexity_no_oov: float
    oov_rate: float
    words: int
    sentences: int

    def summary(self) -> str:
        return (
            f"perplexity {self.perplexity:.1f} (without OOVs {self.perplexity_no_oov:.1f}), "
            f"OOV rate {100 * self.oov_rate:.2f}% over {self.words} words in {self.sentences} sentences"
        )


def evaluate(lm: LanguageModel, sentences: Iterable[str]) -> Perplexity:
    """Perplexity and OOV rate of ``lm`` on normalized ``sentences``."""
    total = total_in = 0.0
    tokens = tokens_in = words = oovs = n = 0
    for sentence in sentences:
        scores = lm.sentence_scores(sentence)
        n += 1
        words += len(scores) - 1
        for ln_p, oov in scores:
            total += ln_p
            tokens += 1
            oovs += oov
            if not oov:
                total_in += ln_p
                tokens_in += 1
    if not n:
        raise LMError("no sentence to evaluate")
    return Perplexity(
        math.exp(-total / tokens), math.exp(-total_in / max(tokens_in, 1)), oovs / max(words, 1), words, n
    )


def read_sentences(paths: Sequence[str | Path], language: str = "en") -> list[str]:
    """Non-empty lines of text files (``.gz`` read transparently), normalized in ``language``."""
    sentences = []
    for p in map(Path, paths):
        if not p.is_file():
            raise LMError(f"{p}: no such text file")
        opener = gzip.open if p.suffix == ".gz" else open
        try:
            with opener(p, "rt", encoding="utf-8") as f:
                sentences += [t for t in (normalize(line, language) for line in f) if t]
        except (UnicodeDecodeError, OSError, EOFError) as e:
            raise LMError(f"{p}: not a readable UTF-8 text file ({e})") from e
    return sentences


# ----------------------------------------------------------------------------- building


def kenlm_tools(cache: Path = CACHE, build: bool = True) -> tuple[Path, Path]:
    """Paths of ``lmplz`` and ``build_binary``: ``$ASR_KENLM_BIN``, then ``PATH``, then the
    cache; built there from the PyPI kenlm sdist when ``build`` and missing."""
    dirs = [Path(d) for d in (os.environ.get("ASR_KENLM_BIN"),) if d] + [cache / "bin"]
    for d in dirs:
        if (d / "lmplz").is_file() and (d / "build_binary").is_file():
            return d / "lmplz", d / "build_binary"
    lmplz, binary = shutil.which("lmplz"), shutil.which("build_binary")
    if lmplz and binary:
        return Path(lmplz), Path(binary)
    if not build:
        raise LMError(f"lmplz/build_binary not found on PATH or in {cache / 'bin'}")
    return build_kenlm_tools(cache)


def _run(cmd: list[str], what: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise LMError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n{tail}")
    return proc.stdout


def build_kenlm_tools(cache: Path = CACHE, jobs: int | None = None) -> tuple[Path, Path]:
    """Download the kenlm sdist from PyPI, build ``lmplz`` and ``build_binary`` with cmake,
    and install them into ``cache/bin`` (atomically: a failed build leaves nothing)."""
    for tool in ("cmake", "c++"):
        if not shutil.which(tool):
            raise LMError(f"building lmplz needs {tool}: apt-get install cmake g++ (see asr/lm.py)")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        work = Path(tmp)
        print(f"building KenLM's lmplz and build_binary in {cache} (once, about a minute)", file=sys.stderr)
        pip = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "kenlm",
            "--no-binary",
            ":all:",
            "--no-deps",
            "--no-build-isolation",
        ]
        _run([*pip, "-d", str(work), "-q"], "downloading the kenlm source distribution")
        archives = sorted(work.glob("kenlm-*.tar.gz")) + sorted(work.glob("kenlm-*.zip"))
        if not archives:
            raise LMError(f"pip download kenlm gave no source archive in {work}")
        if archives[0].suffix == ".zip":
            shutil.unpack_archive(archives[0], work)
        else:
            with tarfile.open(archives[0]) as tar:
                tar.extractall(work, filter="data")
        src = next(p.parent for p in work.glob("*/CMakeLists.txt"))
        build = work / "build"
        _run(["cmake", "-S", str(src), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release"], "cmake configure")
        n = str(jobs or os.cpu_count() or 1)
        _run(["cmake", "--build", str(build), "--target", "lmplz", "build_binary", "-j", n], "cmake build")
        staged = work / "bin"
        staged.mkdir()
        for name in ("lmplz", "build_binary"):
            shutil.copy2(next(build.rglob(name)), staged / name)
        if (cache / "bin").exists():
            shutil.rmtree(cache / "bin")
        os.replace(staged, cache / "bin")
    return cache / "bin" / "lmplz", cache / "bin" / "build_binary"


def char_tokens(sentence: str) -> str:
    """A sentence as a character LM sees it: every character but spaces a token (``北京`` →
    ``北 京``), for languages written without spaces."""
    return " ".join(c for c in sentence if not c.isspace())


def build_lm(
    sentences: Sequence[str],
    out_dir: str | Path,
    order: int = 3,
    prune: Sequence[int] = (),
    sources: Sequence[str] = (),
    memory: str = "20%",
    units: str = "word",
) -> Path:
    """Build ``out_dir/{lm.arpa,lm.bin,vocab.txt,lm.json}`` from normalized ``sentences``.

    ``prune``: lmplz's count thresholds per order (e.g. ``(0, 0, 1)`` drops singleton
    trigrams). ``--discount_fallback`` is always passed, so tiny corpora work (KenLM
    otherwise refuses when it cannot estimate Kneser-Ney discounts). ``units``: ``word``, or
    ``char`` for a character n-gram (:func:`char_tokens`; the beam search then scores each
    character of a language written without spaces as a word); ``lm.json`` records it.
    """
    if units not in ("word", "char"):
        raise LMError(f"units {units!r}: word or char")
    if units == "char":
        sentences = [char_tokens(s) for s in sentences]
    if order < 2:
        raise LMError(f"order {order}: lmplz needs an order of at least 2")
    if len(prune) > order or any(p < 0 for p in prune) or list(prune) != sorted(prune):
        raise LMError(f"prune {list(prune)}: give at most {order} non-decreasing counts")
    if not sentences:
        raise LMError("no sentences to build a language model from")
    lmplz, build_binary = kenlm_tools()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        corpus = Path(tmp) / "corpus.txt"
        corpus.write_text("\n".join(sentences) + "\n", encoding="utf-8")
        arpa, binary = Path(tmp) / "lm.arpa", Path(tmp) / "lm.bin"
        cmd = [str(lmplz), "-o", str(order), "--discount_fallback", "-S", memory, "-T", tmp]
        cmd += ["--text", str(corpus), "--arpa", str(arpa)]
        if prune:
            cmd += ["--prune", *map(str, prune)]
        _run(cmd, "lmplz")
        _run([str(build_binary), str(arpa), str(binary)], "build_binary")
        vocab, counts = _arpa_vocabulary(arpa)
        (Path(tmp) / "vocab.txt").write_text("".join(f"{w}\n" for w in vocab), encoding="utf-8")
        info = {
            "order": order,
            "prune": list(prune),
            "sources": list(sources),
            "units": units,
            "sentences": len(sentences),
            "words": sum(len(s.split()) for s in sentences),
            "ngrams": counts,
        }
        (Path(tmp) / "lm.json").write_text(json.dumps(info, indent=2) + "\n")
        for name in ("lm.arpa", "lm.bin", "vocab.txt", "lm.json"):
            os.replace(Path(tmp) / name, out / name)
    return out


def import_arpa(arpa: str | Path, out_dir: str | Path, lowercase: bool = True) -> Path:
    """An existing ARPA file (``.arpa`` or ``.arpa.gz``, e.g. LibriSpeech's 4-gram) as an LM
    directory like :func:`build_lm`'s: ``lm.arpa`` (lower-cased to match the project's
    normalized text, so ``<UNK>`` becomes ``<unk>``), ``lm.bin``, ``vocab.txt``, ``lm.json``."""
    arpa = Path(arpa)
    if not arpa.is_file():
        raise LMError(f"{arpa}: no such ARPA file")
    _, build_binary = kenlm_tools()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if arpa.suffix == ".gz" else open
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        staged = Path(tmp) / "lm.arpa"
        try:
            with opener(arpa, "rt", encoding="utf-8") as src, open(staged, "w", encoding="utf-8") as dst:
                first = src.readline()
                if first.strip() != "\\data\\" and first.strip() != "":
                    raise LMError(f"{arpa}: not an ARPA file (no \\data\\ header)")
                dst.write(first)
                for line in src:
                    dst.write(line.lower() if lowercase else line)
        except (OSError, UnicodeDecodeError, EOFError) as e:
            raise LMError(f"{arpa}: cannot read ({e})") from None
        _run([str(build_binary), str(staged), str(Path(tmp) / "lm.bin")], "build_binary")
        vocab, counts = _arpa_vocabulary(staged)
        (Path(tmp) / "vocab.txt").write_text("".join(f"{w}\n" for w in vocab), encoding="utf-8")
        info = {"order": len(counts), "sources": [str(arpa)], "lowercased": lowercase, "ngrams": counts}
        (Path(tmp) / "lm.json").write_text(json.dumps(info, indent=2) + "\n")
        for name in ("lm.arpa", "lm.bin", "vocab.txt", "lm.json"):
            os.replace(Path(tmp) / name, out / name)
    return out


def _arpa_vocabulary(arpa: Path) -> tuple[list[str], dict[str, int]]:
    """Unigrams of an ARPA file (without ``<s>``, ``</s>``, ``<unk>``) and its n-gram counts."""
    counts: dict[str, int] = {}
    words: list[str] = []
    section = None
    with open(arpa, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("ngram ") and "=" in line:
                n, count = line[6:].split("=")
                counts[n.strip()] = int(count)
            elif line.startswith("\\") and line.endswith("-grams:"):
                section = line[1:].split("-")[0]
            elif line.startswith("\\"):
                section = None
            elif section == "1" and line:
                word = line.split("\t")[1]
                if word not in SPECIAL:
                    words.append(word)
    return words, counts


def read_vocabulary(lm_dir: str | Path) -> list[str]:
    """Words of ``lm_dir/vocab.txt`` (or of an ARPA file given directly)."""
    path = Path(lm_dir)
    if path.suffix == ".arpa" and path.is_file():
        return _arpa_vocabulary(path)[0]
    vocab = path / "vocab.txt" if path.is_dir() else path
    if not vocab.is_file():
        raise LMError(f"{vocab}: no vocabulary file (asr lm build writes one beside the model)")
    return [w for w in vocab.read_text(encoding="utf-8").split() if w]
