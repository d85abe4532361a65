"""Manifests from other layouts: ``asr manifest kaldi|nemo|folder|commonvoice SOURCE --out m.jsonl``.

- **kaldi**: a data directory with ``wav.scp`` (``recording path``) and ``text`` (``utterance
  words...``), and where present ``segments`` (``utterance recording start end``, seconds;
  an end of -1 runs to the end of the recording) and ``utt2spk`` (``utterance speaker``).
  Without ``segments`` each ``wav.scp`` line is an utterance. Relative paths are read from
  the current directory, as Kaldi's tools read them. Commands (``flac -c -d x.flac |``) and
  archive entries (``x.ark:123``) are not run or read: they are reported.
- **nemo**: JSON lines with ``audio_filepath`` (absolute or relative to the manifest),
  ``duration`` and ``text``, and where present ``offset`` (seconds) and ``speaker``; the
  utterance is ``duration`` seconds from ``offset``, as NeMo loads it.
- **folder**: every audio file (:data:`~asr.audio.AUDIO_EXTENSIONS`) under the folder,
  recursively, with its transcript in a ``.txt`` file of the same name beside it; ids are
  the relative paths without the extension.
- **commonvoice**: a split of a Mozilla Common Voice release (``train.tsv``, ``dev.tsv``,
  ``test.tsv``, ``validated.tsv``...): tab-separated with a header naming at least ``path``
  and ``sentence`` (``client_id``: the speaker), the MP3 clips in ``clips/`` beside it; ids
  are the clip names without ``.mp3``.

A whole file is referenced where it lies; a part of one (a Kaldi segment, a NeMo offset or
shorter duration) is cut to a 16 kHz mono wav file in ``audio_dir``. Durations come from the
audio. Transcripts are kept as written (``raw_text``, which the manifest stores; reading it
normalizes). Each importer returns the utterances and, for each one it could not import, a
problem ``file:line: problem``; a source that cannot be read at all is a
:class:`~asr.data.ManifestError`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import soundfile as sf

from asr.audio import AUDIO_EXTENSIONS, SAMPLE_RATE, AudioError, AudioStream, resample, to_mono_float, write_audio
from asr.data import ManifestError, Utterance, durations_agree, json_row
from asr.text import normalize

END_SLACK = 0.1  # seconds a segment may run past its recording's end (then cut at the end)
_ARCHIVE = re.compile(r"\.(ark|scp):\d+$")


class _Skip(Exception):
    """An utterance that cannot be imported; the message is ``file:line: problem``."""


def _duration(path: Path, name: str) -> float:
    """Seconds of audio in ``path`` from its header; :class:`AudioError` naming ``name``."""
    with AudioStream(path, name) as stream:
        return stream.duration


def cut(source: Path, start: float, end: float, out: Path) -> float:
    """Write seconds ``[start, end)`` of ``source`` to ``out`` as 16 kHz mono 16-bit wav
    (atomically); returns the cut's duration in seconds."""
    try:
        with sf.SoundFile(source) as f:
            rate = f.samplerate
            f.seek(round(start * rate))
            data = f.read(round((end - start) * rate), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as e:
        raise AudioError(f"{source}: cannot read {start:.2f}-{end:.2f} s ({e})") from None
    samples = resample(to_mono_float(data), rate, SAMPLE_RATE)
    write_audio(out, samples)
    return len(samples) / SAMPLE_RATE


def _text(where: str, raw: str, language: str = "en") -> str:
    """``raw`` normalized in ``language``; :class:`_Skip` at ``where`` when nothing is left."""
    text = normalize(raw, language)
    if not text:
        raise _Skip(f"{where}: transcript {raw!r} is empty after normalization")
    return text


def _audio(
    where: str, audio: Path, name: str, span: tuple[float, float | None] | None = None, out: Path | None = None
) -> tuple[Path, float]:
    """An utterance's audio file and duration in seconds: ``audio`` itself (``span`` None),
    or seconds ``span = (start, end)`` of it (end None: to the end) cut to ``out``. Problems
    are raised as :class:`_Skip` at ``where`` (``file:line``), naming the audio ``name``."""
    try:
        real = _duration(audio, f"audio {name}")
        if span is None:
            return audio.resolve(), real
        if out is None:
            raise ValueError("cutting a span of audio needs an output file")
        start, end = span[0], real if span[1] is None else span[1]
        if not 0 <= start < end:
            raise _Skip(f"{where}: segment {start:g}-{end:g} s is empty or starts before 0")
        if end > real + END_SLACK:
            raise _Skip(f"{where}: segment {start:g}-{end:g} s ends after audio {name} does ({real:.3f} s)")
        return out.resolve(), cut(audio, start, min(end, real), out)
    except AudioError as e:
        raise _Skip(f"{where}: {e}") from None


def _cut_name(audio_dir: Path, uid: str) -> Path:
    return audio_dir / f"{uid.replace('/', '_')}.wav"


# ----------------------------------------------------------------------------- Kaldi


def _table(path: Path, problems: list[str], required: bool = True) -> dict[str, tuple[int, str]]:
    """A Kaldi table file as ``key -> (line number, rest of the line)``; repeated keys are
    added to ``problems``. A missing file is empty, or a :class:`ManifestError` if ``required``."""
    if not path.is_file():
        if required:
            raise ManifestError(f"{path}: no such file (a Kaldi data directory has wav.scp and text)")
        return {}
    table: dict[str, tuple[int, str]] = {}
    try:
        lines = path.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as e:
        raise ManifestError(f"{path}: not UTF-8 text ({e})") from None
    for lineno, line in enumerate(lines, 1):
        fields = line.split(maxsplit=1)
        if not fields:
            continue
        key, rest = fields[0], fields[1].strip() if len(fields) > 1 else ""
        if key in table:
            problems.append(f"{path}:{lineno}: {key} already listed on line {table[key][0]}")
        else:
            table[key] = (lineno, rest)
    return table


def _recording(wav_scp: Path, wav: dict[str, tuple[int, str]], rec: str) -> tuple[Path, str]:
    """The audio file of recording ``rec`` and its path as written; :class:`_Skip` for a
    recording missing from ``wav.scp`` or given as a command or an archive entry."""
    if rec not in wav:
        raise _Skip(f"recording {rec} is not in {wav_scp}")
    lineno, spec = wav[rec]
    if spec.endswith("|"):
        raise _Skip(f"{wav_scp}:{lineno}: {spec!r} is a command, not a file: run it to write the audio, list that")
    if _ARCHIVE.search(spec):
        raise _Skip(f"{wav_scp}:{lineno}: {spec!r} is an archive entry, not a file: extract the audio, list that")
    if not spec:
        raise _Skip(f"{wav_scp}:{lineno}: no audio path for recording {rec}")
    return Path(spec), spec


def import_kaldi(
    data_dir: str | Path, audio_dir: str | Path, language: str = "en"
) -> tuple[list[Utterance], list[str]]:
    """The utterances of a Kaldi data directory (see the module docstring) and the problems;
    transcripts normalized in ``language``."""
    d, audio_dir = Path(data_dir), Path(audio_dir)
    if not d.is_dir():
        raise ManifestError(f"{d}: not a directory (a Kaldi data directory has wav.scp and text)")
    problems: list[str] = []
    wav = _table(d / "wav.scp", problems)
    text = _table(d / "text", problems)
    segments = _table(d / "segments", problems, required=False)
    speakers = _table(d / "utt2spk", problems, required=False)
    units, units_file = (segments, d / "segments") if segments else (wav, d / "wav.scp")
    utts = []
    for uid, (lineno, rest) in units.items():
        where = f"{units_file}:{lineno}"
        try:
            if uid not in text:
                raise _Skip(f"{where}: utterance {uid} has no transcript in {d / 'text'}")
            normalized = _text(f"{d / 'text'}:{text[uid][0]}", text[uid][1], language)
            rec, span = _segment(where, rest) if segments else (uid, None)
            try:
                audio, name = _recording(d / "wav.scp", wav, rec)
            except _Skip as e:
                raise _Skip(f"{where}: {e}" if segments else str(e)) from None
            path, duration = _audio(where, audio, name, span, _cut_name(audio_dir, uid))
            speaker = speakers[uid][1] if uid in speakers else ""
            utts.append(Utterance(uid, path, duration, normalized, text[uid][1], speaker))
        except _Skip as e:
            problems.append(str(e))
    problems += [f"{d / 'text'}:{n}: utterance {uid} is not in {units_file}" for uid, (n, _) in text.items()
                 if uid not in units]  # fmt: skip
    return utts, problems


def _segment(where: str, rest: str) -> tuple[str, tuple[float, float | None]]:
    """``recording, (start, end)`` of a ``segments`` line's fields after the utterance id."""
    fields = rest.split()
    try:
        rec, start, end = fields[0], float(fields[1]), float(fields[2])
    except (IndexError, ValueError):
        raise _Skip(f"{where}: not 'utterance recording start end' (seconds)") from None
    return rec, (start, None if end < 0 else end)


# ----------------------------------------------------------------------------- NeMo


def import_nemo(manifest: str | Path, audio_dir: str | Path, language: str = "en") -> tuple[list[Utterance], list[str]]:
    """The utterances of a NeMo manifest (see the module docstring) and the problems."""
    manifest, audio_dir = Path(manifest), Path(audio_dir)
    if not manifest.is_file():
        raise ManifestError(f"{manifest}: no such manifest file")
    utts: list[Utterance] = []
    problems: list[str] = []
    used: set[str] = set()
    try:
        lines = manifest.read_text(encoding="utf-8").split("\n")  # not splitlines: JSON strings may hold U+2028
    except UnicodeDecodeError as e:
        raise ManifestError(f"{manifest}: not UTF-8 text ({e})") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            utt = _nemo_line(manifest, lineno, line, audio_dir, used, language)
        except _Skip as e:
            problems.append(str(e))
            continue
        used.add(utt.id)
        utts.append(utt)
    return utts, problems


def _nemo_line(
    manifest: Path, lineno: int, line: str, audio_dir: Path, used: set[str], language: str = "en"
) -> Utterance:
    """One NeMo manifest line as an utterance (ids: ``id``, else the audio's stem, with the
    offset in ms when there is one, and ``-LINE`` when already ``used``)."""
    where = f"{manifest}:{lineno}"
    try:
        row = json_row(where, line, ("audio_filepath", "duration", "text"))
    except ManifestError as e:
        raise _Skip(str(e)) from None
    try:
        duration, offset = float(row["duration"]), float(row.get("offset") or 0.0)
    except (TypeError, ValueError):
        raise _Skip(f"{where}: duration or offset is not a number") from None
    raw, name = str(row["text"]), str(row["audio_filepath"])
    text = _text(where, raw, language)
    audio = Path(name) if Path(name).is_absolute() else manifest.parent / name
    uid = str(row.get("id") or Path(name).stem + (f"-{round(offset * 1000):07d}" if offset else ""))
    uid = f"{uid}-{lineno}" if uid in used else uid
    try:
        real = _duration(audio, f"audio {name}")
    except AudioError as e:
        raise _Skip(f"{where}: {e}") from None
    whole = offset == 0 and durations_agree(duration, real)
    span = None if whole else (offset, offset + duration)
    path, duration = _audio(where, audio, name, span, _cut_name(audio_dir, uid))
    return Utterance(uid, path, duration, text, raw, str(row.get("speaker") or ""))


# ----------------------------------------------------------------------------- folder


def import_folder(
    folder: str | Path, audio_dir: str | Path | None = None, language: str = "en"
) -> tuple[list[Utterance], list[str]]:
    """The audio files under ``folder`` with their ``.txt`` transcripts, and the problems
    (``audio_dir`` is unused: whole files are referenced where they are)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ManifestError(f"{folder}: not a directory")
    utts: list[Utterance] = []
    problems: list[str] = []
    first: dict[str, Path] = {}
    for audio in sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()):
        relative = audio.relative_to(folder)
        uid, transcript = relative.with_suffix("").as_posix(), audio.with_suffix(".txt")
        try:
            if uid in first:
                raise _Skip(f"{audio}: its id {uid} is already {first[uid].name}'s")
            if not transcript.is_file():
                raise _Skip(f"{audio}: no transcript {transcript.name} beside it")
            try:
                raw = " ".join(transcript.read_text(encoding="utf-8").split())
            except (OSError, UnicodeDecodeError) as e:
                raise _Skip(f"{transcript}: cannot read the transcript ({e})") from None
            text = _text(str(transcript), raw, language)
            path, duration = _audio(str(folder), audio, str(relative))
            utts.append(Utterance(uid, path, duration, text, raw))
            first[uid] = audio
        except _Skip as e:
            problems.append(str(e))
    return utts, problems


# ----------------------------------------------------------------------------- Common Voice


def import_commonvoice(
    tsv: str | Path, audio_dir: str | Path | None = None, language: str = "en"
) -> tuple[list[Utterance], list[str]]:
    """The clips of a Common Voice split (see the module docstring), referenced where they
    are in ``clips/`` (``audio_dir`` is unused), and the problems."""
    tsv = Path(tsv)
    if not tsv.is_file():
        raise ManifestError(f"{tsv}: no such file (a Common Voice release has train.tsv, dev.tsv, test.tsv, clips/)")
    try:
        lines = tsv.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as e:
        raise ManifestError(f"{tsv}: not UTF-8 text ({e})") from None
    header = lines[0].rstrip("\r").split("\t")
    if missing := [c for c in ("path", "sentence") if c not in header]:
        raise ManifestError(f"{tsv}:1: the header lacks {missing} (Common Voice's: client_id, path, sentence, ...)")
    col = {name: i for i, name in enumerate(header)}
    utts: list[Utterance] = []
    problems: list[str] = []
    first: dict[str, int] = {}
    for lineno, line in enumerate(lines[1:], 2):
        fields, where = line.rstrip("\r").split("\t"), f"{tsv}:{lineno}"
        if not line.strip():
            continue
        try:
            if len(fields) <= max(col["path"], col["sentence"]):
                raise _Skip(f"{where}: {len(fields)} fields, the header names {len(header)}")
            name, raw = fields[col["path"]], fields[col["sentence"]]
            uid = name.removesuffix(".mp3")
            if uid in first:
                raise _Skip(f"{where}: clip {name} is already on line {first[uid]}")
            text = _text(where, raw, language)
            path, duration = _audio(where, tsv.parent / "clips" / name, f"clips/{name}")
            speaker = fields[col["client_id"]] if "client_id" in col and col["client_id"] < len(fields) else ""
            utts.append(Utterance(uid, path, duration, text, raw, speaker))
            first[uid] = lineno
        except _Skip as e:
            problems.append(str(e))
    return utts, problems


Importer = Callable[[Path, Path, str], tuple[list[Utterance], list[str]]]  # source, audio dir, language
IMPORTERS: dict[str, Importer] = {
    "kaldi": import_kaldi,
    "nemo": import_nemo,
    "folder": import_folder,
    "commonvoice": import_commonvoice,
}
