"""Speech detectors (asr.vad): frame alignment under any chunking, Silero against energy on
noise, and the segmenter and the streaming endpointer on top of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.audio import load_audio
from asr.config import ConfigError, SegmentConfig
from asr.segment import Segmenter
from asr.vad import EnergyDetector, SileroDetector, VADError, make_detector

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "fixtures"


def padded_clip() -> tuple[np.ndarray, int, int]:
    """utt1 ("open the door", 1.2 s) with 1 s of silence each side; its first and last frame."""
    clip = load_audio(FIXTURES / "utt1.wav")
    audio = np.concatenate([np.zeros(16000, np.float32), clip, np.zeros(16000, np.float32)])
    return audio, 100, 100 + len(clip) // 160


def decisions(detector: object, audio: np.ndarray, seed: int | None) -> list[bool]:
    out, i, rng = [], 0, np.random.default_rng(seed)
    while i < len(audio):
        n = len(audio) if seed is None else int(rng.integers(1, 2500))
        out += detector.push(audio[i : i + n])
        i += n
    return out + detector.flush()


@pytest.mark.parametrize("make", [EnergyDetector, SileroDetector], ids=["energy", "silero"])
def test_one_decision_per_frame_whatever_the_chunking(make: type) -> None:
    audio, first, last = padded_clip()
    audio = audio[:-37]  # a partial last frame
    whole = decisions(make(), audio, None)
    assert len(whole) == -(-len(audio) // 160)  # every 10 ms frame, the partial last one included
    assert decisions(make(), audio, 0) == whole == decisions(make(), audio, 1)
    speech = np.flatnonzero(whole)
    assert first - 5 <= speech.min() <= first + 20 and last - 20 <= speech.max() <= last + 10
    assert 0.7 * (last - first) <= len(speech) <= last - first + 10


def test_silero_ignores_steady_noise_that_energy_calls_speech() -> None:
    noise = np.random.default_rng(0).normal(0, 0.05, 3 * 16000).astype(np.float32)  # -26 dBFS white noise
    assert np.mean(decisions(EnergyDetector(), noise, None)) > 0.9  # the floor climbs 1 dB/s: it takes ~30 s
    silero = SileroDetector()
    assert np.mean(decisions(silero, noise, None)) < 0.05
    assert len(silero.probabilities) == -(-len(noise) // 512) and max(silero.probabilities) < 0.5


def test_segmenter_with_silero_cuts_speech_out_of_noise() -> None:
    audio, first, last = padded_clip()
    noise = np.random.default_rng(1).normal(0, 0.003, len(audio)).astype(np.float32)  # ~20 dB below the speech
    segmenter = Segmenter(SegmentConfig(vad="silero"))
    segments = segmenter.push(audio + noise) + segmenter.finish()
    assert len(segments) == 1
    assert first / 100 - 0.25 <= segments[0].start <= first / 100 + 0.05
    assert last / 100 - 0.05 <= segments[0].end <= last / 100 + 0.3


def test_detector_errors_and_settings() -> None:
    with pytest.raises(VADError, match="8 or 16 kHz audio, not 22050 Hz"):
        make_detector(SegmentConfig(vad="silero"), 22050)
    assert isinstance(make_detector(SegmentConfig(vad="energy"), 22050), EnergyDetector)
    with pytest.raises(ConfigError, match=r"segment\.vad 'webrtc' must be silero or energy"):
        SegmentConfig(vad="webrtc")
    with pytest.raises(ConfigError, match=r"vad_threshold 1\.2"):
        SegmentConfig(vad_threshold=1.2)
    assert SegmentConfig().vad == "silero"
