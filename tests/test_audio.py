from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.audio import AudioError, audio_duration, load_audio, to_mono_float, write_audio


def _tone(rate: int, seconds: float = 0.5, freq: float = 440.0) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return 0.5 * np.sin(2 * np.pi * freq * t)


@pytest.mark.parametrize(
    ("fmt", "subtype"), [("WAV", "PCM_16"), ("WAV", "FLOAT"), ("FLAC", "PCM_24"), ("OGG", "VORBIS")]
)
def test_load_resamples_and_downmixes(tmp_path: Path, fmt: str, subtype: str) -> None:
    stereo = np.stack([_tone(44100), _tone(44100)], axis=1)
    path = tmp_path / f"tone.{fmt.lower()}"
    sf.write(path, stereo, 44100, format=fmt, subtype=subtype)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) - 8000) <= 2  # 0.5 s at 16 kHz
    spectrum = np.abs(np.fft.rfft(audio))
    assert abs(np.argmax(spectrum) * 16000 / len(audio) - 440) < 5  # the tone survives resampling
    assert 0.4 < np.abs(audio).max() < 0.6


def test_mp3_loads(tmp_path: Path) -> None:
    path = tmp_path / "tone.mp3"
    sf.write(path, _tone(22050), 22050, format="MP3")
    assert abs(len(load_audio(path)) / 16000 - 0.5) < 0.1  # mp3 frames pad a little


def test_int_arrays_are_scaled() -> None:
    assert to_mono_float(np.array([-32768, 0, 16384], dtype=np.int16)).tolist() == [-1.0, 0.0, 0.5]
    assert to_mono_float(np.array([0, 128, 255], dtype=np.uint8))[1] == 0.0
    assert to_mono_float(np.array([[1.0, 0.0], [0.5, 0.5]], dtype=np.float64)).tolist() == [0.5, 0.5]


def test_missing_file_error_names_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match=r"nope\.wav: no such file"):
        load_audio(tmp_path / "nope.wav")


def test_non_audio_file_error(tmp_path: Path) -> None:
    bad = tmp_path / "notes.wav"
    bad.write_text("this is not audio")
    with pytest.raises(AudioError, match=r"notes\.wav: not an audio file \(format not recognised\)"):
        load_audio(bad)


def test_empty_and_directory_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty\.wav: empty file"):
        load_audio(tmp_path / "empty.wav")
    (tmp_path / "dir.wav").mkdir()
    with pytest.raises(AudioError, match=r"dir\.wav: is a directory"):
        load_audio(tmp_path / "dir.wav")


def test_nan_samples_rejected(tmp_path: Path) -> None:
    samples = _tone(16000)
    samples[100] = np.nan
    sf.write(tmp_path / "nan.wav", samples, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"nan\.wav: contains NaN"):
        load_audio(tmp_path / "nan.wav")


def test_duration_from_header(tmp_path: Path) -> None:
    sf.write(tmp_path / "a.wav", _tone(8000, 1.25), 8000)
    assert audio_duration(tmp_path / "a.wav") == pytest.approx(1.25)


@pytest.mark.parametrize("suffix,container", [(".wav", "WAV"), (".flac", "FLAC")])
def test_write_audio_clips_and_leaves_no_temp_file(tmp_path: Path, suffix: str, container: str) -> None:
    samples = np.array([0.5, -0.25, 1.7, -3.0] * 1000, dtype=np.float32)
    path = write_audio(tmp_path / "sub" / f"a{suffix}", samples, 8000)
    info = sf.info(str(path))
    assert (info.format, info.subtype, info.samplerate) == (container, "PCM_16", 8000)
    back, _ = sf.read(path, dtype="float32")
    assert np.allclose(back[:4], [0.5, -0.25, 1.0, -1.0], atol=1e-4)
    assert [p.name for p in path.parent.iterdir()] == [path.name]
