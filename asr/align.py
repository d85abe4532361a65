"""CTC forced alignment: the word times of a known transcript, and a score saying whether the
transcript matches the audio at all.

The Python API::

    from asr.align import align, align_batch
    from asr.checkpoint import load_model
    loaded = load_model("exp/bilstm/best.pt")
    result = align(loaded, audio, "Open the door.")       # audio (samples,) at the model's rate
    result.words[0].start, result.words[0].end, result.score
    results = align_batch(loaded, [(audio1, text1), (audio2, text2)])   # errors kept in place

The text is normalized (:func:`asr.text.normalize`) and spelled with the model's vocabulary,
space tokens between words as in training. The Viterbi path of those tokens through the
model's CTC posteriors (:func:`torchaudio.functional.forced_align`) gives each character a
run of output frames; a word runs from the first frame of its first character to the last
frame of its last character + 1. Times are seconds from the start of the audio, in steps of
one output frame (``ExperimentConfig.seconds_per_frame``).

Scores, in natural log per output frame, all ≤ 0:

- ``Alignment.score``: (ln P of the forced path − ln P of the best path) / frames, where the
  best path is each frame's most likely token (the path greedy decoding reads), which no
  path beats. About 0 when the model would have read this text by itself; a transcript that
  does not match the audio forces the path through tokens the model finds unlikely, and the
  score drops by roughly (ln-odds of a wrong character) × (share of frames they take). Use it
  to drop lines whose text does not match their audio; the threshold depends on the model
  (measure it on lines known to be right, and on shuffled texts).
- ``AlignedWord.score``: the same difference over the word's own frames, which points at the
  words that do not fit.
- ``Alignment.log_prob``: the mean ln posterior of the forced path per frame. It also falls
  where the model is unsure of audio it reads correctly, so ``score`` is the better filter.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchaudio.functional as AF

from asr.audio import AudioError, load_audio
from asr.checkpoint import LoadedModel
from asr.data import bucket, read_manifest
from asr.files import atomic_path
from asr.text import Vocabulary, normalize
from asr.transcribe import min_samples, posteriors_of


class AlignError(ValueError):
    """A transcript that cannot be aligned to its audio; the message names the input and the problem."""


@dataclass(frozen=True)
class AlignedWord:
    """A word of the transcript: ``start`` and ``end`` in seconds, ``score`` ≤ 0 (module docstring)."""

    word: str
    start: float
    end: float
    score: float


@dataclass(frozen=True)
class Alignment:
    """One transcript aligned to its audio.

    ``text`` is the normalized text aligned, ``words`` its words in order, ``score`` and
    ``log_prob`` the utterance scores (ln per frame, see the module docstring), ``frames``
    the number of output frames and ``duration`` the audio's length in seconds.
    """

    text: str
    words: tuple[AlignedWord, ...]
    score: float
    log_prob: float
    frames: int
    duration: float

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_text(self) -> str:
        """One line per word, ``start end score word`` (seconds), then a ``#`` line with the scores."""
        lines = [f"{w.start:.3f} {w.end:.3f} {w.score:.3f} {w.word}" for w in self.words]
        lines.append(
            f"# score {self.score:.4f} (log_prob {self.log_prob:.4f} per frame, "
            f"{self.frames} frames, {self.duration:.3f} s)"
        )
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Targets:
    """A transcript spelled for alignment: the normalized ``text``, its token ids ``(L,)``
    and each word as ``(word, first token, last token + 1)`` indices into ``ids``."""

    text: str
    ids: tuple[int, ...]
    words: tuple[tuple[str, int, int], ...]

    @property
    def min_frames(self) -> int:
        """The fewest CTC frames that can carry ``ids``: one per token, plus a blank between
        each pair of equal neighbours."""
        return len(self.ids) + sum(a == b for a, b in itertools.pairwise(self.ids))


