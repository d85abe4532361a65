import librosa
import numpy as np
import pytest
import torch

from asr.config import ConfigError, FeatureConfig, SpecAugmentConfig
from asr.features import FeaturePipeline, LogMel, num_frames, online_cmvn, spec_augment, utterance_cmvn


def test_logmel_matches_librosa() -> None:
    """Same STFT/mel settings as librosa (HTK mel scale, no filter norm, uncentred frames)."""
    cfg = FeatureConfig()
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    signal = (0.3 * np.sin(2 * np.pi * 300 * t) + 0.05 * rng.standard_normal(16000)).astype(np.float32)
    ours, frames = LogMel(cfg)(torch.from_numpy(signal)[None], torch.tensor([16000]))
    mel = librosa.feature.melspectrogram(
        y=signal, sr=16000, n_fft=cfg.n_fft, win_length=cfg.win_length, hop_length=cfg.hop_length,
        center=False, n_mels=cfg.n_mels, fmin=cfg.f_min, fmax=cfg.f_max, htk=True, norm=None, power=2.0,
    )  # fmt: skip
    reference = np.log(mel + 1e-6).T
    assert ours.shape[1:] == reference.shape == (int(frames[0]), 80)
    # float32 STFT vs librosa's float64 path: agree to 1e-3 in the log domain
    np.testing.assert_allclose(ours[0].numpy(), reference, atol=1e-3)


def test_frame_arithmetic() -> None:
    cfg = FeatureConfig()
    assert (cfg.win_length, cfg.hop_length, cfg.frames_per_second) == (400, 160, 100.0)
    for samples in (0, 511, 512, 513, 671, 672, 16000):
        expected = 0 if samples < 512 else 1 + (samples - 512) // 160
        assert num_frames(samples, cfg) == expected
        assert int(num_frames(torch.tensor([samples]), cfg)[0]) == expected
    feats, frames = LogMel(cfg)(torch.zeros(2, 16000), torch.tensor([16000, 1000]))
    assert feats.shape == (2, 97, 80) and frames.tolist() == [97, 4]


def test_batched_features_equal_single() -> None:
    cfg = FeatureConfig()
    a, b = torch.randn(16000), torch.randn(9000)
    batch = torch.zeros(2, 16000)
    batch[0], batch[1, :9000] = a, b
    feats, frames = LogMel(cfg)(batch, torch.tensor([16000, 9000]))
    single, _ = LogMel(cfg)(b[None], torch.tensor([9000]))
    torch.testing.assert_close(feats[1, : frames[1]], single[0], atol=1e-4, rtol=1e-4)


def test_utterance_cmvn_ignores_padding() -> None:
    feats = torch.randn(2, 50, 4) * 3 + 7
    lengths = torch.tensor([50, 30])
    out = utterance_cmvn(feats, lengths)
    valid = out[1, :30]
    torch.testing.assert_close(valid.mean(0), torch.zeros(4), atol=1e-5, rtol=0)
    torch.testing.assert_close(valid.std(0, unbiased=False), torch.ones(4), atol=1e-3, rtol=0)
    assert out[1, 30:].abs().max() == 0


def test_global_cmvn_from_statistics() -> None:
    pipe = FeaturePipeline(FeatureConfig(normalize="global"))
    waves = torch.randn(3, 8000) * 0.1
    lengths = torch.tensor([8000, 8000, 8000])
    pipe.fit_global_stats([(waves, lengths)])
    feats, _ = pipe(waves, lengths)
    flat = feats.reshape(-1, 80)
    torch.testing.assert_close(flat.mean(0), torch.zeros(80), atol=1e-4, rtol=0)
    torch.testing.assert_close(flat.std(0, unbiased=False), torch.ones(80), atol=1e-3, rtol=0)


def test_spec_augment_masks_within_bounds() -> None:
    cfg = SpecAugmentConfig(freq_masks=2, freq_width=10, time_masks=2, time_width=0.1)
    feats = torch.ones(8, 200, 80)
    lengths = torch.full((8,), 200)
    gen = torch.Generator().manual_seed(0)
    out = spec_augment(feats, lengths, cfg, gen)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    masked_bins = (out == 0).all(dim=1).sum(dim=1)  # frequency bins masked for every frame
    assert (masked_bins <= 2 * 10).all() and masked_bins.sum() > 0
    masked_frames = (out == 0).all(dim=2).sum(dim=1)
    assert (masked_frames <= 2 * 20).all()


