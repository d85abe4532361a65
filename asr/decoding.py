"""CTC decoding: greedy (best path: argmax per frame, merge repeats, drop blanks) and
prefix beam search with a word n-gram LM, lexicon, hotwords, n-best and word times.

The beam search runs in C++ (``asr/csrc/beam_search.cpp``, built as ``asr._beam`` by
``pip install``); this module holds its Python face. Language models reach it only through
:class:`asr.lm.LanguageModel`.
"""

from __future__ import annotations

import copy
import dataclasses
import multiprocessing as mp
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asr.confidence import Calibration
from asr.config import DecodingConfig
from asr.lm import LanguageModel, LMError
from asr.text import Vocabulary, language, normalize
from asr.units import WORD_START


def greedy_ids(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best-path token ids per utterance. ``log_probs (B, T, V)``, ``lengths (B,)`` frames."""
    best = log_probs.argmax(-1).cpu()
    return [collapse(seq[:n], blank) for seq, n in zip(best, lengths.cpu().tolist(), strict=True)]


def collapse(best: torch.Tensor, blank: int = 0, previous: int = -1) -> list[int]:
    """The CTC best-path rule on per-frame argmax ids ``best (T,)``: merge repeats, drop
    blanks. ``previous``: the id of the frame just before (a stream's earlier rows), whose
    repeats are merged too; -1 for none."""
    before = torch.cat([best.new_tensor([previous]), best[:-1]])
    return best[(best != before) & (best != blank)].tolist()


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, vocab: Vocabulary) -> list[str]:
    """Greedy transcripts, one per utterance, with whitespace tidied."""
    return [" ".join(vocab.decode(ids).split()) for ids in greedy_ids(log_probs, lengths, vocab.blank)]


def greedy_hypothesis(log_probs: np.ndarray | torch.Tensor, vocab: Vocabulary, seconds_per_frame: float) -> Hypothesis:
    """The best path of one utterance's ``log_probs (T, V)`` as a :class:`Hypothesis` with
    word times (a word spans its characters' argmax runs) and confidences (the geometric mean
    over its characters of their best posterior), like the beam search's. Words end at a space
    token or, with SentencePiece units, where a ``▁`` piece starts the next."""
    x = torch.as_tensor(log_probs).float()
    best, ids = x.max(-1)
    words: list[Word] = []
    chars: list[str] = []
    start = end = 0
    logp = 0.0

    def flush() -> None:
        if chars:
            conf = float(np.exp(logp / len(chars)))
            words.append(Word("".join(chars), start * seconds_per_frame, end * seconds_per_frame, conf))

    ids_list, best_list = ids.tolist(), best.tolist()
    t = 0
    while t < len(ids_list):
        token, run_end, peak = ids_list[t], t + 1, best_list[t]
        while run_end < len(ids_list) and ids_list[run_end] == token:
            peak = max(peak, best_list[run_end])
            run_end += 1
        symbol = vocab.symbols[token] if token != vocab.blank else ""
        if symbol == " " or symbol.startswith(WORD_START):  # a space, or a SentencePiece word start
            flush()
            chars, logp = [], 0.0
            symbol = symbol.removeprefix(WORD_START).strip()
        if symbol:
            if not chars:
                start = t
            chars.append(symbol)
            logp, end = logp + peak, run_end
        t = run_end
    flush()
    score = float(best.sum())
    return Hypothesis(" ".join(w.word for w in words), score, score, tuple(words))


# ----------------------------------------------------------------------------- beam search


@dataclass(frozen=True)
class Word:
    """A recognized word: start and end in seconds, confidence in (0, 1]."""

    word: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class Hypothesis:
    """One beam-search result; ``score`` is the total natural-log score the search ranked by,
    ``acoustic_score`` its CTC part (ln P of the prefix given the frames)."""

    text: str
    score: float
    acoustic_score: float
    words: tuple[Word, ...]


def _parse_hotwords(
    hotwords: Sequence[tuple[str, float]], vocab: Vocabulary, language: str = "en"
) -> list[tuple[str, float]]:
    out = []
    for phrase, weight in hotwords:
        text = normalize(phrase, language)
        if not text:
            raise ValueError(f"hotword {phrase!r} is empty after normalization")
        vocab.encode(text)  # raises on characters outside the vocabulary
        out.append((text, float(weight)))
    return out


def read_word_list(path: str | Path, language: str = "en") -> list[str]:
    """Words of a word list normalized in ``language`` (one per line; further columns, as in
    a lexicon, ignored)."""
    p = Path(path)
    if not p.is_file():
        raise LMError(f"{p}: no such word list")
    words = []
    with open(p, encoding="utf-8") as f:
        for line in f:
            fields = line.split()
            if fields and (w := normalize(fields[0], language)) and " " not in w:
                words.append(w)
    if not words:
        raise LMError(f"{p}: no words in this word list")
    return words


class BeamSearchDecoder:
    """CTC prefix beam search with an optional word n-gram LM, lexicon and hotwords.

    ``decode(log_probs (T, V))`` gives the n-best :class:`Hypothesis` list;
    :meth:`stream` gives an incremental decoder (``feed`` frames, ``best``, ``finalize``);
    :meth:`decode_batch` decodes many utterances, in worker processes when asked.

    The LM is any :class:`asr.lm.LanguageModel` (the search never calls KenLM itself).
    ``hotwords``: ``(phrase, weight)`` pairs; a phrase spoken as whole words gains ``weight``
    (natural log) over its characters, and a partial match is refunded when it breaks.
    ``seconds_per_frame``: duration of one ``log_probs`` frame, for word times.
    ``calibration``: maps each word's raw confidence (:mod:`asr.confidence`, fitted by
    ``asr tune-lm``); None keeps the raw ones. With SentencePiece units (no space token) a
    word ends where a ``▁`` piece starts the next: the core walks a virtual space there; with
    neither (a language written without spaces) each character is a word, for a character
    LM (``asr lm build --units char``), and the text has no spaces.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        config: DecodingConfig | None = None,
        lm: LanguageModel | None = None,
        hotwords: Sequence[tuple[str, float]] = (),
        seconds_per_frame: float = 0.04,
        calibration: Calibration | None = None,
        language: str = "en",
    ) -> None:
        # words end at a space token; with SentencePiece pieces where a ▁ piece starts; without
        # either (a language written without spaces) every character is a word (a character LM)
        self.pieces = " " not in vocab.symbols and any(s.startswith(WORD_START) for s in vocab.symbols)
        self.char_words = " " not in vocab.symbols and not self.pieces
        self.vocab, self.config, self.lm, self.language = vocab, config or DecodingConfig(), lm, language
        self.hotwords = _parse_hotwords(hotwords, vocab, language)
        self.seconds_per_frame, self.calibration = seconds_per_frame, calibration
        self._set_lexicon()
        self._core = self._make_core()

    def _set_lexicon(self) -> None:
        self.lexicon_mode = self._resolve_lexicon()  # free, lm or a word-list path
        self.words = self._lexicon()
        self._unigram = [0.0] * len(self.words or [])
        if self.words is not None and self.lm is not None:
            start = self.lm.begin()
            self._unigram = [self.lm.score(start, w)[0] for w in self.words]

    def _resolve_lexicon(self) -> str:
        """``auto``: ``lm`` when this decoder's LM lists its words, else ``free``."""
        if self.config.lexicon != "auto":
            return self.config.lexicon
        try:
            listed = self.lm is not None and bool(self.lm.vocabulary())
        except LMError:  # e.g. a binary model without vocab.txt beside it
            listed = False
        return "lm" if listed else "free"

    def _lexicon(self) -> list[str] | None:
        """Words of the vocabulary trie: the lexicon, or lexicon-free the LM's words (unknown
        words then allowed at ``unk_offset``); None when there is no trie."""
        mode = self.lexicon_mode
        if mode == "free":
            if self.lm is None:
                return None
            try:
                words = list(self.lm.vocabulary())
            except LMError:
                return None
        elif mode == "lm":
            if self.lm is None:
                raise LMError("decoding.lexicon 'lm' needs a language model that lists its vocabulary")
            words = list(self.lm.vocabulary())
        else:
            words = read_word_list(mode, self.language)
        words = [w for w in dict.fromkeys(words) if w and " " not in w and not self.vocab.unknown(w)]
        extra = [w for phrase, _ in self.hotwords for w in phrase.split()]
        return list(dict.fromkeys(words + extra))

    def _make_core(self) -> Any:
        from asr import _beam

        cfg, vocab = self.config, self.vocab
        lexicon = [vocab.encode(w) for w in self.words] if self.words is not None else []
        virtual = self.pieces or self.char_words  # a virtual space after the last token
        space = len(vocab) if virtual else vocab.encode(" ")[0]
        return _beam.CtcBeamSearch(
            vocab_size=len(vocab),
            blank=vocab.blank,
            space=space,
            symbols=[*vocab.symbols, " " if self.pieces else ""] if virtual else list(vocab.symbols),
            beam_size=cfg.beam_size,
            beam_threshold=cfg.beam_threshold,
            token_min_logp=cfg.token_min_logp,
            max_tokens_per_frame=cfg.max_tokens_per_frame,
            alpha=cfg.alpha if self.lm is not None else 0.0,
            beta=cfg.beta if self.lm is not None else 0.0,
            lm=self.lm,
            lexicon=lexicon,
            unigram=self._unigram,
            allow_oov=self.lexicon_mode == "free",
            unk_offset=cfg.unk_offset,
            unk_char_offset=cfg.unk_char_offset,
            hotwords=[self._spelled(p, space) for p, _ in self.hotwords],
            hotword_weights=[w for _, w in self.hotwords],
            word_start=[self.char_words or s.startswith(WORD_START) for s in vocab.symbols] if virtual else [],
        )

    def _spelled(self, phrase: str, space: int) -> list[int]:
        """``phrase``'s tokens as the prefix trie holds them: with pieces, the virtual space
        before each word-start piece but the first."""
        ids = self.vocab.encode(phrase)
        if not (self.pieces or self.char_words):
            return ids
        out: list[int] = []
        for i in ids:
            if out and (self.char_words or self.vocab.symbols[i].startswith(WORD_START)):
                out.append(space)
            out.append(i)
        return out

    def __getstate__(self) -> dict[str, Any]:  # the C++ core is rebuilt after unpickling
        return {k: v for k, v in self.__dict__.items() if k != "_core"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._core = self._make_core()

    def with_options(self, **changes: Any) -> BeamSearchDecoder:
        """A decoder with some :class:`DecodingConfig` fields changed (same LM and hotwords)."""
        new = copy.copy(self)
        new.config = dataclasses.replace(self.config, **changes)
        if "lexicon" in changes:
            new._set_lexicon()
        new._core = new._make_core()
        return new

    def calibrated(self, calibration: Calibration | None) -> BeamSearchDecoder:
        """This decoder with word confidences mapped by ``calibration`` (None: raw)."""
        new = copy.copy(self)
        new.calibration = calibration
        return new

    def stream(self) -> DecoderStream:
        """A fresh incremental decoder sharing this one's settings."""
        return DecoderStream(self, self._make_core())

    def decode(self, log_probs: np.ndarray | torch.Tensor) -> list[Hypothesis]:
        """n-best hypotheses (best first) of one utterance's ``log_probs (T, V)``."""
        stream = DecoderStream(self, self._core)
        stream.reset()
        stream.feed(log_probs)
        return stream.finalize()

    def decode_batch(
        self, log_probs: torch.Tensor | Sequence[np.ndarray], lengths: torch.Tensor | None = None, workers: int = 1
    ) -> list[list[Hypothesis]]:
        """n-best lists of a batch: ``log_probs (B, T, V)`` with ``lengths (B,)`` frames, or a
        list of ``(T_i, V)`` arrays. ``workers`` > 1 decodes in that many processes."""
        items = _split(log_probs, lengths)
        if workers <= 1 or len(items) < 2:
            return [self.decode(x) for x in items]
        ctx = mp.get_context("forkserver" if sys.platform != "win32" else "spawn")
        chunk = max(1, len(items) // (4 * workers))
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(self,)) as pool:
            return list(pool.map(_decode_in_worker, items, chunksize=chunk))


class DecoderStream:
    """Incremental decoding of one utterance: ``feed`` frames as they come, read ``best()``,
    then ``finalize()`` for the n-best list with word times (absolute from the first frame)."""

    def __init__(self, decoder: BeamSearchDecoder, core: Any) -> None:
        self.decoder, self._core = decoder, core

    def reset(self) -> None:
        self._core.reset()

    @property
    def frames(self) -> int:
        return self._core.frames

    def feed(self, log_probs: np.ndarray | torch.Tensor) -> None:
        """Add ``log_probs (T, V)`` (natural-log posteriors) to the search."""
        if isinstance(log_probs, torch.Tensor):
            log_probs = log_probs.detach().float().cpu().numpy()
        self._core.feed(np.ascontiguousarray(log_probs, dtype=np.float32))

    def best(self) -> str:
        """Current best transcript, the partial last word included."""
        return self._core.best()

    def finalize(self) -> list[Hypothesis]:
        """End of the utterance: the n-best hypotheses; the stream then starts afresh."""
        spf, calibration = self.decoder.seconds_per_frame, self.decoder.calibration
        results = self._core.finalize(self.decoder.config.n_best)
        self._core.reset()
        out = []
        for r in results:
            confidence = [c for *_, c in r["words"]]
            if calibration is not None and confidence:
                confidence = calibration.apply(np.asarray(confidence)).tolist()
            words = tuple(Word(w, s * spf, e * spf, c) for (w, s, e, _), c in zip(r["words"], confidence, strict=True))
            out.append(Hypothesis(r["text"], r["score"], r["acoustic_score"], words))
        return out or [Hypothesis("", float("-inf"), float("-inf"), ())]


def _split(log_probs: torch.Tensor | Sequence[np.ndarray], lengths: torch.Tensor | None) -> list[np.ndarray]:
    if isinstance(log_probs, torch.Tensor):
        x = log_probs.detach().float().cpu().numpy()
        n = lengths.tolist() if lengths is not None else [x.shape[1]] * x.shape[0]
        return [np.ascontiguousarray(x[i, : int(n[i])]) for i in range(x.shape[0])]
    return [np.asarray(a, dtype=np.float32) for a in log_probs]


_WORKER_DECODER: BeamSearchDecoder | None = None


def _init_worker(decoder: BeamSearchDecoder) -> None:
    global _WORKER_DECODER
    torch.set_num_threads(1)
    _WORKER_DECODER = decoder


def _decode_in_worker(log_probs: np.ndarray) -> list[Hypothesis]:
    assert _WORKER_DECODER is not None
    return _WORKER_DECODER.decode(log_probs)


# ----------------------------------------------------------------------------- LM weight tuning


@dataclass(frozen=True)
class TuningResult:
    """Best ``alpha``/``beta`` of :func:`tune_lm`, its WER, and every ``(alpha, beta, wer)`` tried."""

    alpha: float
    beta: float
    wer: float
    trials: tuple[tuple[float, float, float], ...]


def tune_lm(
    decoder: BeamSearchDecoder,
    posteriors: Sequence[np.ndarray],
    refs: Sequence[str],
    alphas: tuple[float, float] = (0.0, 2.0),
    betas: tuple[float, float] = (-1.0, 3.0),
    trials: int = 30,
    grid: bool = False,
    workers: int = 1,
    seed: int = 0,
) -> TuningResult:
    """Search LM weight ``alpha`` and word bonus ``beta`` (ranges inclusive) for the lowest
    WER (CER for a language written without spaces) of ``decoder`` on cached ``posteriors``
    (``(T_i, V)`` arrays) against ``refs``.

    ``grid``: a square grid of about ``trials`` points. Otherwise half the ``trials`` are
    random points (seeded) and the rest refine the best of them by compass search (see
    :func:`search_2d`). Each trial only decodes; ``workers`` processes share the posteriors.
    """
    from tqdm import tqdm

    from asr.metrics import score

    spaces = language(decoder.language).spaces  # else CER is what is tuned for
    total = grid_side(trials) ** 2 if grid else trials
    bar = tqdm(total=total, desc="tune-lm", disable=None, dynamic_ncols=True)  # None: only on a terminal
    pool = None
    if workers > 1:
        ctx = mp.get_context("forkserver" if sys.platform != "win32" else "spawn")
        pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_tuner, initargs=(decoder, posteriors))
    best = (float("inf"), 0.0, 0.0)  # WER, alpha, beta

    def evaluate(alpha: float, beta: float) -> float:
        nonlocal best
        if pool is None:
            trial = decoder.with_options(alpha=alpha, beta=beta)
            hyps = [trial.decode(x)[0].text for x in posteriors]
        else:
            tasks = [(alpha, beta, i) for i in range(len(posteriors))]
            hyps = list(pool.map(_decode_index, tasks, chunksize=max(1, len(tasks) // (4 * workers))))
        wer = score(refs, hyps, spaces).headline
        best = min(best, (wer, alpha, beta))
        bar.update()
        bar.set_postfix(best=f"{100 * best[0]:.2f}%", alpha=f"{best[1]:.3f}", beta=f"{best[2]:.3f}")
        return wer

    try:
        results = search_2d(evaluate, alphas, betas, trials, grid, seed)
    finally:
        bar.total = bar.n  # the compass search may stop early once its steps are tiny
        bar.close()
        if pool is not None:
            pool.shutdown()
    alpha, beta, wer = min(results, key=lambda r: r[2])
    return TuningResult(alpha, beta, wer, tuple(results))


def search_2d(
    evaluate: Callable[[float, float], float],
    xs: tuple[float, float],
    ys: tuple[float, float],
    trials: int,
    grid: bool = False,
    seed: int = 0,
) -> list[tuple[float, float, float]]:
    """Minimize ``evaluate(x, y)`` over the box ``xs`` x ``ys`` in at most ``trials`` calls;
    returns every ``(x, y, value)`` evaluated, in order (points rounded to 3 decimals).

    ``grid``: a square grid of about ``trials`` points. Otherwise ``(trials + 1) // 2``
    seeded random points, then a compass search from the best of them: its four neighbours
    one step away on each axis (first an eighth of the range), moving to the best one that
    improves, halving the steps when none does.
    """
    done: dict[tuple[float, float], float] = {}

    def visit(x: float, y: float) -> None:
        point = (round(float(np.clip(x, *xs)), 3), round(float(np.clip(y, *ys)), 3))
        if point not in done and len(done) < trials:
            done[point] = evaluate(*point)

    if grid:
        n = grid_side(trials)
        trials = n * n
        for x in np.linspace(*xs, n):
            for y in np.linspace(*ys, n):
                visit(x, y)
    else:
        rng = np.random.default_rng(seed)
        explore = max(1, (trials + 1) // 2)
        for x, y in zip(rng.uniform(*xs, explore), rng.uniform(*ys, explore), strict=True):
            visit(x, y)
        steps = [(xs[1] - xs[0]) / 8, (ys[1] - ys[0]) / 8]
        while len(done) < trials and max(steps) >= 1e-3:
            (x, y), value = min(done.items(), key=lambda item: item[1])
            for dx, dy in ((steps[0], 0), (-steps[0], 0), (0, steps[1]), (0, -steps[1])):
                visit(x + dx, y + dy)
            if min(done.values()) >= value:
                steps = [s / 2 for s in steps]
    return [(x, y, value) for (x, y), value in done.items()]


def grid_side(trials: int) -> int:
    """Points per axis of :func:`search_2d`'s square grid for about ``trials`` points."""
    return max(2, round(trials**0.5))


_TUNER: dict[str, Any] = {}


def _init_tuner(decoder: BeamSearchDecoder, posteriors: Sequence[np.ndarray]) -> None:
    torch.set_num_threads(1)
    _TUNER.update(decoder=decoder, posteriors=posteriors, cache={})


def _decode_index(task: tuple[float, float, int]) -> str:
    alpha, beta, i = task
    cache = _TUNER["cache"]
    if (alpha, beta) not in cache:
        cache.clear()
        cache[alpha, beta] = _TUNER["decoder"].with_options(alpha=alpha, beta=beta)
    return cache[alpha, beta].decode(_TUNER["posteriors"][i])[0].text
