"""Inference: files, streams, arrays and manifests in; transcripts with word times out.

The Python API::

    import asr
    model = asr.load_model("exp/bilstm/best.pt")                  # greedy decoding
    model = asr.load_model("exp/bilstm/best.pt", lm="data/lm")    # beam search + LM
    result = model.transcribe("meeting.flac")                     # or a float array, or bytes
    result.text, result.words[0].start, result.segments

Audio of any length is read block by block and split at pauses by
:class:`asr.segment.Segmenter`; segments go through the model in batches of ``batch_size``,
so memory does not grow with the file. Word times are absolute seconds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asr.audio import AUDIO_EXTENSIONS, SAMPLE_RATE, AudioError, AudioStream, resample, to_mono_float
from asr.checkpoint import LoadedModel
from asr.checkpoint import load_model as load_checkpoint
from asr.confidence import Calibration
from asr.config import DecodingConfig, SegmentConfig
from asr.data import (
    AudioDataset,
    BucketingBatchSampler,
    ManifestError,
    Utterance,
    check_manifest,
    collate,
    read_manifest,
)
from asr.decoding import BeamSearchDecoder, Hypothesis, Word, greedy_decode, greedy_hypothesis
from asr.files import atomic_path
from asr.segment import Segment, Segmenter
from asr.text import language
from asr.vad import EnergyDetector, FrameDetector, SileroDetector, load_silero, make_detector

ARRAY_BLOCK = 30 * SAMPLE_RATE  # arrays are segmented in blocks of this many samples


def min_samples(loaded: LoadedModel) -> int:
    """The shortest input (samples) that gives the model one feature frame (one FFT frame,
    as :func:`asr.features.num_frames` counts them)."""
    return loaded.config.features.n_fft


@torch.no_grad()
def log_probs_of(
    loaded: LoadedModel, waveforms: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``waveforms (B, S)``, ``lengths (B,)`` samples → ``log_probs (B, T', V)``, ``(B,)`` frames."""
    device = next(loaded.model.parameters()).device
    feats, frames = loaded.features(waveforms.to(device), lengths.to(device))
    return loaded.model(feats, frames)


def posteriors_of(loaded: LoadedModel, audios: Sequence[np.ndarray]) -> list[np.ndarray]:
    """``log_probs (T_i, V)`` (float32) of 16 kHz mono arrays, run as one padded batch."""
    batch = collate([(torch.from_numpy(np.asarray(a, dtype=np.float32)), torch.zeros(0), "") for a in audios])
    log_probs, lengths = log_probs_of(loaded, batch.waveforms, batch.audio_lengths)
    return [log_probs[i, : int(n)].float().cpu().numpy() for i, n in enumerate(lengths)]


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SegmentResult:
    """One segment's words (those it owns), its span and its n-best ``(text, score)`` list."""

    start: float
    end: float
    text: str
    words: tuple[Word, ...]
    nbest: tuple[tuple[str, float], ...] = ()


class NoSpeechError(AudioError):
    """Audio in which the speech detector finds no speech (or too little to keep)."""


