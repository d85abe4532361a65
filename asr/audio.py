"""Audio loading: any soundfile-readable file (wav/flac/ogg/mp3) to 16 kHz mono float32.

:class:`AudioStream` reads a file block by block (memory bounded by the block size, not by
the file's length) with streaming resampling; :func:`load_audio` reads a whole file through
it. Errors are :class:`AudioError` and always name the file and the problem: missing,
directory, empty, unreadable, not audio, unsupported codec, truncated, NaN samples or an
implausible sample rate.

Live sources for streaming: :func:`file_chunks` (a file in fixed pieces, optionally paced
at real time) and :func:`microphone_chunks` (an input device through sounddevice).
"""

from __future__ import annotations

import io
import struct
import time
from collections.abc import Iterator
from pathlib import Path
from queue import Queue
from typing import Any, BinaryIO

import numpy as np
import soundfile as sf
import soxr

from asr.files import atomic_path

SAMPLE_RATE = 16000
MIN_SAMPLE_RATE, MAX_SAMPLE_RATE = 1000, 384_000  # outside this, a header is broken, not audio
BLOCK_SECONDS = 30.0  # AudioStream's default block length
TRUNCATION_SLACK = 0.98  # compressed formats' frame counts are estimates (mp3 Xing headers)
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3")  # what a folder of audio is searched for

# WAVE format tags (RFC 2361) that libsndfile cannot decode, for a precise message.
_WAV_CODECS = {0x0055: "MPEG layer 3", 0x0050: "MPEG", 0x00FF: "AAC", 0x1610: "AAC", 0x2000: "AC-3",
               0x2001: "DTS", 0x0161: "WMA", 0x0162: "WMA Pro", 0x0092: "Dolby AC-3 SPDIF"}  # fmt: skip


class AudioError(ValueError):
    """A file that cannot be used as audio; the message names the file and the problem."""


