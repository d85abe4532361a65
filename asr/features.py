"""Log-mel features, normalization, VTLP and SpecAugment, batched on any torch device.

Frames are not centred (``center=False``): frame ``t`` is the FFT of samples
``[t * hop, t * hop + n_fft)`` (the ``win``-sample window centred inside), so features
computed chunk by chunk equal the offline ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchaudio

from asr.config import FeatureConfig, SpecAugmentConfig

LOG_FLOOR = 1e-6


def num_frames(num_samples: torch.Tensor | int, cfg: FeatureConfig) -> torch.Tensor | int:
    """Frames produced from ``num_samples`` samples (0 when shorter than one FFT frame)."""
    if isinstance(num_samples, int):
        return max(0, 1 + (num_samples - cfg.n_fft) // cfg.hop_length)
    frames = 1 + torch.div(num_samples - cfg.n_fft, cfg.hop_length, rounding_mode="floor")
    return torch.clamp(frames, min=0)


class LogMel(torch.nn.Module):
    """Waveforms ``(batch, samples)`` → log-mel ``(batch, frames, n_mels)``."""

    def __init__(self, cfg: FeatureConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=cfg.sample_rate,
            n_fft=cfg.n_fft,
            win_length=cfg.win_length,
            hop_length=cfg.hop_length,
            f_min=cfg.f_min,
            f_max=cfg.f_max,
            n_mels=cfg.n_mels,
            power=2.0,
            center=False,
            norm=None,
            mel_scale="htk",
        )

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor, warp: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``waveforms (B, S)`` float, ``lengths (B,)`` samples → ``(B, T, n_mels)``, ``(B,)`` frames.

        ``warp (B,)``: vocal tract length perturbation factors (see :func:`vtlp`), or None.
        Inputs shorter than ``n_fft`` samples yield zero frames.
        """
        if waveforms.shape[-1] < self.cfg.n_fft:
            pad = self.cfg.n_fft - waveforms.shape[-1]
            waveforms = torch.nn.functional.pad(waveforms, (0, pad))
        with torch.autocast(waveforms.device.type, enabled=False):
            power = self.mel.spectrogram(waveforms.float())  # (B, n_fft // 2 + 1, T)
            if warp is not None:
                power = vtlp(power, warp)
            spec = self.mel.mel_scale(power)  # (B, n_mels, T)
        feats = torch.log(spec + LOG_FLOOR).transpose(1, 2)
        frames = num_frames(lengths, self.cfg)
        return feats[:, : int(frames.max()) if len(frames) else 0], frames


def vtlp(power: torch.Tensor, warp: torch.Tensor, boundary: float = 0.8) -> torch.Tensor:
    """Vocal tract length perturbation (Jaitly & Hinton, 2013) of power spectra.

    ``power (B, F, T)`` linear-frequency bins, ``warp (B,)`` factors (1 = unchanged): output
    bin ``f`` takes the (interpolated) input at ``f / warp`` up to a boundary frequency,
    then a straight line to the Nyquist bin, so a formant at ``f`` moves to ``f * warp``.
    """
    bins = power.shape[1]
    nyquist = bins - 1
    alpha = warp.to(power.device, power.dtype)[:, None]  # (B, 1)
    f = torch.arange(bins, device=power.device, dtype=power.dtype)[None, :]  # (1, F)
    knee = boundary * nyquist * torch.clamp(alpha, max=1.0)  # output frequency of the kink
    below = f / alpha
    above = nyquist - (nyquist - knee / alpha) * (nyquist - f) / (nyquist - knee)
    source = torch.where(f <= knee, below, above).clamp(0, nyquist)  # (B, F)
    lo = source.floor().long().clamp(max=nyquist - 1)
    frac = (source - lo).unsqueeze(-1)
    index = lo.unsqueeze(-1).expand(-1, -1, power.shape[2])
    return power.gather(1, index) * (1 - frac) + power.gather(1, index + 1) * frac


