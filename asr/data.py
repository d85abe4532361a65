"""Manifests, the audio dataset, padding collate and the length-bucketing batch sampler.

A manifest is JSON lines, one utterance each: ``{"id", "audio", "duration", "text"}``, where
``audio`` is absolute or relative to the manifest's folder and ``duration`` is in seconds;
an optional ``speaker`` is kept. ``text`` may be raw (``"Dr. Smith, 3 p.m."``): reading
normalizes it with :func:`asr.text.normalize` in the ``language`` asked for (``en`` unless a
model's ``text.language`` says otherwise) and keeps the raw text for result files.
:func:`check_manifest` checks every line up front (JSON, keys, audio, duration, text) and
reports each bad one as ``file:line: problem``.
"""

from __future__ import annotations

import json
import logging
import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from asr.audio import SAMPLE_RATE, AudioError, AudioStream, load_audio
from asr.files import atomic_path
from asr.text import Vocabulary, normalize

log = logging.getLogger("asr.data")

REQUIRED_KEYS = ("id", "audio", "duration", "text")
DURATION_TOLERANCE = (0.10, 0.1)  # a manifest duration may differ from the audio's by 10 % + 0.1 s


@dataclass(frozen=True)
class Utterance:
    id: str
    audio: Path  # absolute
    duration: float  # seconds
    text: str  # normalized
    raw_text: str = ""  # as the manifest wrote it ("" when not known)
    speaker: str = ""


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file and line."""


def json_row(where: str, line: str, keys: Sequence[str]) -> dict[str, Any]:
    """One JSON-lines row as a dict that has ``keys``; :class:`ManifestError` at ``where``
    (``file:line``) when it is not JSON, not an object or lacks some of them."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as e:
        raise ManifestError(f"{where}: not valid JSON ({e.msg})") from None
    if not isinstance(row, dict):
        raise ManifestError(f"{where}: not a JSON object")
    missing = [k for k in keys if k not in row]
    if missing:
        raise ManifestError(f"{where}: missing keys {missing}")
    return row


def durations_agree(stated: float, real: float) -> bool:
    """Whether a manifest's ``stated`` duration fits the audio's ``real`` one
    (:data:`DURATION_TOLERANCE`)."""
    relative, absolute = DURATION_TOLERANCE
    return abs(stated - real) <= relative * real + absolute


def _parse_line(path: Path, lineno: int, line: str, language: str = "en") -> Utterance:
    """One manifest line as an :class:`Utterance` (text normalized in ``language``);
    :class:`ManifestError` names ``path:lineno``."""
    row = json_row(f"{path}:{lineno}", line, REQUIRED_KEYS)
    try:
        duration = float(row["duration"])
    except (TypeError, ValueError):
        raise ManifestError(f"{path}:{lineno}: duration {row['duration']!r} is not a number") from None
    for key in ("audio", "text"):
        if not isinstance(row[key], str):
            raise ManifestError(f"{path}:{lineno}: {key} {row[key]!r} is not a string")
    audio = Path(row["audio"])
    if not audio.is_absolute():
        audio = path.parent / audio
    raw = str(row["text"])
    return Utterance(str(row["id"]), audio, duration, normalize(raw, language), raw, str(row.get("speaker") or ""))


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of the non-blank lines of a manifest that must exist."""
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest file")
    with path.open(encoding="utf-8") as f:
        try:
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    yield lineno, line
        except UnicodeDecodeError as e:
            raise ManifestError(f"{path}: not UTF-8 text ({e})") from None


def read_manifest(path: str | Path, language: str = "en") -> list[Utterance]:
    """Parse a JSONL manifest; ``audio`` paths are resolved against the manifest's folder and
    ``text`` is normalized in ``language`` (``raw_text`` keeps it as written). Checks the
    lines' form only; :func:`check_manifest` also checks their audio and text."""
    path = Path(path)
    utts = [_parse_line(path, lineno, line, language) for lineno, line in _lines(path)]
    if not utts:
        raise ManifestError(f"{path}: manifest is empty")
    return utts


def _line_problems(utt: Utterance, written: str, vocab: Vocabulary | None) -> list[str]:
    """What is wrong with one parsed line (``written``: its ``audio`` as the manifest gives it)."""
    problems = []
    if not utt.text:
        problems.append(f"text {utt.raw_text!r} is empty after normalization")
    elif vocab is not None and (unknown := vocab.unknown(utt.text)):
        chars = ", ".join(repr(c) for c in unknown)
        problems.append(f"text {utt.text!r} holds characters the model's vocabulary cannot write: {chars}")
    if not utt.duration > 0:
        problems.append(f"duration {utt.duration:g} s is not positive")
    try:
        with AudioStream(utt.audio, f"audio {written}") as stream:  # opens and checks the header only
            real = stream.duration
    except AudioError as e:
        return [str(e), *problems]
    if utt.duration > 0 and not durations_agree(utt.duration, real):
        problems.append(f"duration {utt.duration:g} s, but audio {written} lasts {real:.3f} s")
    return problems


