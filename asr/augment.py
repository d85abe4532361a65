"""Waveform augmentation for training, applied per utterance in the data-loading workers:
speed perturbation (Ko et al., 2015: resampling, so tempo and pitch change together), gain,
channel bandwidth (resampling through a lower rate and back: telephone, 11 kHz game audio),
and additive noise at a random signal-to-noise ratio, from a noise manifest or generated
(white, pink or brown). SpecAugment and VTLP work on features (asr/features.py).

Randomness comes from the generator passed per utterance (seeded by the training
sampler, see ``asr.data.DistributedBatchSampler``), else from torch's global generator.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from asr.audio import load_audio, resample
from asr.config import AugmentConfig
from asr.data import Utterance

SPEED_STEPS = 20  # speed factors are rounded to 1/20 (few distinct resampling ratios)


def speed_perturb(audio: torch.Tensor, factor: float, sample_rate: int) -> torch.Tensor:
    """``audio (samples,)`` played ``factor`` times faster: ``samples / factor`` samples."""
    if factor == 1.0:
        return audio
    return torch.from_numpy(resample(audio.numpy(), round(sample_rate * factor), sample_rate))


def band_limit(audio: torch.Tensor, through: int, sample_rate: int) -> torch.Tensor:
    """``audio (samples,)`` resampled to ``through`` Hz and back: nothing above ``through / 2``
    is left, as in audio recorded at that rate (a no-op when ``through >= sample_rate``)."""
    if through >= sample_rate:
        return audio
    back = torch.from_numpy(resample(resample(audio.numpy(), sample_rate, through), through, sample_rate))
    back = back[: audio.shape[0]]
    return torch.nn.functional.pad(back, (0, audio.shape[0] - back.shape[0]))


def colored_noise(samples: int, exponent: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Unit-RMS noise whose power falls as ``1 / f**exponent`` (0 white, 1 pink, 2 brown)."""
    white = torch.randn(samples, generator=generator)
    if exponent == 0:
        return white / white.pow(2).mean().sqrt().clamp(min=1e-8)
    spectrum = torch.fft.rfft(white)
    freqs = torch.arange(spectrum.shape[0], dtype=torch.float32).clamp(min=1)
    noise = torch.fft.irfft(spectrum / freqs ** (exponent / 2), n=samples)
    return noise / noise.pow(2).mean().sqrt().clamp(min=1e-8)


def add_noise(audio: torch.Tensor, noise: torch.Tensor, snr_db: float) -> torch.Tensor:
    """``audio + noise`` scaled to ``snr_db`` (noise looped or cut to the audio's length)."""
    if noise.shape[0] < audio.shape[0]:
        noise = noise.repeat(math.ceil(audio.shape[0] / noise.shape[0]))
    noise = noise[: audio.shape[0]]
    signal_power = audio.pow(2).mean().clamp(min=1e-10)
    noise_power = noise.pow(2).mean().clamp(min=1e-10)
    return audio + noise * torch.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))


class WaveformAugment:
    """Callable ``audio (samples,) → audio`` applying :class:`AugmentConfig` at random."""

    def __init__(self, cfg: AugmentConfig, sample_rate: int, noises: Sequence[Utterance] = ()) -> None:
        self.cfg, self.sample_rate, self.noises = cfg, sample_rate, list(noises)
        self.band_rates = cfg.rates()

    @property
    def active(self) -> bool:
        c = self.cfg
        return c.speed > 0 or c.gain_db > 0 or c.noise_prob > 0 or bool(self.band_rates)

    def __call__(self, audio: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        c, g = self.cfg, generator

        def uniform(low: float, high: float) -> float:
            return low + (high - low) * float(torch.rand((), generator=g))

        if c.speed > 0:  # factors 1 - speed, 1, 1 + speed, as in Kaldi's 3-way perturbation
            factor = (1 - c.speed, 1.0, 1 + c.speed)[int(torch.randint(3, (), generator=g))]
            audio = speed_perturb(audio, round(factor * SPEED_STEPS) / SPEED_STEPS, self.sample_rate)
        if c.gain_db > 0:
            audio = audio * 10 ** (uniform(-c.gain_db, c.gain_db) / 20)
        if c.noise_prob > 0 and uniform(0, 1) < c.noise_prob:
            snr = uniform(c.snr_low, c.snr_high)
            audio = add_noise(audio, self._noise(audio.shape[0], g), snr)
        if self.band_rates:  # the channel last: its noise is band-limited too
            through = self.band_rates[int(torch.randint(len(self.band_rates), (), generator=g))]
            audio = band_limit(audio, through, self.sample_rate)
        return audio.clamp(-1, 1)

    def _noise(self, samples: int, g: torch.Generator | None) -> torch.Tensor:
        if not self.noises:
            return colored_noise(samples, float(torch.randint(3, (), generator=g)), g)
        utt = self.noises[int(torch.randint(len(self.noises), (), generator=g))]
        noise = torch.from_numpy(load_audio(utt.audio, self.sample_rate))
        start = int(torch.randint(max(1, noise.shape[0] - samples), (), generator=g))
        return noise[start:]
