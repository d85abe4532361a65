"""Waveform augmentation: speed perturbation lengths and pitch, noise at the asked SNR,
colored noise spectra, gain, and the augmented training path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.augment import WaveformAugment, add_noise, band_limit, colored_noise, speed_perturb
from asr.config import AugmentConfig
from asr.data import read_manifest

RATE = 16000


def tone(hz: float, seconds: float = 1.0) -> torch.Tensor:
    t = torch.arange(int(RATE * seconds)) / RATE
    return 0.5 * torch.sin(2 * torch.pi * hz * t)


def peak_hz(audio: torch.Tensor) -> float:
    spectrum = torch.fft.rfft(audio).abs()
    return float(spectrum.argmax()) * RATE / audio.shape[0]


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_perturbation_changes_length_and_pitch_together(factor: float) -> None:
    out = speed_perturb(tone(1000.0), factor, RATE)
    assert out.shape[0] == pytest.approx(RATE / factor, abs=1)
    assert peak_hz(out) == pytest.approx(1000.0 * factor, abs=2)
    assert torch.equal(speed_perturb(tone(1000.0), 1.0, RATE), tone(1000.0))


@pytest.mark.parametrize("snr", [0.0, 10.0, 25.0])
def test_noise_is_added_at_the_asked_snr(snr: float) -> None:
    clean = tone(440.0)
    noise = colored_noise(4000, 0)  # shorter than the audio: looped
    noisy = add_noise(clean, noise, snr)
    measured = 10 * torch.log10(clean.pow(2).mean() / (noisy - clean).pow(2).mean())
    assert float(measured) == pytest.approx(snr, abs=0.05)


def test_colored_noise_spectra_fall_with_their_exponent() -> None:
    gen = torch.Generator().manual_seed(0)
    slopes = []
    for exponent in (0, 1, 2):
        noise = colored_noise(RATE * 4, exponent, gen)
        assert float(noise.pow(2).mean()) == pytest.approx(1.0, rel=1e-4)  # unit RMS
        power = torch.fft.rfft(noise).abs().pow(2)
        low, high = power[100:1000].mean(), power[10000:20000].mean()  # ~25-250 Hz vs 2.5-5 kHz
        slopes.append(float(torch.log10(low / high)))
    assert abs(slopes[0]) < 0.2 and slopes[0] < slopes[1] < slopes[2]


def test_augment_uses_the_noise_manifest_and_keeps_the_range(tmp_path: Path) -> None:
    sf.write(tmp_path / "hum.wav", 0.3 * np.sin(2 * np.pi * 50 * np.arange(RATE) / RATE), RATE)
    (tmp_path / "noise.jsonl").write_text(json.dumps({"id": "hum", "audio": "hum.wav", "duration": 1.0, "text": ""}))
    cfg = AugmentConfig(noise_prob=1.0, snr_low=0.0, snr_high=0.0, gain_db=6.0)
    augment = WaveformAugment(cfg, RATE, read_manifest(tmp_path / "noise.jsonl"))
    torch.manual_seed(0)
    out = augment(tone(1000.0, 0.5))
    assert out.shape[0] == RATE // 2 and float(out.abs().max()) <= 1.0
    spectrum = torch.fft.rfft(out).abs()
    bin_hz = RATE / out.shape[0]
    assert float(spectrum[round(50 / bin_hz)]) > 0.3 * float(spectrum[round(1000 / bin_hz)])  # the hum is in
    assert not WaveformAugment(AugmentConfig(), RATE).active


def test_training_with_waveform_augmentation_runs_and_learns(tmp_path: Path, fixtures_manifest: Path) -> None:
    import dataclasses
    import re

    from asr.train import train
    from tests.conftest import tiny_config

    cfg = tiny_config(tmp_path, fixtures_manifest, epochs=10, log_every=1)
    cfg = dataclasses.replace(cfg, augment=AugmentConfig(speed=0.1, gain_db=3.0, noise_prob=0.5, snr_low=20.0))
    train(cfg)
    losses = [float(x) for x in re.findall(r"loss ([0-9.]+)", (tmp_path / "train.log").read_text())]
    assert len(losses) == 10 and losses[-1] < 0.7 * losses[0]


@pytest.mark.parametrize("through", [8000, 11025])
def test_band_limit_removes_what_a_lower_rate_cannot_hold(through: int) -> None:
    audio = tone(1000.0) + tone(6000.0)
    out = band_limit(audio, through, RATE)
    assert out.shape == audio.shape
    spectrum = torch.fft.rfft(out).abs()
    below, above = float(spectrum[1000]), float(spectrum[6000])  # 1 s of audio: bin k is k Hz
    assert below == pytest.approx(float(torch.fft.rfft(audio).abs()[1000]), rel=0.02)
    if through / 2 < 6000:
        assert above < 0.01 * below
    assert torch.equal(band_limit(audio, 16000, RATE), audio)


def test_band_rates_draw_each_channel() -> None:
    augment = WaveformAugment(AugmentConfig(band_rates="8000,16000"), RATE)
    assert augment.active and augment.band_rates == [8000, 16000]
    audio = tone(1000.0) + tone(6000.0)
    kept = [float(torch.fft.rfft(augment(audio, torch.Generator().manual_seed(s))).abs()[6000]) for s in range(20)]
    full = float(torch.fft.rfft(audio).abs()[6000])
    assert any(k < 0.01 * full for k in kept) and any(k == pytest.approx(full, rel=0.01) for k in kept)
    with pytest.raises(ValueError, match="band_rates"):
        AugmentConfig(band_rates="8k").rates()