def check_manifest(
    path: str | Path, vocab: Vocabulary | None = None, workers: int = 8, language: str = "en"
) -> tuple[list[Utterance], list[str]]:
    """Check every line of a manifest; returns its good utterances (in order) and its bad
    lines as ``"file:line: problem"`` strings.

    A line is bad when it is not a JSON object with the required keys, its id repeats an
    earlier line's, its text (normalized in ``language``) is empty or holds characters
    ``vocab`` cannot write (each one named; default: English's :class:`~asr.text.Vocabulary`
    for English, no such check for other languages, whose units come from their text), its
    duration is not positive, its audio is missing or does not open as audio (header only,
    no decoding), or its duration differs
    from the audio's by more than :data:`DURATION_TOLERANCE`. ``workers`` threads open the
    audio headers. Raises :class:`ManifestError` for a missing or empty manifest.
    """
    path = Path(path)
    if vocab is None and language == "en":
        vocab = Vocabulary()
    parsed: list[tuple[int, Utterance]] = []
    bad: dict[int, str] = {}
    first_line: dict[str, int] = {}
    for lineno, line in _lines(path):
        try:
            utt = _parse_line(path, lineno, line, language)
        except ManifestError as e:
            bad[lineno] = str(e)
            continue
        if utt.id in first_line:
            bad[lineno] = f"{path}:{lineno}: id {utt.id!r} already used on line {first_line[utt.id]}"
            continue
        first_line[utt.id] = lineno
        parsed.append((lineno, utt))
    if not parsed and not bad:
        raise ManifestError(f"{path}: manifest is empty")

    def problems_of(utt: Utterance) -> list[str]:
        written = utt.audio.relative_to(path.parent) if utt.audio.is_relative_to(path.parent) else utt.audio
        return _line_problems(utt, str(written), vocab)

    with ThreadPoolExecutor(max(1, workers)) as pool:
        problems = list(pool.map(problems_of, [utt for _, utt in parsed]))
    good = []
    for (lineno, utt), found in zip(parsed, problems, strict=True):
        if found:
            bad[lineno] = f"{path}:{lineno}: {'; '.join(found)}"
        else:
            good.append(utt)
    return good, [bad[n] for n in sorted(bad)]


def bad_lines_report(path: str | Path, bad: Sequence[str], good: int, limit: int = 20) -> str:
    """A summary line, then the first ``limit`` of ``bad`` lines (indented) and how many more."""
    head = f"{len(bad)} of {len(bad) + good} lines of {path} are unusable:"
    more = [f"  ... and {len(bad) - limit} more"] if len(bad) > limit else []
    return "\n".join([head, *(f"  {line}" for line in bad[:limit]), *more])


def write_manifest(path: str | Path, utts: Sequence[Utterance], extra: Sequence[dict] | None = None) -> None:
    """Write ``utts`` atomically; ``audio`` is stored relative to the manifest's folder when
    it lies below it, ``text`` as ``raw_text`` when known (reading normalizes it again),
    ``speaker`` when not empty. ``extra`` adds per-utterance keys (e.g. ``voice``)."""
    path = Path(path)
    root = path.parent.resolve()
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as f:
        for i, u in enumerate(utts):
            audio = u.audio.resolve()
            audio = audio.relative_to(root) if audio.is_relative_to(root) else audio
            row = {"id": u.id, "audio": str(audio), "duration": round(u.duration, 3), "text": u.raw_text or u.text}
            if u.speaker:
                row["speaker"] = u.speaker
            row.update(extra[i] if extra else {})
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