@dataclass(frozen=True)
class Transcript:
    """A file's (or array's) transcript: ``text``, ``words`` with absolute times in seconds,
    the ``segments`` it was decoded in, its ``duration`` and the ``settings`` used."""

    text: str
    words: tuple[Word, ...]
    segments: tuple[SegmentResult, ...]
    duration: float
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class Transcriber:
    """A loaded model with its decoding settings; see the module docstring.

    ``decoder`` None means greedy decoding. ``segment`` sets how long audio is split;
    ``batch_size`` is the number of segments per forward pass.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        decoder: BeamSearchDecoder | None = None,
        segment: SegmentConfig | None = None,
        batch_size: int = 8,
        settings: dict[str, Any] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size {batch_size} must be at least 1")
        self.loaded, self.decoder, self.batch_size = loaded, decoder, batch_size
        self.segment = segment or SegmentConfig()
        self._silero: Any = None
        self.settings = {
            **(settings or {}),
            "decoding": _decoding_settings(decoder),
            "segment": dataclasses.asdict(self.segment),
            "batch_size": batch_size,
        }

    @property
    def sample_rate(self) -> int:
        return self.loaded.config.features.sample_rate

    def transcribe(
        self, audio: str | Path | bytes | np.ndarray, sample_rate: int = SAMPLE_RATE, name: str | None = None
    ) -> Transcript:
        """Transcribe a file path, the bytes of a file, or a float array ``(samples,)`` (or
        ``(samples, channels)``) at ``sample_rate``. Raises :class:`~asr.audio.AudioError`
        naming ``name`` (default: the path) for unreadable audio, audio too short for one
        feature frame, or audio with no speech in it. With ``segment.vad`` silero, an input
        in which Silero finds no speech is read again with the energy detector (Silero misses
        some heavily processed voices: 4 of the 400 UQM test400 lines); the transcript's
        ``settings`` then say ``"vad_fallback": "energy"``."""
        try:
            return self._transcribe(audio, sample_rate, name, self._detector())
        except NoSpeechError as e:
            if self.segment.vad != "silero":
                raise
            try:
                t = self._transcribe(audio, sample_rate, name, EnergyDetector(self.segment, self.sample_rate))
            except NoSpeechError:
                raise NoSpeechError(f"{e}; the energy detector found none either") from None
            return dataclasses.replace(t, settings={**t.settings, "vad_fallback": "energy"})

    def _transcribe(
        self, audio: str | Path | bytes | np.ndarray, sample_rate: int, name: str | None, detector: FrameDetector
    ) -> Transcript:
        if isinstance(audio, np.ndarray):
            blocks = _array_blocks(audio, sample_rate, self.sample_rate)
            return self._transcribe_blocks(blocks, name or "<array>", detector)
        with AudioStream(audio, name, self.sample_rate) as stream:
            return self._transcribe_blocks(iter(stream), stream.name, detector)

    def _detector(self) -> FrameDetector:
        """A fresh speech detector for one input (the Silero model loaded once, its state reset)."""
        if self.segment.vad != "silero":
            return make_detector(self.segment, self.sample_rate)
        if self._silero is None:
            self._silero = load_silero()
        return SileroDetector(self.segment, self.sample_rate, self._silero)

    def _transcribe_blocks(self, blocks: Iterator[np.ndarray], name: str, detector: FrameDetector) -> Transcript:
        segmenter = Segmenter(self.segment, self.sample_rate, detector)

        def segments() -> Iterator[Segment]:
            for block in blocks:
                yield from segmenter.push(block)
            yield from segmenter.finish()

        results = list(self.transcribe_segments(segments()))
        duration = segmenter.pushed / self.sample_rate
        if segmenter.pushed < min_samples(self.loaded):
            raise AudioError(
                f"{name}: too short: {duration:.3f} s of audio "
                f"(at least {min_samples(self.loaded) / self.sample_rate:.3f} s needed)"
            )
        if not results:
            if segmenter.speech_seconds == 0:
                why = (
                    f"Silero VAD found no speech (threshold {self.segment.vad_threshold:g})"
                    if isinstance(detector, SileroDetector)
                    else f"below {self.segment.floor_db:g} dBFS or the noise floor"
                )
                raise NoSpeechError(f"{name}: no speech: all {duration:.2f} s are silence ({why})")
            raise NoSpeechError(
                f"{name}: no speech: nothing left after trimming silence and noise "
                f"({segmenter.speech_seconds:.2f} s above the threshold, "
                f"under the {self.segment.min_speech:g} s minimum)"
            )
        words = tuple(w for r in results for w in r.words)
        # the pad the detector chose (segment.pad -1), so the settings reproduce the run
        settings = {**self.settings, "segment": {**self.settings["segment"], "pad": segmenter.pad_seconds}}
        sep = language(self.loaded.config.text.language).separator
        return Transcript(sep.join(w.word for w in words), words, tuple(results), duration, settings)

    def transcribe_segments(self, segments: Iterable[Segment]) -> Iterator[SegmentResult]:
        """Decode segments in batches of ``batch_size``; words shifted to absolute times and
        kept only by the segment that owns them."""
        batch: list[Segment] = []
        for seg in segments:
            batch.append(seg)
            if len(batch) == self.batch_size:
                yield from self._decode_batch(batch)
                batch = []
        if batch:
            yield from self._decode_batch(batch)

    def _decode_batch(self, batch: list[Segment]) -> Iterator[SegmentResult]:
        posteriors = posteriors_of(self.loaded, [s.audio for s in batch])
        spf = self.loaded.config.seconds_per_frame
        for seg, post in zip(batch, posteriors, strict=True):
            if self.decoder is None:
                nbest = [greedy_hypothesis(post, self.loaded.vocab, spf)]
            else:
                nbest = self.decoder.decode(post)
            yield _segment_result(seg, nbest, language(self.loaded.config.text.language).separator)


def _segment_result(seg: Segment, nbest: list[Hypothesis], sep: str = " ") -> SegmentResult:
    shifted = (dataclasses.replace(w, start=w.start + seg.start, end=w.end + seg.start) for w in nbest[0].words)
    words = tuple(w for w in shifted if seg.owns(w.start, w.end))
    alternatives = tuple((h.text, h.score) for h in nbest) if len(nbest) > 1 else ()
    return SegmentResult(seg.start, seg.end, sep.join(w.word for w in words), words, alternatives)


def _array_blocks(audio: np.ndarray, rate: int, target: int) -> Iterator[np.ndarray]:
    mono = to_mono_float(np.asarray(audio))
    if not np.isfinite(mono).all():
        raise AudioError("<array>: contains NaN or infinite samples")
    mono = resample(mono, rate, target)
    for i in range(0, len(mono), ARRAY_BLOCK):
        yield mono[i : i + ARRAY_BLOCK]


def _decoding_settings(decoder: BeamSearchDecoder | None) -> dict[str, Any]:
    if decoder is None:
        return {"method": "greedy"}
    lm = decoder.lm.path if decoder.lm is not None else None
    return {
        "method": "beam",
        **dataclasses.asdict(decoder.config),
        "lexicon": decoder.lexicon_mode,
        "lm": str(lm) if lm is not None else None,
        "hotwords": [list(h) for h in decoder.hotwords],
        "confidence_calibration": decoder.calibration.method if decoder.calibration is not None else None,
    }


def load_model(
    path: str | Path,
    device: str = "auto",
    lm: str | Path | None = None,
    decoding: DecodingConfig | None = None,
    hotwords: Sequence[tuple[str, float]] = (),
    segment: SegmentConfig | None = None,
    batch_size: int = 8,
    int8: bool = False,
    extra_text: Sequence[str] = (),
    calibration: Calibration | None = None,
) -> Transcriber:
    """A :class:`Transcriber` for the checkpoint at ``path``: greedy decoding, or beam search
    when ``lm``, ``decoding``, ``hotwords`` or ``extra_text`` are given (``decoding`` defaults
    to :class:`~asr.config.DecodingConfig`). ``extra_text``: sentences or phrases mixed into
    the LM at load time (:func:`asr.lm.with_extra_text`, at ``decoding.extra_weight``); their
    new words join the lexicon. ``calibration``: maps the beam search's word confidences (the
    ``confidence`` of a tune-lm JSON, :meth:`asr.confidence.Calibration.from_dict`).
    ``int8``: dynamically quantized LSTMs and linear layers (CPU).
    Raises :class:`~asr.checkpoint.CheckpointError` for a bad checkpoint."""
    loaded = load_checkpoint(path, device)
    if int8:
        from asr.export import quantize_int8

        loaded = quantize_int8(loaded)
    decoder = None
    if lm is not None or decoding is not None or hotwords or extra_text:
        from asr.lm import open_lm, with_extra_text

        language_model = open_lm(lm) if lm is not None else None
        if extra_text:
            d = decoding or DecodingConfig()
            language_model = with_extra_text(
                language_model, extra_text, d.extra_weight, d.extra_order, loaded.config.text.language
            )
        spf = loaded.config.seconds_per_frame
        decoder = BeamSearchDecoder(
            loaded.vocab, decoding, language_model, hotwords, spf, calibration, loaded.config.text.language
        )
    settings = {"model": str(path), "device": device, "int8": int8}
    return Transcriber(loaded, decoder, segment, batch_size, settings)


# ----------------------------------------------------------------------------- manifests


def decode_posteriors(
    loaded: LoadedModel, posteriors: Sequence[np.ndarray], decoder: BeamSearchDecoder | None, workers: int = 1
) -> list[str]:
    """The best text of each ``log_probs (T_i, V)``: greedy without ``decoder``, else its beam
    search in ``workers`` processes."""
    if decoder is None:
        return [greedy_decode(torch.from_numpy(x)[None], torch.tensor([len(x)]), loaded.vocab)[0] for x in posteriors]
    return [nbest[0].text for nbest in decoder.decode_batch(list(posteriors), workers=workers)]


def utterance_posteriors(
    loaded: LoadedModel, utts: Sequence[Utterance], batch_seconds: float = 200.0, num_workers: int = 1
) -> list[np.ndarray]:
    """``log_probs (T_i, V)`` (float32) of ``utts``, in order, from batches of similar length."""
    if not utts:
        return []
    durations = [u.duration for u in utts]
    sampler = BucketingBatchSampler(durations, max(batch_seconds, max(durations)), shuffle=False)
    dataset = AudioDataset(utts, loaded.vocab, loaded.config.features.sample_rate)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate, num_workers=num_workers)
    of_id: dict[str, np.ndarray] = {}
    for batch in loader:
        log_probs, lengths = log_probs_of(loaded, batch.waveforms, batch.audio_lengths)
        for i, utt_id in enumerate(batch.ids):
            of_id[utt_id] = log_probs[i, : int(lengths[i])].float().cpu().numpy()
    return [of_id[u.id] for u in utts]


def manifest_posteriors(
    loaded: LoadedModel, manifest: str | Path, batch_seconds: float = 200.0, num_workers: int = 1
) -> tuple[list[Utterance], list[np.ndarray], list[str]]:
    """The good utterances of ``manifest``, their ``log_probs (T_i, V)`` (float32), in order,
    and its bad lines as ``file:line: problem`` (:func:`asr.data.check_manifest`)."""
    utts, bad = check_manifest(manifest, loaded.vocab, language=loaded.config.text.language)
    return utts, utterance_posteriors(loaded, utts, batch_seconds, num_workers), bad


def cached_posteriors(
    loaded: LoadedModel, model_path: Path, manifest: Path, cache: Path, num_workers: int = 1
) -> tuple[list[str], list[np.ndarray], list[str]]:
    """References, ``log_probs (T_i, V)`` and bad lines of ``manifest`` as
    :func:`manifest_posteriors` gives them, kept in ``cache`` for the next call with the same
    checkpoint (path and modification time) and manifest text (``asr tune-lm`` decodes the
    same dev set many times). A manifest with bad lines is not cached: its audio may be fixed."""
    if not manifest.is_file():
        raise ManifestError(f"{manifest}: no such manifest file")
    key = {"model": str(model_path.resolve()), "mtime": model_path.stat().st_mtime, "manifest": manifest.read_text()}
    cached = torch.load(cache, weights_only=False) if cache.is_file() else None
    if cached is not None and cached["key"] == key:
        return cached["refs"], cached["posteriors"], []
    utts, posteriors, bad = manifest_posteriors(loaded, manifest, num_workers=num_workers)
    refs = [u.text for u in utts]
    if utts and not bad:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache) as tmp:
            torch.save({"key": key, "refs": refs, "posteriors": posteriors}, tmp)
    return refs, posteriors, bad


@dataclass(frozen=True)
class Input:
    """One thing to transcribe: ``source`` (a path or ``-``), the ``name`` its output file
    takes (relative, no extension), or the ``problem`` found while listing it."""

    source: str
    name: str
    problem: str | None = None


def manifest_inputs(path: str | Path) -> tuple[list[Input], list[float]]:
    """The audio of a JSONL manifest as inputs (output names: the line ids), and durations.
    Raises :class:`~asr.data.ManifestError` for a malformed manifest or repeated ids."""
    utts = read_manifest(path)
    seen: set[str] = set()
    for u in utts:
        if u.id in seen:
            raise ManifestError(f"{path}: id {u.id!r} appears more than once (it names an output file)")
        seen.add(u.id)
    return [Input(str(u.audio), u.id) for u in utts], [u.duration for u in utts]


def collect_inputs(items: list[str]) -> list[Input]:
    """Files as given, directories searched recursively for :data:`AUDIO_EXTENSIONS`, glob
    patterns expanded, ``-`` for stdin; output names made unique."""
    import glob
    import os

    found: list[Input] = []
    for item in items:
        path = Path(item)
        if item == "-":
            found.append(Input("-", "stdin"))
        elif path.is_dir() and path.suffix.lower() not in AUDIO_EXTENSIONS:
            before = len(found)
            for root, dirs, files in os.walk(path):
                dirs.sort()
                for entry in sorted(dirs + files):
                    full = Path(root) / entry
                    if full.suffix.lower() in AUDIO_EXTENSIONS:
                        found.append(Input(str(full), str(full.relative_to(path).with_suffix(""))))
            if len(found) == before:
                kinds = ", ".join(AUDIO_EXTENSIONS)
                found.append(Input(item, path.name, f"{item}: no audio files ({kinds}) in this directory"))
        elif not path.exists() and glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            found.extend(Input(m, Path(m).stem) for m in matches)
            if not matches:
                found.append(Input(item, path.stem, f"{item}: no files match this pattern"))
        else:
            found.append(Input(item, path.stem))
    seen: dict[str, int] = {}
    for i in found:
        seen[i.name] = seen.get(i.name, 0) + 1
    return [Input(i.source, i.name + Path(i.source).suffix, i.problem) if seen[i.name] > 1 else i for i in found]