def resample(samples: np.ndarray, orig_rate: int, new_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling (soxr, as :class:`AudioStream` resamples files: 3-8x faster than
    torchaudio's here) of a mono float signal ``(samples,)`` to ``round(samples * new_rate /
    orig_rate)`` samples; a no-op when the rates match."""
    if orig_rate == new_rate:
        return samples
    return soxr.resample(np.ascontiguousarray(samples, dtype=np.float32), orig_rate, new_rate)


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


class AudioStream:
    """A file (path, or the bytes of one) as float32 mono blocks at ``sample_rate``.

    Opening checks the container (existence, permissions, format, codec, sample rate, WAV
    truncation); iterating yields ``(samples,)`` blocks of about ``block_seconds`` and checks
    the samples (NaN/inf, early end of data). Use as a context manager or call :meth:`close`.
    ``name`` is what errors call the source (default: the path).
    """

    def __init__(
        self,
        source: str | Path | bytes,
        name: str | None = None,
        sample_rate: int = SAMPLE_RATE,
        block_seconds: float = BLOCK_SECONDS,
    ) -> None:
        self.name = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
        self.sample_rate, self.block_seconds = sample_rate, block_seconds
        self._file = _open(source, self.name)
        try:
            self._check_header(source)
        except AudioError:
            self._file.close()
            raise
        self.source_rate = self._file.samplerate
        self.channels = self._file.channels

    def _check_header(self, source: str | Path | bytes) -> None:
        rate = self._file.samplerate
        if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
            raise AudioError(
                f"{self.name}: implausible sample rate {rate} Hz in its header "
                f"(expected {MIN_SAMPLE_RATE} to {MAX_SAMPLE_RATE} Hz)"
            )
        if self._file.format == "WAV" and not isinstance(source, bytes):
            promised = _wav_data_bytes(Path(source))
            held = self._file.frames * self._file.channels * _bytes_per_sample(self._file.subtype)
            if promised is not None and held and promised > held:
                raise AudioError(
                    f"{self.name}: truncated: the WAV header promises {_seconds(promised, self._file):.2f} s "
                    f"of audio, the file holds {_seconds(held, self._file):.2f} s"
                )

    @property
    def duration(self) -> float:
        """Length in seconds from the header (an estimate for mp3)."""
        return self._file.frames / self._file.samplerate

    def __iter__(self) -> Iterator[np.ndarray]:
        f, rate = self._file, self._file.samplerate
        resampler = soxr.ResampleStream(rate, self.sample_rate, 1) if rate != self.sample_rate else None
        block, read = max(1, int(self.block_seconds * rate)), 0
        while True:
            try:
                chunk = f.read(block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as e:
                raise AudioError(f"{self.name}: corrupt or truncated data after {read / rate:.2f} s ({e})") from None
            last = len(chunk) < block
            if not np.isfinite(chunk).all():
                bad = read + int(np.flatnonzero(~np.isfinite(chunk).all(axis=1))[0])
                raise AudioError(f"{self.name}: contains NaN or infinite samples (first at {bad / rate:.3f} s)")
            read += len(chunk)
            mono = to_mono_float(chunk)
            if resampler is not None:
                mono = resampler.resample_chunk(mono, last=last)
            if len(mono):
                yield mono
            if last:
                break
        if read == 0:
            raise AudioError(f"{self.name}: contains no samples")
        if read < TRUNCATION_SLACK * f.frames:
            raise AudioError(
                f"{self.name}: truncated: the header promises {f.frames / rate:.2f} s, "
                f"the data ends after {read / rate:.2f} s"
            )

    def read_all(self) -> np.ndarray:
        """The whole file as one ``(samples,)`` array."""
        blocks = list(self)
        return blocks[0] if len(blocks) == 1 else np.concatenate(blocks)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> AudioStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _open(source: str | Path | bytes, name: str) -> sf.SoundFile:
    if isinstance(source, bytes):
        if not source:
            raise AudioError(f"{name}: empty file")
        handle: str | BinaryIO = io.BytesIO(source)
    else:
        path = Path(source)
        if not path.exists():
            raise AudioError(f"{name}: no such file")
        if path.is_dir():
            raise AudioError(f"{name}: is a directory, not an audio file")
        try:
            with open(path, "rb") as probe:
                head = probe.read(64)
        except PermissionError:
            raise AudioError(f"{name}: permission denied (cannot read the file)") from None
        except OSError as e:
            raise AudioError(f"{name}: cannot read ({e.strerror})") from None
        if not head:
            raise AudioError(f"{name}: empty file")
        handle = str(path)
    try:
        return sf.SoundFile(handle)
    except sf.LibsndfileError as e:
        raise AudioError(f"{name}: {_why_unreadable(source, e.error_string)}") from None
    except (OSError, RuntimeError) as e:
        raise AudioError(f"{name}: cannot read audio ({e})") from None


def _why_unreadable(source: str | Path | bytes, error: str) -> str:
    head = _wav_head(source, 64)
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        tag = _wav_format_tag(source)
        if tag is not None and tag not in (1, 3, 6, 7, 0xFFFE):
            codec = _WAV_CODECS.get(tag, "unknown")
            return f"unsupported codec: WAV format tag 0x{tag:04x} ({codec}); convert it to PCM, FLAC, Ogg or MP3"
    if head[4:8] == b"ftyp":
        return "unsupported codec: an MP4/M4A (AAC) file; convert it to WAV, FLAC, Ogg or MP3"
    if "not recognised" in error.lower() or "unknown format" in error.lower():
        return "not an audio file (format not recognised)"
    if "malformed" in error.lower():
        return f"malformed or truncated audio file ({error})"
    return f"not a readable audio file ({error})"


def _riff_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """``(chunk id, payload offset, declared payload size)`` of a RIFF WAVE header."""
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        yield cid, pos + 8, size
        pos += 8 + size + (size & 1)


def _wav_head(source: str | Path | bytes, n: int = 65536) -> bytes:
    if isinstance(source, bytes):
        return source[:n]
    with open(source, "rb") as f:
        return f.read(n)


def _wav_format_tag(source: str | Path | bytes) -> int | None:
    head = _wav_head(source)
    for cid, off, _ in _riff_chunks(head):
        if cid == b"fmt " and off + 2 <= len(head):
            return struct.unpack("<H", head[off : off + 2])[0]
    return None


def _wav_data_bytes(path: Path) -> int | None:
    """The ``data`` chunk size a WAV header declares (None when unknown or streamed)."""
    head = _wav_head(path)
    if head[:4] != b"RIFF":
        return None
    for cid, _, size in _riff_chunks(head):
        if cid == b"data":
            return None if size in (0, 0xFFFFFFFF) else size
    return None


def _bytes_per_sample(subtype: str) -> int:
    return {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8,
            "ULAW": 1, "ALAW": 1}.get(subtype, 0)  # fmt: skip


def _seconds(nbytes: int, f: sf.SoundFile) -> float:
    return nbytes / max(1, _bytes_per_sample(f.subtype) * f.channels) / f.samplerate


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read ``path`` as float32 mono at ``sample_rate``: shape ``(samples,)``.

    Raises :class:`AudioError` for a missing, empty, unreadable, truncated or non-audio file.
    """
    with AudioStream(path, str(path), sample_rate) as stream:
        return stream.read_all()


def decode_audio(data: bytes, name: str, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Like :func:`load_audio` for the bytes of an audio file (e.g. a tar member) named ``name``."""
    with AudioStream(data, name, sample_rate) as stream:
        return stream.read_all()


def write_audio(path: str | Path, samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write mono ``samples (n,)`` in [-1, 1] (clipped) as 16-bit PCM, the container from the
    suffix (``.wav``, ``.flac``), atomically (a temp file, then ``os.replace``), creating the
    folder; returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        sf.write(tmp, np.clip(samples, -1.0, 1.0), sample_rate, subtype="PCM_16")
    return path


def audio_duration(path: str | Path) -> float:
    """Duration in seconds read from the file header (no decoding)."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise AudioError(f"{path}: cannot read audio header ({e})") from None
    return info.frames / info.samplerate


# ----------------------------------------------------------------------------- live sources


def file_chunks(path: str, chunk: int, realtime: bool = False, sample_rate: int = 16000) -> Iterator[np.ndarray]:
    """``chunk``-sample pieces of an audio file (any format, resampled), paced at real time
    with ``realtime`` (each piece yielded when it would have finished arriving)."""
    begin, sent = time.monotonic(), 0
    rest = np.zeros(0, np.float32)
    with AudioStream(path, sample_rate=sample_rate, block_seconds=1.0) as stream:
        for block in stream:
            rest = np.concatenate([rest, block])
            while len(rest) >= chunk:
                piece, rest = rest[:chunk], rest[chunk:]
                sent += len(piece)
                if realtime:
                    time.sleep(max(0.0, begin + sent / sample_rate - time.monotonic()))
                yield piece
    if len(rest):
        yield rest


def microphone_chunks(chunk: int, device: int | str | None = None, sample_rate: int = 16000) -> Iterator[np.ndarray]:
    """Pieces of ``chunk`` samples from an input device (PortAudio via sounddevice), mono
    float32 at ``sample_rate``, until the caller stops iterating (e.g. on Ctrl-C)."""
    sd = _sounddevice()
    queue: Queue[np.ndarray] = Queue()

    def callback(data: np.ndarray, frames: int, when: object, status: object) -> None:
        queue.put(data[:, 0].copy())

    try:
        stream = sd.InputStream(
            samplerate=sample_rate, channels=1, dtype="float32", blocksize=chunk, device=device, callback=callback
        )
    except Exception as e:  # PortAudioError, ValueError for a bad device
        raise AudioError(f"microphone {device if device is not None else '(default)'}: cannot open: {e}") from None
    with stream:
        while True:
            yield queue.get()


def input_devices() -> str:
    """The host's audio devices as sounddevice lists them (inputs marked ``>``/``*``)."""
    return str(_sounddevice().query_devices())


def _sounddevice() -> Any:
    try:
        import sounddevice
    except (ImportError, OSError) as e:  # OSError: the PortAudio library is missing
        raise AudioError(
            f"microphone: needs the sounddevice package and PortAudio ({e}): "
            "pip install -e '.[mic]' and apt-get install libportaudio2"
        ) from None
    return sounddevice
