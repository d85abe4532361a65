"""Log-mel features, normalization, VTLP and SpecAugment, batched on any torch device.

Frames are not centred (``center=False``): frame ``t`` is the FFT of samples
``[t * hop, t * hop + n_fft)`` (the ``win``-sample window centred inside), so features
computed chunk by chunk equal the offline ones.
"""

from __future__ import annotations

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


class FeaturePipeline(torch.nn.Module):
    """Waveforms → normalized log-mels, the model's input. Holds global CMVN statistics
    (buffers, saved in checkpoints) for ``normalize="global"``, the streaming-friendly mode.

    ``forward(waveforms (B, S), lengths (B,))`` → ``(feats (B, T, n_mels), frames (B,))``.
    """

    def __init__(self, cfg: FeatureConfig) -> None:
        super().__init__()
        if cfg.normalize not in ("utterance", "global", "none"):
            raise ValueError(f"unknown feature normalization {cfg.normalize!r}")
        self.cfg = cfg
        self.logmel = LogMel(cfg)
        self.register_buffer("mean", torch.zeros(cfg.n_mels))
        self.register_buffer("std", torch.ones(cfg.n_mels))

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor, warp: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        feats, frames = self.logmel(waveforms, lengths, warp)
        if self.cfg.normalize == "utterance":
            return utterance_cmvn(feats, frames), frames
        if self.cfg.normalize == "global":
            valid = torch.arange(feats.shape[1], device=feats.device)[None, :] < frames[:, None]
            return (feats - self.mean) / self.std * valid.unsqueeze(-1), frames
        valid = torch.arange(feats.shape[1], device=feats.device)[None, :] < frames[:, None]
        return feats * valid.unsqueeze(-1), frames  # padded frames 0, as in the other modes

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
