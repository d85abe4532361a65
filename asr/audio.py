"""Audio loading: any soundfile-readable file (wav/flac/ogg/mp3) to 16 kHz mono float32.

Errors are :class:`AudioError` and always name the file and the problem.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

SAMPLE_RATE = 16000


class AudioError(ValueError):
    """A file that cannot be used as audio; the message names the file and the problem."""


def resample(samples: np.ndarray, orig_rate: int, new_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling of a mono signal ``(samples,)``; a no-op when rates match."""
    if orig_rate == new_rate:
        return samples
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(samples)), orig_rate, new_rate)
    return out.numpy()


def to_mono_float(samples: np.ndarray) -> np.ndarray:
    """``(samples,)`` or ``(samples, channels)`` of any int/float dtype → float32 mono in [-1, 1]."""
    if np.issubdtype(samples.dtype, np.integer):
        info = np.iinfo(samples.dtype)
        scale = float(max(-info.min, info.max + 1))
        offset = (info.max + info.min + 1) / 2 if info.min == 0 else 0.0  # unsigned PCM
        samples = (samples.astype(np.float32) - offset) / scale
    samples = samples.astype(np.float32, copy=False)
    if samples.ndim == 2:
        samples = samples.mean(axis=1)
    return samples


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read ``path`` as float32 mono at ``sample_rate``: shape ``(samples,)``.

    Raises :class:`AudioError` for a missing, empty, unreadable or non-audio file.
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file")
    return _decode(str(path), str(path), sample_rate)


def decode_audio(data: bytes, name: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Like :func:`load_audio` for the bytes of an audio file (e.g. a tar member) named ``name``."""
    if not data:
        raise AudioError(f"{name}: empty file")
    return _decode(io.BytesIO(data), name, sample_rate)


def _decode(source: str | io.BytesIO, name: str, sample_rate: int) -> np.ndarray:
    try:
        samples, rate = sf.read(source, dtype="float32", always_2d=True)
    except sf.LibsndfileError as e:
        raise AudioError(f"{name}: not a readable audio file ({e.error_string})") from None
    except (OSError, RuntimeError) as e:
        raise AudioError(f"{name}: cannot read audio ({e})") from None
    if samples.shape[0] == 0:
        raise AudioError(f"{name}: contains no samples")
    if not np.isfinite(samples).all():
        raise AudioError(f"{name}: contains NaN or infinite samples")
    return resample(to_mono_float(samples), rate, sample_rate)


def audio_duration(path: str | Path) -> float:
    """Duration in seconds read from the file header (no decoding)."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise AudioError(f"{path}: cannot read audio header ({e})") from None
    return info.frames / info.samplerate
