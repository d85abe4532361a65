"""The data adapter of bench/peer_training.py: asr's manifests as batches of 16 kHz waveforms
and character targets, for another toolkit's training loop.

Training batches are those ``asr train`` draws for the same settings (it is asr's own reading
code, so nothing differs but the model): the manifests' good lines (a bad line stops it, as
it stops ``asr train``), utterances over ``max_duration`` dropped, each manifest's lines as
often per epoch as its mix weight, length buckets of at most ``batch_seconds`` of padded
audio in a seeded order, the first epoch shortest first (SortaGrad; SpeechBrain's recipes
sort ascending too), and per utterance the same augmentation seed, so the band-rate
channel augmentation of ``recipes/synthetic/conf/bilstm.yaml`` gives each peer the audio
asr's model heard. Targets are :class:`asr.text.Vocabulary` ids (blank 0) of the normalized
text. Test sets come in length buckets too, unaugmented.

Runs in any virtual environment that has torch, numpy, soundfile, soxr and PyYAML, with the
repository root on ``sys.path`` (the NeMo peer's venv has no jiwer: nothing here scores).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import yaml

from asr.audio import SAMPLE_RATE
from asr.augment import WaveformAugment
from asr.config import AugmentConfig, ExperimentConfig, from_dict
from asr.data import (
    AudioDataset,
    Batch,
    BucketingBatchSampler,
    DistributedBatchSampler,
    ManifestError,
    Utterance,
    bad_lines_report,
    check_manifest,
    collate,
    read_manifest,
)
from asr.shards import training_dataset
from asr.text import Vocabulary

__all__ = ["SAMPLE_RATE", "Batch", "TrainData", "TrainStream", "eval_loader", "relative_lengths"]


@dataclass(frozen=True)
class TrainData:
    """What decides the training batches: manifests, mix weights, sampler and augmentation."""

    manifests: tuple[str, ...]
    weights: tuple[float, ...] = ()  # one per manifest; empty: all 1
    batch_seconds: float = 60.0  # padded audio per batch, seconds
    max_duration: float = 20.0  # longer training utterances are dropped (seconds)
    seed: int = 0
    sortagrad: bool = True  # the first epoch shortest first
    augment: AugmentConfig = field(default_factory=AugmentConfig)

    @classmethod
    def from_config(cls, config: str | Path, manifests: Sequence[str], weights: Sequence[float] = ()) -> TrainData:
        """The settings ``asr train --config config`` uses for ``manifests`` and ``weights``."""
        cfg = from_dict(ExperimentConfig, yaml.safe_load(Path(config).read_text()) or {})
        t = cfg.train
        return cls(tuple(manifests), tuple(weights), t.batch_seconds, t.max_duration, t.seed, t.sortagrad, cfg.augment)

    def sample_weights(self) -> list[float] | None:
        """Per-manifest weights for :func:`asr.shards.training_dataset` (None: all 1)."""
        if not self.weights:
            return None
        if len(self.weights) != len(self.manifests):
            raise ValueError(f"{len(self.weights)} mix weights for {len(self.manifests)} manifests")
        return [float(w) for w in self.weights]


def checked_utterances(manifest: str | Path, vocab: Vocabulary) -> list[Utterance]:
    """The lines of ``manifest``; :class:`ManifestError` listing the bad ones if any."""
    utts, bad = check_manifest(manifest, vocab)
    if bad:
        raise ManifestError(bad_lines_report(manifest, bad, len(utts)))
    return utts


class TrainStream:
    """Training batches, epoch after epoch without end, as ``asr train`` draws them.

    ``epoch`` is the epoch of the last batch given (0 first), ``batches`` how many were
    given and ``audio_seconds`` their audio (manifest durations, before augmentation);
    ``epoch_seconds`` is the audio of one epoch (each line's duration times its weight).
    """

    def __init__(self, data: TrainData, vocab: Vocabulary | None = None) -> None:
        self.data, self.vocab = data, vocab or Vocabulary()
        augment = WaveformAugment(data.augment, SAMPLE_RATE, self._noises())
        dataset, weights = training_dataset(
            ",".join(data.manifests),
            self.vocab,
            SAMPLE_RATE,
            read=lambda m: checked_utterances(m, self.vocab),
            weights=data.sample_weights(),
            max_duration=data.max_duration,
            transform=augment if augment.active else None,
        )
        uniform = set(weights) == {1.0}
        self.dataset: AudioDataset = dataset
        self.epoch_seconds = sum(u.duration * w for u, w in zip(dataset.utts, weights, strict=True))  # audio an epoch
        self.plan = dataset.batch_plan(data.batch_seconds, True, data.seed, None if uniform else weights)
        self.sampler = DistributedBatchSampler(self.plan)
        self.loader = torch.utils.data.DataLoader(dataset, batch_sampler=self.sampler, collate_fn=collate)
        self.epoch, self.batches, self.audio_seconds = 0, 0, 0.0

    def _noises(self) -> list[Utterance]:
        a = self.data.augment
        return read_manifest(a.noise_manifest) if a.noise_prob > 0 and a.noise_manifest else []

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """The utterance indices of each batch of ``epoch``, in training order."""
        self._set_epoch(epoch)
        return [list(b) for b in self.plan.batches_for(0, 1)]

    def _set_epoch(self, epoch: int) -> None:
        self.sampler.set_position(epoch)
        self.plan.sorted_first = self.data.sortagrad and epoch == 0

    def __iter__(self) -> Iterator[Batch]:
        durations = [u.duration for u in self.dataset.utts]
        for epoch in itertools.count():  # no end: the time budget stops training
            self._set_epoch(epoch)
            self.epoch = epoch
            plan = self.plan.batches_for(0, 1)
            for keys, batch in zip(plan, self.loader, strict=True):
                self.batches += 1
                self.audio_seconds += sum(durations[i] for i in keys)
                yield batch

    def planned_audio(self, batches: int) -> tuple[float, int]:
        """Audio seconds (manifest durations) of the first ``batches`` batches, and the epochs
        they span: what a run that took that many batches trained on (``asr train``'s run)."""
        durations = [u.duration for u in self.dataset.utts]
        seconds, epoch = 0.0, 0
        while batches > 0:
            plan = self.epoch_batches(epoch)
            seconds += sum(durations[i] for keys in plan[:batches] for i in keys)
            batches -= len(plan)
            epoch += 1
        return seconds, epoch


def eval_loader(
    manifest: str | Path, batch_seconds: float, vocab: Vocabulary | None = None
) -> tuple[list[Utterance], torch.utils.data.DataLoader]:
    """The lines of a test ``manifest`` and a loader of them in length buckets of at most
    ``batch_seconds`` of padded audio (no augmentation, no shuffling)."""
    vocab = vocab or Vocabulary()
    utts = checked_utterances(manifest, vocab)
    durations = [u.duration for u in utts]
    sampler = BucketingBatchSampler(durations, max(batch_seconds, max(durations)), shuffle=False)
    dataset = AudioDataset(utts, vocab, SAMPLE_RATE)
    return utts, torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate)


def relative_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """``lengths (B,)`` (samples or tokens) as fractions of the longest: SpeechBrain's ``wav_lens``."""
    return lengths.float() / lengths.max().clamp(min=1)


def describe(data: TrainData) -> str:
    """The augmentation in words, for table captions."""
    fields = {k: v for k, v in dataclasses.asdict(data.augment).items() if v != getattr(AugmentConfig(), k)}
    return ", ".join(f"{k} {v}" for k, v in fields.items()) or "none"
