"""Energy-based voice-activity segmentation of long audio, block by block.

:class:`Segmenter` is fed 16 kHz mono blocks of any size (``push``) and returns each
:class:`Segment` as soon as it is complete, so a file of any length is transcribed holding
at most one segment of audio (``max_seconds`` plus ``overlap``). Segments end at pauses;
speech without a pause is cut at its quietest frame, with an overlap whose words are
assigned to exactly one side by :meth:`Segment.owns`. Times are absolute seconds from the
start of the stream. Settings: :class:`asr.config.SegmentConfig`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from asr.audio import SAMPLE_RATE
from asr.config import SegmentConfig

FRAME_SECONDS = 0.01  # energy frame (and hop)
NOISE_RISE_DB = 0.01  # per frame: the noise floor tracker climbs 1 dB/s when no frame is lower
PEAK_FALL_DB = 0.01  # per frame: the speech peak tracker falls 1 dB/s when no frame is higher


@dataclass(frozen=True)
class Segment:
    """``audio (samples,)`` starting at ``start`` seconds; it owns the words whose midpoint
    lies in ``[keep_from, keep_until)`` (infinite except at cuts made inside speech)."""

    start: float
    audio: np.ndarray
    keep_from: float = -math.inf
    keep_until: float = math.inf
    sample_rate: int = SAMPLE_RATE

    @property
    def end(self) -> float:
        return self.start + len(self.audio) / self.sample_rate

    def owns(self, start: float, end: float) -> bool:
        """Whether a word spanning ``start``–``end`` (absolute seconds) belongs to this segment."""
        return self.keep_from <= (start + end) / 2 < self.keep_until


def frame_db(frames: np.ndarray) -> list[float]:
    """Energy in dBFS of each row of ``frames (n, samples_per_frame)``."""
    return (10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)).tolist()


class SpeechDetector:
    """Frame-by-frame speech decision (``detector(db) -> bool``) with the thresholds of
    :class:`~asr.config.SegmentConfig`: above ``floor_db``, ``margin_db`` over a noise floor
    that follows quieter frames at once and climbs 1 dB/s, and within ``range_db`` of a
    speech peak that follows louder frames at once and falls 1 dB/s."""

    def __init__(self, cfg: SegmentConfig) -> None:
        self.cfg = cfg
        self.noise: float | None = None
        self.peak: float | None = None

    def __call__(self, db: float) -> bool:
        c = self.cfg
        # the floor starts at floor_db (a file may start mid-word) and climbs only slowly
        self.noise = min(db, (c.floor_db if self.noise is None else self.noise) + NOISE_RISE_DB)
        self.peak = db if self.peak is None else max(db, self.peak - PEAK_FALL_DB)
        return db > max(c.floor_db, self.noise + c.margin_db, self.peak - c.range_db)


class Segmenter:
    """Streaming segmentation: ``push(samples)`` → finished segments; ``finish()`` → the rest.

    ``speech_seconds`` counts the frames judged speech so far (0 for an all-silent input).
    """

    def __init__(self, cfg: SegmentConfig | None = None, sample_rate: int = SAMPLE_RATE) -> None:
        self.cfg = cfg = cfg or SegmentConfig()
        self.rate = sample_rate
        self.hop = round(FRAME_SECONDS * sample_rate)
        self.pad = round(cfg.pad * sample_rate)
        self.max_len = round(cfg.max_seconds * sample_rate)
        self.half_overlap = round(cfg.overlap * sample_rate / 2)
        self.min_silence = max(1, round(cfg.min_silence / FRAME_SECONDS))
        self.min_speech = max(1, round(cfg.min_speech / FRAME_SECONDS))
        self.search = max(1, round(cfg.search / FRAME_SECONDS))
        self.buf = np.zeros(0, np.float32)
        self.buf_start = 0  # absolute sample index of buf[0]
        self.frames = 0  # frames analysed so far
        self.energy: list[float] = []  # dB of the open segment's frames, from frame e0 on
        self.speech: list[bool] = []  # and whether each is speech
        self.e0 = 0
        self.detector = SpeechDetector(cfg)
        self.seg_start: int | None = None  # absolute sample where the open segment starts
        self.keep_from = -math.inf
        self.last_speech = 0  # last speech frame of the open segment
        self.speech_in_segment = 0
        self.speech_frames = 0

    @property
    def pushed(self) -> int:
        """Samples pushed so far."""
        return self.buf_start + len(self.buf)

    @property
    def speech_seconds(self) -> float:
        return self.speech_frames * FRAME_SECONDS

    def push(self, samples: np.ndarray) -> list[Segment]:
        """Add ``samples (n,)`` (float32, 16 kHz mono); returns the segments completed by them."""
        self.buf = np.concatenate([self.buf, np.asarray(samples, np.float32)])
        out: list[Segment] = []
        end_frame = self.pushed // self.hop
        if end_frame <= self.frames:
            return out
        first = self.frames * self.hop - self.buf_start
        frames = self.buf[first : first + (end_frame - self.frames) * self.hop].reshape(-1, self.hop)
        for db in frame_db(frames):
            if (seg := self._frame(db)) is not None:
                out.append(seg)
            self.frames += 1
        self._trim()
        return out

    def finish(self) -> list[Segment]:
        """End of the stream: the open segment, if it holds enough speech."""
        if self.seg_start is None:
            return []
        end = min(self.pushed, (self.last_speech + 1) * self.hop + self.pad)
        seg = self._emit(end, math.inf)
        self.seg_start = None
        return [seg] if seg is not None else []

    # ------------------------------------------------------------------------- internals

    def _frame(self, db: float) -> Segment | None:
        f, speech = self.frames, self.detector(db)
        self.speech_frames += speech
        if self.seg_start is None:
            if not speech:
                return None
            self.seg_start = max(self.buf_start, f * self.hop - self.pad)
            self.energy, self.speech, self.e0 = [], [], f
            self.speech_in_segment, self.keep_from = 0, -math.inf
        self.energy.append(db)
        self.speech.append(speech)
        if speech:
            self.last_speech, self.speech_in_segment = f, self.speech_in_segment + 1
        if f - self.last_speech >= self.min_silence:  # a pause: close at the last speech + pad
            seg = self._emit((self.last_speech + 1) * self.hop + self.pad, math.inf)
            self.seg_start = None
            return seg
        if (f + 1) * self.hop - self.seg_start >= self.max_len:
            return self._cut_inside_speech(f)
        return None

    def _cut_inside_speech(self, f: int) -> Segment | None:
        """Cut at the quietest frame of the last ``search`` frames before the overlap tail.

        A cut through speech gives both sides ``overlap / 2`` of the other's audio; a cut in
        a short pause gives each side only the pause's silence (at most ``pad``).
        """
        last = f - self.half_overlap // self.hop  # frames after this stay for the overlap
        first = max(self.e0, last - self.search)
        window = self.energy[first - self.e0 : last + 1 - self.e0]
        cut_frame = first + int(np.argmin(window))
        cut = cut_frame * self.hop + self.hop // 2
        after = before = self.half_overlap
        if not self.speech[cut_frame - self.e0]:
            limit = min(self.half_overlap, self.pad) // self.hop
            after = self._silent_run(cut_frame, +1, limit) * self.hop + self.hop // 2
            before = self._silent_run(cut_frame, -1, limit) * self.hop + self.hop // 2
        seg = self._emit(cut + after, cut / self.rate)
        new_start = max(self.seg_start, cut - before)
        keep = max(self.e0, new_start // self.hop)
        self.energy, self.speech = self.energy[keep - self.e0 :], self.speech[keep - self.e0 :]
        self.e0 = keep
        self.seg_start, self.keep_from, self.speech_in_segment = new_start, cut / self.rate, 0
        return seg

    def _silent_run(self, frame: int, step: int, limit: int) -> int:
        """How many frames from ``frame`` (excluded) in direction ``step`` are silent, up to ``limit``."""
        n = 0
        while n < limit and 0 <= frame + (n + 1) * step - self.e0 < len(self.speech):
            if self.speech[frame + (n + 1) * step - self.e0]:
                break
            n += 1
        return n

    def _emit(self, end: int, keep_until: float) -> Segment | None:
        assert self.seg_start is not None
        start, end = self.seg_start, min(end, self.pushed)
        if self.speech_in_segment < self.min_speech and math.isinf(self.keep_from) and math.isinf(keep_until):
            return None  # a click or a cough, not speech
        audio = self.buf[start - self.buf_start : end - self.buf_start].copy()
        return Segment(start / self.rate, audio, self.keep_from, keep_until, self.rate)

    def _trim(self) -> None:
        """Drop audio no segment can need any more (before the open one, or beyond ``pad``)."""
        keep = self.seg_start if self.seg_start is not None else self.frames * self.hop - self.pad
        drop = max(0, min(keep, self.pushed) - self.buf_start)
        if drop:
            self.buf = self.buf[drop:]
            self.buf_start += drop