class AudioDataset(torch.utils.data.Dataset):
    """Items are ``(waveform (samples,) float32, token ids (labels,) int64, utterance id)``.

    A key is an index, or ``(index, seed)`` as :class:`DistributedBatchSampler` yields: the
    transform then draws its randomness from a generator seeded with ``seed``, so an
    utterance is augmented the same way whichever loader worker reads it, and a resumed
    run reproduces the augmentation of the run it continues.
    """

    def __init__(
        self,
        utts: Sequence[Utterance],
        vocab: Vocabulary,
        sample_rate: int = SAMPLE_RATE,
        transform: Callable[[torch.Tensor, torch.Generator | None], torch.Tensor] | None = None,
    ) -> None:
        self.utts = list(utts)
        self.vocab = vocab
        self.sample_rate = sample_rate
        self.transform = transform  # waveform augmentation (training only)

    def __len__(self) -> int:
        return len(self.utts)

    def __getitem__(self, key: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, str]:
        index, seed = key if isinstance(key, tuple) else (key, None)
        utt = self.utts[index]
        audio = torch.from_numpy(self.load(index))
        if self.transform is not None:
            audio = self.transform(audio, None if seed is None else torch.Generator().manual_seed(seed))
        return audio, torch.tensor(self.vocab.encode(utt.text), dtype=torch.long), utt.id

    def load(self, index: int) -> np.ndarray:
        """Utterance ``index``'s samples ``(samples,)`` float32 at ``sample_rate``."""
        return load_audio(self.utts[index].audio, self.sample_rate)

    def subset(self, keep: Sequence[int]) -> AudioDataset:
        """The dataset of utterances ``keep`` (indices), in that order."""
        return AudioDataset([self.utts[i] for i in keep], self.vocab, self.sample_rate, self.transform)

    def batch_plan(
        self, batch_seconds: float, shuffle: bool, seed: int, weights: Sequence[float] | None = None, buffer: int = 0
    ) -> BatchPlan:
        """Length-bucketed batches of at most ``batch_seconds`` padded audio (at least the
        longest utterance); ``weights``: how often per epoch each utterance comes (None: once).
        ``buffer`` is for shard datasets, whose plan reads shard by shard."""
        durations = [u.duration for u in self.utts]
        return BucketingBatchSampler(durations, max(batch_seconds, max(durations)), shuffle, seed, weights=weights)


@dataclass
class Batch:
    waveforms: torch.Tensor  # (B, S) float32, zero padded
    audio_lengths: torch.Tensor  # (B,) samples
    targets: torch.Tensor  # (B, L) int64, zero padded
    target_lengths: torch.Tensor  # (B,)
    ids: list[str]

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.waveforms.to(device, non_blocking=True),
            self.audio_lengths.to(device),
            self.targets.to(device),
            self.target_lengths.to(device),
            self.ids,
        )


def collate(items: Sequence[tuple[torch.Tensor, torch.Tensor, str]]) -> Batch:
    """Pad a list of dataset items into a :class:`Batch`."""
    audio_lengths = torch.tensor([len(a) for a, _, _ in items])
    target_lengths = torch.tensor([len(t) for _, t, _ in items])
    waveforms = torch.zeros(len(items), int(audio_lengths.max()))
    targets = torch.zeros(len(items), max(1, int(target_lengths.max())), dtype=torch.long)
    for i, (audio, target, _) in enumerate(items):
        waveforms[i, : len(audio)] = audio
        targets[i, : len(target)] = target
    return Batch(waveforms, audio_lengths, targets, target_lengths, [uid for _, _, uid in items])


def bucket(
    indices: Iterable[int],
    durations: Sequence[float],
    batch_seconds: float,
    rng: random.Random | None = None,
    jitter: float = 0.1,
) -> list[list[int]]:
    """Cut ``indices`` (an index may come more than once) sorted by duration (jittered by
    ``rng``, when given, so batches differ between epochs) into batches whose
    ``len(batch) * longest`` stays under ``batch_seconds``."""
    if rng is not None:
        keyed = [(durations[i] * (1 + jitter * (rng.random() - 0.5)), i) for i in indices]
    else:
        keyed = [(durations[i], i) for i in indices]
    keyed.sort(key=lambda pair: pair[0])
    batches, current, longest = [], [], 0.0
    for _, i in keyed:
        longest_if_added = max(longest, durations[i])
        if current and longest_if_added * (len(current) + 1) > batch_seconds:
            batches.append(current)
            current, longest_if_added = [], durations[i]
        current.append(i)
        longest = longest_if_added
    if current:
        batches.append(current)
    return batches


class DurationBatching:
    """What the batch plans share: utterance durations, a cap of ``batch_seconds`` of padded
    audio per batch, seeded shuffling with duration ``jitter``, and the epoch."""

    def __init__(
        self, durations: Sequence[float], batch_seconds: float, shuffle: bool, seed: int, jitter: float
    ) -> None:
        if batch_seconds < max(durations):
            raise ValueError(f"batch_seconds={batch_seconds} is below the longest utterance ({max(durations):.1f} s)")
        self.durations, self.batch_seconds = list(durations), batch_seconds
        self.shuffle, self.seed, self.jitter = shuffle, seed, jitter
        self.epoch = 0
        self.sorted_first = False

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