@pytest.mark.parametrize("normalize", ["utterance", "online", "global", "none"])
def test_pipeline_modes(normalize: str) -> None:
    pipe = FeaturePipeline(FeatureConfig(normalize=normalize))
    feats, frames = pipe(torch.randn(1, 4000), torch.tensor([4000]))
    assert feats.shape == (1, 22, 80) and frames.tolist() == [22]
    with pytest.raises(ConfigError, match=r"features\.normalize 'bogus': one of utterance, online, global, none"):
        FeatureConfig(normalize="bogus")


def test_online_cmvn_by_hand() -> None:
    """Frame t by the mean and variance of frames 0..t and ``prior_frames`` frames of the prior."""
    feats = torch.tensor([[[2.0], [4.0], [9.0], [0.0]]])  # (1, 4, 1); the last frame is padding
    mean, std = torch.tensor([1.0]), torch.tensor([2.0])
    out = online_cmvn(feats, torch.tensor([3]), mean, std, prior_frames=0)
    # frame 0: its own mean -> 0; frame 1: mean 3, var 1 -> 1; frame 2: mean 5, var 26/3
    assert out[0, :, 0].tolist() == pytest.approx([0.0, 1.0, 4 / (26 / 3) ** 0.5, 0.0], abs=1e-4)
    # one prior frame worth N(1, 2^2): frame 0 sees {prior, 2}: mean 1.5, E[x^2] (5 + 4) / 2 = 4.5
    out = online_cmvn(feats, torch.tensor([3]), mean, std, prior_frames=1, eps=0.0)
    assert float(out[0, 0, 0]) == pytest.approx(0.5 / (4.5 - 1.5**2) ** 0.5)
    # a huge prior is global CMVN
    out = online_cmvn(feats, torch.tensor([3]), mean, std, prior_frames=1e9, eps=0.0)
    assert out[0, :3, 0].tolist() == pytest.approx([0.5, 1.5, 4.0], abs=1e-6)


def test_online_cmvn_is_causal_and_streams_in_chunks() -> None:
    torch.manual_seed(0)
    pipe = FeaturePipeline(FeatureConfig(normalize="online", cmvn_prior_frames=30))
    pipe.mean.uniform_(-8, 0)
    pipe.std.uniform_(1, 3)
    waves = torch.randn(2, 16000) * 0.1
    waves[0, 8000:] *= 20  # louder later: the statistics move
    lengths = torch.tensor([16000, 11000])
    whole, frames = pipe(waves, lengths)
    assert whole[1, int(frames[1]) :].abs().max() == 0  # padding stays 0
    early, _ = pipe(waves[:1, :8000], torch.tensor([8000]))  # the first half alone: the same frames
    torch.testing.assert_close(early[0], whole[0, : early.shape[1]], atol=1e-5, rtol=0)
    raw, _ = pipe.logmel(waves[:1], lengths[:1])
    state, got = pipe.initial_cmvn(), []
    for begin, end in [(0, 1), (1, 9), (9, 40), (40, int(frames[0]))]:
        out, state = pipe.normalize_chunk(raw[0, begin:end], state)
        got.append(out)
    assert state.frames == int(frames[0])
    torch.testing.assert_close(torch.cat(got), whole[0, : int(frames[0])], atol=1e-5, rtol=0)
    utterance = FeaturePipeline(FeatureConfig(normalize="utterance"))
    with pytest.raises(ValueError, match="not per-utterance CMVN"):
        utterance.normalize_chunk(raw[0], utterance.initial_cmvn())


def test_vtlp_moves_a_tone_by_the_warp_factor() -> None:
    from asr.features import vtlp

    cfg = FeatureConfig()
    t = torch.arange(16000) / 16000
    tone = torch.sin(2 * torch.pi * 1000 * t)[None]
    logmel = LogMel(cfg)
    power = logmel.mel.spectrogram(tone)
    assert torch.equal(vtlp(power, torch.tensor([1.0])), power)  # factor 1: unchanged
    bin_hz = cfg.sample_rate / cfg.n_fft
    for factor in (0.9, 1.1):
        peak = vtlp(power, torch.tensor([factor]))[0].mean(-1).argmax().item() * bin_hz
        assert peak == pytest.approx(1000 * factor, abs=bin_hz)
    # the warped log-mels keep their shape and frames; the Nyquist bin stays in place
    feats, frames = logmel(tone, torch.tensor([16000]), torch.tensor([1.1]))
    assert feats.shape == logmel(tone, torch.tensor([16000]))[0].shape and int(frames[0]) == 97
    warped = vtlp(power, torch.tensor([1.1]))
    assert torch.allclose(warped[:, -1], power[:, -1])
