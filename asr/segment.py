"""Segmentation of long audio at pauses, block by block.

:class:`Segmenter` is fed 16 kHz mono blocks of any size (``push``) and returns each
:class:`Segment` as soon as it is complete, so a file of any length is transcribed holding
at most one segment of audio (``max_seconds`` plus ``overlap``). Segments end at pauses;
speech without a pause is cut at its quietest frame, with an overlap whose words are
assigned to exactly one side by :meth:`Segment.owns`. Times are absolute seconds from the
start of the stream. Speech is judged per 10 ms frame by the detector ``segment.vad`` names
(:mod:`asr.vad`: Silero VAD, or frame energy); the cut inside speech goes to the quietest
frame by energy. Settings: :class:`asr.config.SegmentConfig`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from asr.audio import SAMPLE_RATE
from asr.config import SegmentConfig
from asr.vad import FRAME_SECONDS, FrameDetector, frame_db, make_detector


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


class Segmenter:
    """Streaming segmentation: ``push(samples)`` → finished segments; ``finish()`` → the rest.

    ``speech_seconds`` counts the frames judged speech so far (0 for an all-silent input).
    ``pad_seconds``: the pad each segment keeps around its speech (``cfg.pad``, or the
    detector's own where that is -1).
    ``detector``: the speech detector (default: the one ``cfg.vad`` names); frames wait in
    :attr:`pending` until it has decided them.
    """

    def __init__(
        self, cfg: SegmentConfig | None = None, sample_rate: int = SAMPLE_RATE, detector: FrameDetector | None = None
    ) -> None:
        self.cfg = cfg = cfg or SegmentConfig()
        self.rate = sample_rate
        self.hop = round(FRAME_SECONDS * sample_rate)
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
        self.detector = detector if detector is not None else make_detector(cfg, sample_rate)
        self.pad_seconds = self.detector.pad if cfg.pad == -1 else cfg.pad  # -1: the detector's own
        self.pad = round(self.pad_seconds * sample_rate)
        self.pending: list[float] = []  # dB of the frames after self.frames, not yet decided
        self.decisions: list[bool] = []  # decisions of frames after self.frames, not yet used
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
        samples = np.asarray(samples, np.float32).reshape(-1)
        self.buf = np.concatenate([self.buf, samples])
        measured = self.frames + len(self.pending)
        end_frame = self.pushed // self.hop
        if end_frame > measured:
            first = measured * self.hop - self.buf_start
            self.pending += frame_db(self.buf[first : first + (end_frame - measured) * self.hop].reshape(-1, self.hop))
        self.decisions += self.detector.push(samples)
        out = self._advance()
        self._trim()
        return out

    def _advance(self) -> list[Segment]:
        """Run the frames both measured and decided."""
        n = min(len(self.pending), len(self.decisions))
        out = []
        for db, speech in zip(self.pending[:n], self.decisions[:n], strict=True):
            if (seg := self._frame(db, speech)) is not None:
                out.append(seg)
            self.frames += 1
        self.pending, self.decisions = self.pending[n:], self.decisions[n:]
        return out

    def finish(self) -> list[Segment]:
        """End of the stream: the segments the last decisions close, then the open one if it
        holds enough speech."""
        self.decisions += self.detector.flush()
        out = self._advance()
        if self.seg_start is None:
            return out
        end = min(self.pushed, (self.last_speech + 1) * self.hop + self.pad)
        seg = self._emit(end, math.inf)
        self.seg_start = None
        return [*out, seg] if seg is not None else out

    # ------------------------------------------------------------------------- internals

    def _frame(self, db: float, speech: bool) -> Segment | None:
        f = self.frames
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
