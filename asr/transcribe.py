"""Inference: waveforms, files and manifests in, transcripts out (greedy CTC decoding, or a
:class:`~asr.decoding.BeamSearchDecoder` when one is given)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from asr.audio import load_audio
from asr.checkpoint import LoadedModel
from asr.data import AudioDataset, BucketingBatchSampler, Utterance, collate, read_manifest
from asr.decoding import BeamSearchDecoder, greedy_decode


def seconds_per_frame(loaded: LoadedModel) -> float:
    """Duration of one output (CTC) frame of the model, in seconds."""
    return loaded.config.model.output_hop * loaded.config.features.hop_ms / 1000


@torch.no_grad()
def log_probs_of(
    loaded: LoadedModel, waveforms: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``waveforms (B, S)``, ``lengths (B,)`` samples → ``log_probs (B, T', V)``, ``(B,)`` frames."""
    device = next(loaded.model.parameters()).device
    feats, frames = loaded.features(waveforms.to(device), lengths.to(device))
    return loaded.model(feats, frames)


def _texts(loaded: LoadedModel, posteriors: Sequence[np.ndarray], decoder: BeamSearchDecoder | None, workers: int):
    if decoder is None:
        return [greedy_decode(torch.from_numpy(x)[None], torch.tensor([len(x)]), loaded.vocab)[0] for x in posteriors]
    return [nbest[0].text for nbest in decoder.decode_batch(list(posteriors), workers=workers)]


def transcribe_arrays(
    loaded: LoadedModel, audios: Sequence[np.ndarray], decoder: BeamSearchDecoder | None = None
) -> list[str]:
    """Transcripts of 16 kHz mono float arrays ``(samples,)``, run as one padded batch."""
    batch = collate([(torch.from_numpy(np.asarray(a, dtype=np.float32)), torch.zeros(0), "") for a in audios])
    log_probs, lengths = log_probs_of(loaded, batch.waveforms, batch.audio_lengths)
    posteriors = [log_probs[i, : int(n)].float().cpu().numpy() for i, n in enumerate(lengths)]
    return _texts(loaded, posteriors, decoder, 1)


def transcribe_files(
    loaded: LoadedModel, paths: Sequence[str | Path], decoder: BeamSearchDecoder | None = None
) -> list[str]:
    """One transcript per file; raises :class:`~asr.audio.AudioError` naming a bad file."""
    rate = loaded.config.features.sample_rate
    return [transcribe_arrays(loaded, [load_audio(p, rate)], decoder)[0] for p in paths]


def manifest_posteriors(
    loaded: LoadedModel, manifest: str | Path, batch_seconds: float = 200.0, num_workers: int = 1
) -> tuple[list[Utterance], list[np.ndarray]]:
    """The utterances of ``manifest`` and their ``log_probs (T_i, V)`` (float32), in order."""
    utts = read_manifest(manifest)
    durations = [u.duration for u in utts]
    sampler = BucketingBatchSampler(durations, max(batch_seconds, max(durations)), shuffle=False)
    dataset = AudioDataset(utts, loaded.vocab, loaded.config.features.sample_rate)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=num_workers)
    of_id: dict[str, np.ndarray] = {}
    for batch in loader:
        log_probs, lengths = log_probs_of(loaded, batch.waveforms, batch.audio_lengths)
        for i, utt_id in enumerate(batch.ids):
            of_id[utt_id] = log_probs[i, : int(lengths[i])].float().cpu().numpy()
    return utts, [of_id[u.id] for u in utts]


def recognize_manifest(
    loaded: LoadedModel,
    manifest: str | Path,
    decoder: BeamSearchDecoder | None = None,
    batch_seconds: float = 200.0,
    num_workers: int = 1,
    decode_workers: int = 1,
) -> tuple[list[str], list[str], list[str]]:
    """Decode every utterance of ``manifest``: returns ``(ids, refs, hyps)`` in manifest order.
    Greedy without ``decoder``; beam search in ``decode_workers`` processes with one."""
    utts, posteriors = manifest_posteriors(loaded, manifest, batch_seconds, num_workers)
    hyps = _texts(loaded, posteriors, decoder, decode_workers)
    return [u.id for u in utts], [u.text for u in utts], hyps