class BucketingBatchSampler(DurationBatching, torch.utils.data.Sampler[list[int]]):
    """Batches of similar-length utterances holding at most ``batch_seconds`` of padded audio.

    Utterances are sorted by duration (with a little random jitter each epoch, so batches
    differ between epochs), cut into batches whose ``len(batch) * longest`` stays under
    ``batch_seconds``, and the batch order is shuffled. ``sorted_first`` keeps the
    shortest-first order (SortaGrad) for the epoch. Deterministic given ``seed`` and epoch.

    ``weights`` (one per utterance) set how often each comes in an epoch: weight 2 twice,
    0.5 in a random half of the epochs (a different half each epoch); the default is once.
    """

    def __init__(
        self,
        durations: Sequence[float],
        batch_seconds: float,
        shuffle: bool = True,
        seed: int = 0,
        jitter: float = 0.1,
        weights: Sequence[float] | None = None,
    ) -> None:
        super().__init__(durations, batch_seconds, shuffle, seed, jitter)
        if weights is not None and (len(weights) != len(durations) or min(weights) < 0):
            raise ValueError(f"{len(weights)} weights for {len(durations)} utterances, or a negative one")
        self.weights = None if weights is None else list(weights)
        self._cache: tuple[tuple[int, bool], list[list[int]]] | None = None

    def epoch_indices(self, rng: random.Random) -> list[int]:
        """The utterances of this epoch: each once, or as often as its weight draws."""
        if self.weights is None:
            return list(range(len(self.durations)))
        return [i for i, w in enumerate(self.weights) for _ in range(int(w) + (rng.random() < w - int(w)))]

    def batches(self) -> list[list[int]]:
        key = (self.epoch, self.sorted_first)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        rng = random.Random(self.seed * 100003 + self.epoch)
        batches = bucket(self.epoch_indices(rng), self.durations, self.batch_seconds, rng if self.shuffle else None,
                         self.jitter)  # fmt: skip
        if self.shuffle and not self.sorted_first:
            rng.shuffle(batches)
        self._cache = (key, batches)
        return batches

    def batches_for(self, rank: int, world: int) -> list[list[int]]:
        """Rank ``rank`` of ``world``'s batches: every ``world``-th one."""
        return self.batches()[rank::world]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.batches())


class BatchPlan(Protocol):
    """What :class:`DistributedBatchSampler` needs: each epoch's batches, split over ranks."""

    seed: int
    epoch: int
    sorted_first: bool

    def set_epoch(self, epoch: int) -> None: ...

    def batches_for(self, rank: int, world: int) -> list[list[int]]: ...


class DistributedBatchSampler(torch.utils.data.Sampler[list[tuple[int, int]]]):
    """This rank's share of a :class:`BatchPlan`'s batches (:class:`BucketingBatchSampler`,
    or ``asr.shards.ShardBatchSampler``), from a position.

    For training
    (``even=True``) every rank gets the same number (the last few batches are left out), so
    collective operations stay in step. :meth:`set_position` starts an epoch after its first
    ``start`` batches (exact mid-epoch resume). Items are ``(index, seed)``: the seed,
    fixed by (sampler seed, epoch, index), drives that utterance's augmentation.
    """

    def __init__(self, sampler: BatchPlan, rank: int = 0, world: int = 1, even: bool = True) -> None:
        self.sampler, self.rank, self.world, self.even = sampler, rank, world, even
        self.start = 0

    def set_position(self, epoch: int, start: int = 0) -> None:
        self.sampler.set_epoch(epoch)
        self.start = start

    def _mine(self) -> list[list[int]]:
        mine = self.sampler.batches_for(self.rank, self.world)
        if self.even and self.world > 1:
            mine = mine[: min(len(self.sampler.batches_for(r, self.world)) for r in range(self.world))]
        return mine

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        base = (self.sampler.seed * 1_000_003 + self.sampler.epoch) * 1_000_000_007
        copies: Counter[int] = Counter()  # an utterance weighted to come twice gets two seeds
        for n, batch in enumerate(self._mine()):
            items = []
            for i in batch:
                items.append((i, (base + i + copies[i] * 7_919_000_003) % 2**63))
                copies[i] += 1
            if n >= self.start:
                yield items

    def __len__(self) -> int:
        """Batches of this rank's epoch, the skipped ``start`` ones included."""
        return len(self._mine())


def padding_fraction(batches: Sequence[Sequence[int]], durations: Sequence[float]) -> float:
    """Share of padded audio in ``batches`` (0 = no padding)."""
    real = sum(durations[i] for b in batches for i in b)
    padded = sum(len(b) * max(durations[i] for i in b) for b in batches)
    return 1.0 - real / padded if padded else 0.0


def total_hours(utts: Sequence[Utterance]) -> float:
    return math.fsum(u.duration for u in utts) / 3600