def utterance_cmvn(feats: torch.Tensor, lengths: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Per-utterance mean/variance normalization over valid frames.

    ``feats (B, T, F)``, ``lengths (B,)`` → ``(B, T, F)`` with padded frames set to 0.
    """
    mask = (torch.arange(feats.shape[1], device=feats.device)[None, :] < lengths[:, None]).unsqueeze(-1)
    count = lengths.clamp(min=1).to(feats.dtype)[:, None, None]
    mean = (feats * mask).sum(1, keepdim=True) / count
    var = (((feats - mean) * mask) ** 2).sum(1, keepdim=True) / count
    return ((feats - mean) / torch.sqrt(var + eps)) * mask


def spec_augment(
    feats: torch.Tensor, lengths: torch.Tensor, cfg: SpecAugmentConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """SpecAugment frequency and time masks (set to 0, the normalized mean) per utterance.

    ``feats (B, T, F)``; time masks are at most ``time_width`` of each utterance's own length.
    """
    batch, frames, bins = feats.shape
    device = feats.device

    def rand(*shape: int) -> torch.Tensor:
        return torch.rand(*shape, generator=generator).to(device)

    keep = torch.ones(batch, frames, bins, dtype=torch.bool, device=device)
    freq = torch.arange(bins, device=device)[None, :]
    for _ in range(cfg.freq_masks):
        width = (rand(batch) * (cfg.freq_width + 1)).long()
        start = (rand(batch) * (bins - width).clamp(min=1)).long()
        keep &= ~((freq >= start[:, None]) & (freq < (start + width)[:, None]))[:, None, :]
    time = torch.arange(frames, device=device)[None, :]
    max_width = (lengths.to(device).float() * cfg.time_width).long()
    for _ in range(cfg.time_masks):
        width = (rand(batch) * (max_width + 1).float()).long()
        start = (rand(batch) * (lengths.to(device) - width).clamp(min=1).float()).long()
        keep &= ~((time >= start[:, None]) & (time < (start + width)[:, None]))[:, :, None]
    return feats * keep


@dataclass(frozen=True)
class CmvnState:
    """Running statistics of one stream's raw log-mels for ``normalize="online"``:
    ``frames`` seen, their per-bin ``total (n_mels,)`` and ``squares (n_mels,)`` (float64)."""

    frames: int
    total: torch.Tensor
    squares: torch.Tensor


def online_cmvn(
    feats: torch.Tensor,
    lengths: torch.Tensor,
    mean: torch.Tensor,
    std: torch.Tensor,
    prior_frames: float,
    start: CmvnState | None = None,
    eps: float = 1e-5,
) -> torch.Tensor:
    """Causal mean/variance normalization: frame ``t`` of an utterance by the statistics of
    its frames ``0..t`` (those of ``start`` first), with the global ``mean``/``std``
    ``(n_mels,)`` counted as ``prior_frames`` frames (Kaldi's online CMVN with a global prior).

    ``feats (B, T, F)`` raw log-mels, ``lengths (B,)`` → ``(B, T, F)``, padded frames 0.
    The same numbers whether an utterance comes whole or chunk by chunk (``start``, B = 1).
    """
    mask = (torch.arange(feats.shape[1], device=feats.device)[None, :] < lengths[:, None]).unsqueeze(-1)
    x = feats.double() * mask
    total, squares = x.cumsum(1), (x * x).cumsum(1)
    count = torch.arange(1, feats.shape[1] + 1, device=feats.device, dtype=torch.float64)[None, :, None]
    if start is not None:
        total, squares, count = total + start.total, squares + start.squares, count + start.frames
    mu, var = mean.double(), std.double() ** 2
    n = count + prior_frames
    m = (total + prior_frames * mu) / n
    v = ((squares + prior_frames * (var + mu * mu)) / n - m * m).clamp(min=0)
    return ((x - m) / torch.sqrt(v + eps) * mask).to(feats.dtype)


class FeaturePipeline(torch.nn.Module):
    """Waveforms → normalized log-mels, the model's input. Holds global CMVN statistics
    (buffers, saved in checkpoints) for ``normalize="global"`` and as the prior of
    ``"online"``, the two streaming-friendly modes.

    ``forward(waveforms (B, S), lengths (B,))`` → ``(feats (B, T, n_mels), frames (B,))``.
    Streaming feeds raw log-mels through :meth:`normalize_chunk` from :meth:`initial_cmvn`.
    """

    def __init__(self, cfg: FeatureConfig) -> None:
        super().__init__()  # cfg.normalize is checked by FeatureConfig itself
        self.cfg = cfg
        self.logmel = LogMel(cfg)
        self.register_buffer("mean", torch.zeros(cfg.n_mels))
        self.register_buffer("std", torch.ones(cfg.n_mels))

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor, warp: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        feats, frames = self.logmel(waveforms, lengths, warp)
        return self.normalize(feats, frames), frames

    def normalize(self, feats: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
        """Raw log-mels ``(B, T, n_mels)`` of whole utterances, ``frames (B,)`` → normalized, padding 0."""
        if self.cfg.normalize == "utterance":
            return utterance_cmvn(feats, frames)
        if self.cfg.normalize == "online":
            return online_cmvn(feats, frames, self.mean, self.std, self.cfg.cmvn_prior_frames)
        valid = (torch.arange(feats.shape[1], device=feats.device)[None, :] < frames[:, None]).unsqueeze(-1)
        if self.cfg.normalize == "global":
            return (feats - self.mean) / self.std * valid
        return feats * valid  # "none": padded frames 0, as in the other modes

    def initial_cmvn(self) -> CmvnState:
        """The statistics of a stream that has heard nothing (see :meth:`normalize_chunk`)."""
        zeros = torch.zeros(self.cfg.n_mels, dtype=torch.float64, device=self.mean.device)
        return CmvnState(0, zeros, zeros)

    def normalize_chunk(self, feats: torch.Tensor, state: CmvnState) -> tuple[torch.Tensor, CmvnState]:
        """Streaming: raw log-mels ``(T, n_mels)`` following those ``state`` has seen →
        normalized ``(T, n_mels)``, equal to :meth:`normalize` on the whole utterance's frames,
        and the new state (``state`` itself unchanged). Refuses ``normalize="utterance"``."""
        if self.cfg.normalize == "utterance":
            raise ValueError("streaming needs global, online or no feature normalization, not per-utterance CMVN")
        if self.cfg.normalize != "online":
            return self.normalize(feats[None], torch.tensor([len(feats)], device=feats.device))[0], state
        out = online_cmvn(
            feats[None], torch.tensor([len(feats)], device=feats.device), self.mean, self.std,
            self.cfg.cmvn_prior_frames, state,
        )[0]  # fmt: skip
        x = feats.double()
        return out, CmvnState(state.frames + len(feats), state.total + x.sum(0), state.squares + (x * x).sum(0))

    @torch.no_grad()
    def fit_global_stats(self, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        """Set the global mean/std from ``(waveforms, lengths)`` batches of training audio."""
        total = torch.zeros(self.cfg.n_mels, dtype=torch.float64)
        squares = torch.zeros_like(total)
        count = 0
        for waveforms, lengths in batches:
            feats, frames = self.logmel(waveforms, lengths)
            for f, n in zip(feats, frames, strict=True):
                f = f[: int(n)].double().cpu()
                total += f.sum(0)
                squares += (f**2).sum(0)
                count += int(n)
        if count == 0:
            raise ValueError("no feature frames to compute global statistics from")
        mean = total / count
        self.mean.copy_(mean.float())
        self.std.copy_((squares / count - mean**2).clamp(min=1e-8).sqrt().float())
