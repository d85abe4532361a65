"""Transcript output formats: plain text, JSON, SubRip (SRT) and WebVTT.

Subtitle cues group consecutive words: a cue ends at a segment boundary, before a pause of
:data:`CUE_GAP` seconds, or when adding a word would pass :data:`CUE_CHARS` characters or
:data:`CUE_SECONDS` seconds. Cue times come from the words' times, made strictly
increasing and non-overlapping; a cue's text wraps onto two lines of at most
:data:`LINE_CHARS` characters where it can.

Words below a confidence threshold (``asr transcribe --min-confidence``) are either dropped
from every format or marked: ``"low_confidence": true`` in JSON, italics (``<i>word</i>``,
which SubRip and WebVTT players show) in subtitles; plain text keeps them as they are.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from asr.decoding import Word
from asr.transcribe import Transcript

FORMATS = ("text", "json", "srt", "vtt")
EXTENSIONS = {"text": ".txt", "json": ".json", "srt": ".srt", "vtt": ".vtt"}
CUE_CHARS = 84  # two lines of subtitles
LINE_CHARS = 42
CUE_SECONDS = 6.0
CUE_GAP = 1.0
MIN_CUE_SECONDS = 0.2


@dataclass(frozen=True)
class Cue:
    """One subtitle: ``start``–``end`` seconds and its (possibly two-line) text."""

    start: float
    end: float
    text: str


def cues(transcript: Transcript, mark_below: float = 0.0) -> list[Cue]:
    """Subtitle cues of ``transcript``, in order, with ``start < end <= next start``; words
    with confidence below ``mark_below`` in italics."""
    groups: list[list[Word]] = []
    for seg in transcript.segments:
        current: list[Word] = []
        for w in seg.words:
            if current and _breaks(current, w):
                groups.append(current)
                current = []
            current.append(w)
        if current:
            groups.append(current)
    out: list[Cue] = []
    for i, g in enumerate(groups):
        start = max(g[0].start, out[-1].end if out else 0.0)
        end = max(g[-1].end, start + MIN_CUE_SECONDS)
        if i + 1 < len(groups):
            end = min(end, max(groups[i + 1][0].start, start + MIN_CUE_SECONDS / 2))
        text = " ".join(f"<i>{w.word}</i>" if w.confidence < mark_below else w.word for w in g)
        out.append(Cue(round(start, 3), round(max(end, start + 0.001), 3), _wrap(text)))
    return out


def drop_low_confidence(transcript: Transcript, threshold: float) -> Transcript:
    """``transcript`` without its words of confidence below ``threshold`` (texts rebuilt; the
    segments' n-best lists kept as decoded)."""

    def keep(words: tuple[Word, ...]) -> tuple[Word, ...]:
        return tuple(w for w in words if w.confidence >= threshold)

    segments = tuple(
        dataclasses.replace(s, words=keep(s.words), text=" ".join(w.word for w in keep(s.words)))
        for s in transcript.segments
    )
    words = keep(transcript.words)
    return dataclasses.replace(transcript, text=" ".join(w.word for w in words), words=words, segments=segments)


def _breaks(current: list[Word], word: Word) -> bool:
    chars = sum(len(w.word) + 1 for w in current) + len(word.word)
    return word.start - current[-1].end >= CUE_GAP or chars > CUE_CHARS or word.end - current[0].start > CUE_SECONDS


def _wrap(text: str) -> str:
    if len(text) <= LINE_CHARS:
        return text
    words, best = text.split(), None
    for i in range(1, len(words)):
        first, second = " ".join(words[:i]), " ".join(words[i:])
        cost = max(len(first), len(second))
        if best is None or cost < best[0]:
            best = (cost, first + "\n" + second)
    return best[1] if best else text


def _timestamp(seconds: float, sep: str) -> str:
    ms = round(seconds * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def to_srt(transcript: Transcript, mark_below: float = 0.0) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``, a blank line after each."""
    blocks = [
        f"{i}\n{_timestamp(c.start, ',')} --> {_timestamp(c.end, ',')}\n{c.text}\n"
        for i, c in enumerate(cues(transcript, mark_below), 1)
    ]
    return "\n".join(blocks)


def to_vtt(transcript: Transcript, mark_below: float = 0.0) -> str:
    """WebVTT: the ``WEBVTT`` header, then cues ``HH:MM:SS.mmm --> HH:MM:SS.mmm``."""
    blocks = [
        f"{_timestamp(c.start, '.')} --> {_timestamp(c.end, '.')}\n{c.text}\n" for c in cues(transcript, mark_below)
    ]
    return "WEBVTT\n\n" + "\n".join(blocks)


def to_json(transcript: Transcript, source: str, mark_below: float = 0.0) -> str:
    """JSON: source, text, duration, words (start, end, confidence; ``low_confidence`` when
    below ``mark_below``), segments (span, text and, when asked for, the n-best list; their
    words are the top-level ones) and the settings used."""
    doc: dict[str, Any] = {"source": source, **transcript.to_dict()}
    for seg in doc["segments"]:
        del seg["words"]
        seg["nbest"] = [{"text": t, "score": s} for t, s in seg["nbest"]]
    for item in doc["words"]:
        if item["confidence"] < mark_below:
            item["low_confidence"] = True
        item.update(start=round(item["start"], 3), end=round(item["end"], 3), confidence=round(item["confidence"], 4))
    return json.dumps(doc, ensure_ascii=False)


def render(transcript: Transcript, fmt: str, source: str, min_confidence: float = 0.0, low: str = "mark") -> str:
    """``transcript`` in format ``fmt`` (one of :data:`FORMATS`), newline-terminated; words of
    confidence below ``min_confidence`` marked (``low="mark"``) or dropped (``"drop"``)."""
    if low not in ("mark", "drop"):
        raise ValueError(f"low-confidence words are marked or dropped, not {low!r}")
    mark_below = min_confidence if low == "mark" else 0.0
    if low == "drop" and min_confidence > 0:
        transcript = drop_low_confidence(transcript, min_confidence)
    if fmt == "text":
        return transcript.text + "\n"
    if fmt == "json":
        return to_json(transcript, source, mark_below) + "\n"
    if fmt == "srt":
        return to_srt(transcript, mark_below)
    if fmt == "vtt":
        return to_vtt(transcript, mark_below)
    raise ValueError(f"unknown output format {fmt!r} (choose from {', '.join(FORMATS)})")
