"""Inference: waveforms and files in, transcripts out (greedy CTC decoding)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from asr.audio import load_audio
from asr.checkpoint import LoadedModel
from asr.data import AudioDataset, BucketingBatchSampler, collate, read_manifest
from asr.decoding import greedy_decode


@torch.no_grad()
def log_probs_of(
    loaded: LoadedModel, waveforms: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``waveforms (B, S)``, ``lengths (B,)`` samples → ``log_probs (B, T', V)``, ``(B,)`` frames."""
    device = next(loaded.model.parameters()).device
    feats, frames = loaded.features(waveforms.to(device), lengths.to(device))
    return loaded.model(feats, frames)


def transcribe_arrays(loaded: LoadedModel, audios: Sequence[np.ndarray]) -> list[str]:
    """Transcripts of 16 kHz mono float arrays ``(samples,)``, decoded as one padded batch."""
    batch = collate([(torch.from_numpy(np.asarray(a, dtype=np.float32)), torch.zeros(0), "") for a in audios])
    log_probs, lengths = log_probs_of(loaded, batch.waveforms, batch.audio_lengths)
    return greedy_decode(log_probs, lengths, loaded.vocab)


def transcribe_files(loaded: LoadedModel, paths: Sequence[str | Path]) -> list[str]:
    """One transcript per file; raises :class:`~asr.audio.AudioError` naming a bad file."""
    rate = loaded.config.features.sample_rate
    return [transcribe_arrays(loaded, [load_audio(p, rate)])[0] for p in paths]


def recognize_manifest(
    loaded: LoadedModel, manifest: str | Path, batch_seconds: float = 200.0, num_workers: int = 1
) -> tuple[list[str], list[str], list[str]]:
    """Decode every utterance of ``manifest``: returns ``(ids, refs, hyps)`` in manifest order."""
    utts = read_manifest(manifest)
    durations = [u.duration for u in utts]
    sampler = BucketingBatchSampler(durations, max(batch_seconds, max(durations)), shuffle=False)
    dataset = AudioDataset(utts, loaded.vocab, loaded.config.features.sample_rate)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=num_workers)
    hyp_of: dict[str, str] = {}
    for batch in loader:
        log_probs, lengths = log_probs_of(loaded, batch.waveforms, batch.audio_lengths)
        hyp_of.update(zip(batch.ids, greedy_decode(log_probs, lengths, loaded.vocab), strict=True))
    return [u.id for u in utts], [u.text for u in utts], [hyp_of[u.id] for u in utts]