def targets_of(vocab: Vocabulary, text: str, name: str = "<text>", language: str = "en") -> Targets:
    """Normalize ``text`` (in ``language``) and spell it with ``vocab`` (space tokens between words when the
    vocabulary has one). Raises :class:`AlignError` naming ``name`` when nothing is left to
    align or a character is outside the vocabulary."""
    normalized = normalize(text, language)
    if not normalized:
        raise AlignError(f"{name}: no alignable characters in the text {text[:80]!r}")
    space = vocab.encode(" ")[0] if " " in vocab.symbols else None
    ids: list[int] = []
    words: list[tuple[str, int, int]] = []
    for word in normalized.split(" "):
        if words and space is not None:
            ids.append(space)
        try:
            chars = vocab.encode(word)
        except ValueError as e:
            raise AlignError(f"{name}: {e}") from None
        words.append((word, len(ids), len(ids) + len(chars)))
        ids.extend(chars)
    return Targets(normalized, tuple(ids), tuple(words))


def align_posteriors(
    log_probs: np.ndarray | torch.Tensor,
    targets: Targets,
    seconds_per_frame: float,
    blank: int = 0,
    name: str = "<array>",
    duration: float | None = None,
) -> Alignment:
    """Align ``targets`` to one utterance's ``log_probs (T, V)`` (natural log, CTC output
    frames of ``seconds_per_frame`` seconds). ``duration``: the audio's length in seconds
    (default ``T * seconds_per_frame``); word times are clipped to it, as the last frame
    may reach past the audio's end. Raises :class:`AlignError` naming ``name`` when the
    audio has too few frames for the text."""
    lp = torch.as_tensor(log_probs).float().cpu()
    frames = lp.shape[0]
    duration = frames * seconds_per_frame if duration is None else duration
    if frames < targets.min_frames:
        raise AlignError(
            f"{name}: audio too short for the text: {duration:.2f} s gives {frames} frames, "
            f"its {len(targets.ids)} characters need at least {targets.min_frames} frames "
            f"({targets.min_frames * seconds_per_frame:.2f} s)"
        )
    ids = torch.tensor([targets.ids], dtype=torch.int32)
    labels, scores = AF.forced_align(lp[None], ids, blank=blank)
    labels, scores = labels[0], scores[0]
    gap = scores - lp.max(-1).values  # (T,) ≤ 0: forced path vs best path, per frame
    spans = AF.merge_tokens(labels, scores, blank=blank)
    if len(spans) != len(targets.ids):
        raise AssertionError(f"{name}: {len(spans)} token spans for {len(targets.ids)} tokens")
    words = []
    for word, first, last in targets.words:
        start, end = spans[first].start, spans[last - 1].end
        score = float(gap[start:end].mean())
        times = min(start * seconds_per_frame, duration), min(end * seconds_per_frame, duration)
        words.append(AlignedWord(word, *times, score))
    return Alignment(targets.text, tuple(words), float(gap.mean()), float(scores.mean()), frames, duration)


def align(loaded: LoadedModel, audio: np.ndarray, text: str, name: str = "<array>") -> Alignment:
    """Align ``text`` to ``audio``: float mono samples ``(samples,)`` at the model's sample
    rate. Raises :class:`AlignError` naming ``name`` for a text with nothing to align or
    audio too short for it (or for one feature frame)."""
    result = align_batch(loaded, [(audio, text)], [name])[0]
    if isinstance(result, AlignError):
        raise result
    return result


def align_batch(
    loaded: LoadedModel,
    items: Sequence[tuple[np.ndarray, str]],
    names: Sequence[str] | None = None,
    batch_seconds: float = 200.0,
) -> list[Alignment | AlignError]:
    """Align many ``(audio (samples,), text)`` pairs, audio at the model's sample rate, in
    forward passes of similar-length utterances holding at most ``batch_seconds`` of padded
    audio. Returns one result per item, in order; an item that cannot be aligned gets the
    :class:`AlignError` saying why (naming ``names[i]``, default ``item i``) in its place, so
    one bad line does not stop a corpus."""
    names = list(names) if names is not None else [f"item {i}" for i in range(len(items))]
    if len(names) != len(items):
        raise ValueError(f"{len(names)} names for {len(items)} items")
    rate = loaded.config.features.sample_rate
    spf = loaded.config.seconds_per_frame
    results: list[Alignment | AlignError | None] = [None] * len(items)
    audios: dict[int, np.ndarray] = {}
    targets: dict[int, Targets] = {}
    for i, ((audio, text), name) in enumerate(zip(items, names, strict=True)):
        try:
            audios[i] = _checked_audio(audio, name, min_samples(loaded), rate)
            targets[i] = targets_of(loaded.vocab, text, name, loaded.config.text.language)
        except AlignError as e:
            results[i] = e
    durations = {i: len(a) / rate for i, a in audios.items() if i in targets}
    for batch in bucket(list(durations), [durations.get(i, 0.0) for i in range(len(items))], batch_seconds):
        for i, post in zip(batch, posteriors_of(loaded, [audios[i] for i in batch]), strict=True):
            try:
                results[i] = align_posteriors(post, targets[i], spf, loaded.vocab.blank, names[i], durations[i])
            except AlignError as e:
                results[i] = e
    done = [r for r in results if r is not None]
    if len(done) != len(items):
        raise AssertionError(f"{len(items) - len(done)} items neither aligned nor refused")
    return done


