"""Speech detectors (asr.vad): frame alignment under any chunking, Silero against energy on
noise, and the segmenter and the streaming endpointer on top of them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.audio import load_audio
from asr.config import ConfigError, SegmentConfig
from asr.segment import Segmenter
from asr.vad import BusyGate, EnergyDetector, SileroDetector, VADError, make_detector

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


@pytest.mark.parametrize("vad", ["silero", "energy"])
def test_segments_keep_the_detectors_pad_unless_one_is_set(vad: str) -> None:
    """Silero's speech outlasts the sound by a window: its segments keep 0.1 s, energy's 0.15 s."""
    audio, _, _ = padded_clip()
    speech = np.flatnonzero(decisions(make_detector(SegmentConfig(vad=vad)), audio, None))
    for pad, want in ((-1.0, {"silero": 0.1, "energy": 0.15}[vad]), (0.3, 0.3), (0.0, 0.0)):
        segmenter = Segmenter(SegmentConfig(vad=vad, pad=pad))
        (segment,) = segmenter.push(audio) + segmenter.finish()
        assert segment.start == pytest.approx(speech.min() / 100 - want, abs=1e-6)
        assert segment.end == pytest.approx((speech.max() + 1) / 100 + want, abs=1e-6)


def test_detector_errors_and_settings() -> None:
    with pytest.raises(VADError, match="8 or 16 kHz audio, not 22050 Hz"):
        make_detector(SegmentConfig(vad="silero"), 22050)
    assert isinstance(make_detector(SegmentConfig(vad="energy"), 22050), EnergyDetector)
    with pytest.raises(ConfigError, match=r"segment\.vad 'webrtc' must be silero or energy"):
        SegmentConfig(vad="webrtc")
    with pytest.raises(ConfigError, match=r"vad_threshold 1\.2"):
        SegmentConfig(vad_threshold=1.2)
    with pytest.raises(ConfigError, match=r"segment\.vad_gate_db -1 must not be negative"):
        SegmentConfig(vad_gate_db=-1)
    with pytest.raises(ConfigError, match=r"pad -0\.1 not negative \(or -1: the detector's own\)"):
        SegmentConfig(pad=-0.1)
    assert SegmentConfig().vad == "silero"


def gate_run(db: np.ndarray, speech: np.ndarray, margin: float = 3.0, seed: int = 0) -> np.ndarray:
    """BusyGate's decisions over frame energies ``db`` and Silero decisions ``speech``, fed in random chunks."""
    gate, out, i, rng = BusyGate(margin), [], 0, np.random.default_rng(seed)
    while i < len(db):
        n = int(rng.integers(1, 300))
        out += gate.push(db[i : i + n].tolist(), speech[i : i + n].tolist())
        i += n
    return np.array(out + gate.push([], [], final=True))


def test_busy_gate_keeps_only_frames_above_a_speech_like_background() -> None:
    rng = np.random.default_rng(0)
    frames = 3000  # 30 s: a talker 8 dB over babble for 2 s of every 3
    db = -30 + rng.normal(0, 1.5, frames)
    talker = (np.arange(frames) // 100) % 3 != 2
    db[talker] += 8
    always = np.ones(frames, bool)  # Silero hears speech everywhere
    out = gate_run(db, always)
    assert len(out) == frames and np.array_equal(out, gate_run(db, always, seed=1))
    assert out[:500].all()  # under 5 s of history: Silero's word stands
    late = slice(1000, frames)
    assert out[late][talker[late]].mean() > 0.97 and out[late][~talker[late]].mean() < 0.3
    assert gate_run(db, always, margin=20)[1000:].sum() == 0  # nothing stands 20 dB out
    # with pauses Silero finds (a third of the time non-speech), decisions pass unchanged
    assert np.array_equal(gate_run(db, talker), talker)


def test_silero_with_the_gate_finds_pauses_in_babble() -> None:
    clip = load_audio(FIXTURES / "utt1.wav")
    others = [load_audio(FIXTURES / f"utt{i}.wav") for i in (0, 2, 3, 0, 2, 3)]  # six voices, each shifted
    rng = np.random.default_rng(0)
    parts, spans, t = [], [], 0
    for _ in range(8):  # 8 x (utt1 + 1 s pause)
        parts += [clip, np.zeros(16000, np.float32)]
        spans.append((t, t + len(clip)))
        t += len(clip) + 16000
    talker = np.concatenate(parts)
    loops = [np.tile(o, len(talker) // len(o) + 1)[: len(talker)] for o in others]
    babble = sum(np.roll(loop, int(rng.integers(16000))) for loop in loops)
    babble *= np.sqrt(np.mean(clip**2) / np.mean(babble**2)) / 10 ** (10 / 20)  # 10 dB under the talker
    audio = (talker + babble).astype(np.float32)
    plain = decisions(SileroDetector(SegmentConfig(vad_gate_db=0)), audio, None)
    gated = decisions(SileroDetector(SegmentConfig()), audio, 0)
    pauses = np.ones(len(plain), bool)
    for s, e in spans:
        pauses[s // 160 - 20 : e // 160 + 20] = False
    pauses[:500] = False  # the gate needs 5 s of history
    assert np.mean(np.array(plain)[pauses]) > 0.9  # Silero alone: babble is speech
    assert np.mean(np.array(gated)[pauses]) < 0.3
    in_speech = np.zeros(len(plain), bool)
    for s, e in spans[4:]:
        in_speech[s // 160 : e // 160] = True
    assert np.mean(np.array(gated)[in_speech]) > 0.9
