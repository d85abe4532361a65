"""Manifests, the audio dataset, padding collate and the length-bucketing batch sampler.

A manifest is JSON lines, one utterance each: ``{"id", "audio", "duration", "text"}``, where
``audio`` is absolute or relative to the manifest's folder and ``duration`` is in seconds.
"""

from __future__ import annotations

import json
import math
import os
import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from asr.audio import SAMPLE_RATE, load_audio
from asr.text import Vocabulary

REQUIRED_KEYS = ("id", "audio", "duration", "text")


@dataclass(frozen=True)
class Utterance:
    id: str
    audio: Path  # absolute
    duration: float  # seconds
    text: str  # normalized


class ManifestError(ValueError):
    """A manifest that cannot be used; the message names the file and line."""


def read_manifest(path: str | Path) -> list[Utterance]:
    """Parse a JSONL manifest; ``audio`` paths are resolved against the manifest's folder."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: no such manifest file")
    utts = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ManifestError(f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            missing = [k for k in REQUIRED_KEYS if k not in row]
            if missing:
                raise ManifestError(f"{path}:{lineno}: missing keys {missing}")
            audio = Path(row["audio"])
            if not audio.is_absolute():
                audio = path.parent / audio
            utts.append(Utterance(str(row["id"]), audio, float(row["duration"]), str(row["text"])))
    if not utts:
        raise ManifestError(f"{path}: manifest is empty")
    return utts


def write_manifest(path: str | Path, utts: Sequence[Utterance], extra: Sequence[dict] | None = None) -> None:
    """Write ``utts`` atomically; ``audio`` is stored relative to the manifest's folder when
    it lies below it. ``extra`` adds per-utterance keys (e.g. ``voice``)."""
    path = Path(path)
    root = path.parent.resolve()
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for i, u in enumerate(utts):
            audio = u.audio.resolve()
            audio = audio.relative_to(root) if audio.is_relative_to(root) else audio
            row = {"id": u.id, "audio": str(audio), "duration": round(u.duration, 3), "text": u.text}
            row.update(extra[i] if extra else {})
            f.write(json.dumps(row) + "\n")
    os.replace(tmp, path)


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
    """Cut ``indices`` sorted by duration (jittered by ``rng``, when given, so batches differ
    between epochs) into batches whose ``len(batch) * longest`` stays under ``batch_seconds``."""
    if rng is not None:
        keys = {i: durations[i] * (1 + jitter * (rng.random() - 0.5)) for i in indices}
    else:
        keys = {i: durations[i] for i in indices}
    batches, current, longest = [], [], 0.0
    for i in sorted(keys, key=keys.__getitem__):
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
    """

    def __init__(
        self,
        durations: Sequence[float],
        batch_seconds: float,
        shuffle: bool = True,
        seed: int = 0,
        jitter: float = 0.1,
    ) -> None:
        super().__init__(durations, batch_seconds, shuffle, seed, jitter)
        self._cache: tuple[tuple[int, bool], list[list[int]]] | None = None

    def batches(self) -> list[list[int]]:
        key = (self.epoch, self.sorted_first)
        if self._cache is not None and self._cache[0] == key:
            return self._cache[1]
        rng = random.Random(self.seed * 100003 + self.epoch)
        batches = bucket(range(len(self.durations)), self.durations, self.batch_seconds, rng if self.shuffle else None,
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
        for batch in self._mine()[self.start :]:
            yield [(i, (base + i) % 2**63) for i in batch]

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