def _checked_audio(audio: np.ndarray, name: str, shortest: int, rate: int) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 1:
        raise AlignError(f"{name}: expected mono samples (samples,), got an array of shape {audio.shape}")
    if len(audio) < shortest:
        raise AlignError(
            f"{name}: audio too short: {len(audio) / rate:.3f} s (at least {shortest / rate:.3f} s needed)"
        )
    if not np.isfinite(audio).all():
        raise AlignError(f"{name}: contains NaN or infinite samples")
    return audio


# ----------------------------------------------------------------------------- manifests


def align_manifest(
    loaded: LoadedModel, manifest: str | Path, out: str | Path, batch_seconds: float = 200.0
) -> tuple[int, list[str]]:
    """Align every line of ``manifest`` and write it to ``out`` (atomically) with its
    ``words`` (``word``, ``start``, ``end``, ``score``; seconds) and ``align_score``. Other
    keys are kept; ``audio`` is rewritten relative to ``out``'s folder, or absolute. A line
    that cannot be aligned (unreadable audio, text that does not fit) is written too, with
    ``words`` empty, ``align_score`` null and ``align_error`` saying why. Audio is read a
    few batches at a time. Returns the number of lines and the error messages."""
    manifest, out = Path(manifest), Path(out)
    utts = read_manifest(manifest, loaded.config.text.language)
    with manifest.open(encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    rate = loaded.config.features.sample_rate
    root = out.parent.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with atomic_path(out) as tmp, tmp.open("w", encoding="utf-8") as f:
        for group in _groups([u.duration for u in utts], 4 * batch_seconds):
            items, names, loaded_ok = [], [], []
            results: dict[int, Alignment | ValueError] = {}
            for i in group:
                try:
                    items.append((load_audio(utts[i].audio, rate), utts[i].text))
                    names.append(f"{manifest}:{utts[i].id}")
                    loaded_ok.append(i)
                except AudioError as e:
                    results[i] = e
            results.update(zip(loaded_ok, align_batch(loaded, items, names, batch_seconds), strict=True))
            for i in group:
                audio = utts[i].audio.resolve()
                row = {**rows[i], "audio": str(audio.relative_to(root) if audio.is_relative_to(root) else audio)}
                row.update(_row_result(results[i]))
                if isinstance(results[i], ValueError):
                    errors.append(str(results[i]))
                f.write(json.dumps(row) + "\n")
    return len(utts), errors


def _groups(durations: Sequence[float], seconds: float) -> list[list[int]]:
    """Consecutive indices holding about ``seconds`` of audio each (at least one index)."""
    groups: list[list[int]] = [[]]
    total = 0.0
    for i, d in enumerate(durations):
        if groups[-1] and total + d > seconds:
            groups.append([])
            total = 0.0
        groups[-1].append(i)
        total += d
    return [g for g in groups if g]


def _row_result(result: Alignment | ValueError) -> dict[str, Any]:
    if isinstance(result, ValueError):
        return {"words": [], "align_score": None, "align_error": str(result)}
    words = [
        {"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3), "score": round(w.score, 4)}
        for w in result.words
    ]
    return {"words": words, "align_score": round(result.score, 4)}
