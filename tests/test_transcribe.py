"""File transcription: segmentation of long audio, seams, output formats, the Python API,
and a directory of good and bad files through ``asr transcribe``."""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import asr
from asr.audio import AudioError, load_audio
from asr.config import SegmentConfig
from asr.decoding import Hypothesis, Word
from asr.formats import cues, to_srt, to_vtt
from asr.segment import Segment, Segmenter
from asr.transcribe import SegmentResult, Transcript, _segment_result
from tests.conftest import FIXTURES, asr_cli

TEXTS = ["hello world", "open the door", "the cat sat", "good morning"]


def clips() -> list[np.ndarray]:
    return [load_audio(FIXTURES / f"utt{i}.wav") for i in range(4)]


def concatenate(pieces: list[np.ndarray], gap: float, rounds: int = 1) -> np.ndarray:
    silence = np.zeros(round(gap * 16000), np.float32)
    return np.concatenate([p for _ in range(rounds) for clip in pieces for p in (clip, silence)])


def segment_all(x: np.ndarray, cfg: SegmentConfig | None = None, block: int = 16000) -> list[Segment]:
    s = Segmenter(cfg)
    out = [seg for i in range(0, len(x), block) for seg in s.push(x[i : i + block])]
    return out + s.finish()


# ----------------------------------------------------------------------------- segmentation


def test_segments_end_at_pauses_whatever_the_block_size() -> None:
    x = concatenate(clips(), gap=0.6)
    spans = {block: [(s.start, s.end) for s in segment_all(x, block=block)] for block in (160, 1234, 16000, len(x))}
    assert len(set(map(tuple, spans.values()))) == 1  # the same segments for every block size
    segs = spans[160]
    assert len(segs) == 4
    clip_ends = np.cumsum([len(c) / 16000 + 0.6 for c in clips()])
    for (start, end), clip_end in zip(segs, clip_ends, strict=True):
        assert clip_end - 0.6 - 0.2 < end <= clip_end - 0.6 + 0.16  # the clip plus Silero's 0.1 s pad
        assert start < end


def test_speech_without_pauses_is_cut_with_owned_overlaps() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 30) / 16000
    loudness = 0.3 + 0.25 * np.sin(2 * np.pi * 3 * t)  # 30 s of "speech" that never pauses
    x = (loudness * rng.standard_normal(len(t))).astype(np.float32)
    cfg = SegmentConfig(max_seconds=8.0, overlap=1.0, search=3.0, vad="energy")  # noise as speech: energy's view
    segs = segment_all(x, cfg)
    assert len(segs) >= 4
    assert all(s.end - s.start <= cfg.max_seconds + cfg.overlap / 2 + 0.011 for s in segs)
    assert segs[0].keep_from == -math.inf and segs[-1].keep_until == math.inf
    for a, b in itertools.pairwise(segs):
        assert a.keep_until == b.keep_from  # ownership tiles the timeline: no gap, no double
        assert b.start < a.keep_until < a.end  # the cut lies inside the overlap
    full = [a.end - b.start for a, b in itertools.pairwise(segs)]
    assert max(full) == pytest.approx(1.0, abs=0.011)  # a cut through speech: overlap / 2 each side
    assert segs[-1].end == pytest.approx(30.0, abs=0.01)


def test_buffer_stays_bounded_on_long_input() -> None:
    s, rng = Segmenter(SegmentConfig(max_seconds=10.0, vad="energy")), np.random.default_rng(1)
    biggest = 0
    for i in range(600):  # 10 minutes, speech-like bursts and pauses
        block = (rng.standard_normal(16000) * (0.2 if i % 7 else 0.0)).astype(np.float32)
        s.push(block)
        biggest = max(biggest, len(s.buf))
    assert biggest <= (10.0 + 0.5 + 1.0) * 16000


def test_all_silence_counts_no_speech() -> None:
    s = Segmenter()
    assert s.push(np.zeros(48000, np.float32)) == [] and s.finish() == []
    assert s.speech_seconds == 0


def test_words_at_a_seam_are_kept_exactly_once() -> None:
    a = Segment(0.0, np.zeros(16000 * 6, np.float32), keep_until=5.0)  # 0 .. 6 s
    b = Segment(4.0, np.zeros(16000 * 6, np.float32), keep_from=5.0)  # 4 .. 10 s

    def hyp(words: list[tuple[str, float, float]], offset: float) -> list[Hypothesis]:
        ws = tuple(Word(w, s - offset, e - offset, 0.9) for w, s, e in words)
        return [Hypothesis(" ".join(w for w, _, _ in words), 0.0, 0.0, ws)]

    # both segments hear the words around the cut (absolute times)
    in_a = [("one", 3.0, 3.5), ("two", 4.6, 5.2), ("three", 5.3, 5.9)]
    in_b = [("two", 4.62, 5.21), ("three", 5.31, 5.9), ("four", 7.0, 7.4)]
    ra, rb = _segment_result(a, hyp(in_a, 0.0)), _segment_result(b, hyp(in_b, 4.0))
    assert ra.text == "one two" and rb.text == "three four"
    assert rb.words[0].start == pytest.approx(5.31)  # absolute times


# ----------------------------------------------------------------------------- transcription


@pytest.fixture(scope="module")
def model(robust_checkpoint: Path) -> asr.Transcriber:
    return asr.load_model(robust_checkpoint, device="cpu")


def test_long_file_transcribes_every_utterance(model: asr.Transcriber, tmp_path: Path) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, concatenate(clips(), gap=0.8, rounds=3), 16000)
    result = model.transcribe(path)
    assert result.text == " ".join(TEXTS * 3)
    starts = [w.start for w in result.words]
    assert starts == sorted(starts) and result.words[-1].end <= result.duration
    assert result.words[4].start > 2.0  # "open" of the 2nd clip: absolute time, not segment time
    assert all(0 < w.confidence <= 1 for w in result.words)


def test_forced_cuts_neither_drop_nor_duplicate_words(model: asr.Transcriber, robust_checkpoint: Path) -> None:
    # pauses too short to end a segment, segments at most 3 s: every cut is a forced one
    x = concatenate(clips(), gap=0.25, rounds=2)
    # energy: its silent frames in the 0.25 s pauses make each cut a silent one (Silero still calls them speech)
    cfg = SegmentConfig(max_seconds=2.2, overlap=0.6, search=1.2, min_silence=0.5, vad="energy")
    cut = asr.load_model(robust_checkpoint, device="cpu", segment=cfg, batch_size=2)
    result = cut.transcribe(x)
    assert len(result.segments) == 8  # one cut in each short pause
    assert result.text == " ".join(TEXTS * 2)


def test_api_takes_arrays_at_any_rate_and_channels(model: asr.Transcriber) -> None:
    import torch
    import torchaudio.functional as AF

    clip = clips()[1]
    at_44k = AF.resample(torch.from_numpy(clip), 16000, 44100).numpy()
    stereo = np.stack([at_44k, at_44k], axis=1)
    assert model.transcribe(stereo, sample_rate=44100).text == "open the door"
    assert model.transcribe((clip * 32767).astype(np.int16)).text == "open the door"
    with pytest.raises(
        AudioError, match=r"<array>: no speech: .*Silero VAD found no speech.*energy detector found none"
    ):
        model.transcribe(np.zeros(16000, np.float32))


def test_energy_detector_takes_over_where_silero_hears_nothing(model: asr.Transcriber) -> None:
    """Steady noise is not speech to Silero but is to the energy detector; the input is then
    decoded with energy segmentation instead of failing, and the settings say so."""
    noise = np.random.default_rng(0).normal(0, 0.05, 16000).astype(np.float32)
    audio = np.concatenate([np.zeros(8000, np.float32), noise, np.zeros(8000, np.float32)])
    result = model.transcribe(audio)
    assert result.settings["vad_fallback"] == "energy" and result.settings["segment"]["vad"] == "silero"
    assert len(result.segments) == 1 and abs(result.segments[0].start - 0.35) < 0.05
    assert result.settings["segment"]["pad"] == 0.15  # the energy detector's own pad
    assert "vad_fallback" not in (clean := model.transcribe(clips()[1])).settings
    assert clean.settings["segment"]["pad"] == 0.1 and model.settings["segment"]["pad"] == -1


def test_json_result_has_word_times_and_settings(model: asr.Transcriber, tmp_path: Path) -> None:
    from asr.formats import to_json

    result = model.transcribe(FIXTURES / "utt0.wav")
    doc = json.loads(to_json(result, "utt0.wav"))
    assert doc["source"] == "utt0.wav" and doc["text"] == "hello world"
    assert [w["word"] for w in doc["words"]] == ["hello", "world"]
    assert 0 <= doc["words"][0]["start"] < doc["words"][0]["end"] <= doc["words"][1]["start"]
    assert doc["settings"]["decoding"]["method"] == "greedy"
    assert doc["settings"]["segment"]["max_seconds"] == 20.0


# ----------------------------------------------------------------------------- subtitles

SRT_CUE = re.compile(r"(\d+)\n(\d\d):(\d\d):(\d\d),(\d\d\d) --> (\d\d):(\d\d):(\d\d),(\d\d\d)\n(.+(?:\n.+)?)\n")
VTT_CUE = re.compile(r"(\d\d):(\d\d):(\d\d)\.(\d\d\d) --> (\d\d):(\d\d):(\d\d)\.(\d\d\d)\n(.+(?:\n.+)?)\n")


def _seconds(h: str, m: str, s: str, ms: str) -> float:
    return int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def _check_times(spans: list[tuple[float, float]]) -> None:
    for start, end in spans:
        assert start < end
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert end <= start


def awkward_transcript() -> Transcript:
    """Words with zero length, overlaps, long runs and a 2-hour time, as decoders can give."""
    words = [Word(f"word{i}", 0.3 * i, 0.3 * i + 0.25, 0.9) for i in range(60)]
    words += [Word("tick", 30.0, 30.0, 0.5), Word("tock", 29.9, 30.05, 0.5), Word("late", 7261.5, 7262.25, 0.8)]
    seg = SegmentResult(0.0, 7263.0, " ".join(w.word for w in words), tuple(words))
    return Transcript(seg.text, seg.words, (seg,), 7263.0)


@pytest.mark.parametrize("make", [awkward_transcript, "model"])
def test_srt_and_vtt_are_valid(make: object, model: asr.Transcriber, tmp_path: Path) -> None:
    if make == "model":
        path = tmp_path / "long.wav"
        sf.write(path, concatenate(clips(), gap=1.2, rounds=2), 16000)
        transcript = model.transcribe(path)
    else:
        transcript = make()
    srt, vtt = to_srt(transcript), to_vtt(transcript)
    blocks = srt.split("\n\n")
    parsed = [SRT_CUE.fullmatch(b if b.endswith("\n") else b + "\n") for b in blocks]
    assert all(parsed), [b for b, p in zip(blocks, parsed, strict=True) if not p]
    assert [int(p.group(1)) for p in parsed] == list(range(1, len(parsed) + 1))
    spans = [(_seconds(*p.groups()[1:5]), _seconds(*p.groups()[5:9])) for p in parsed]
    _check_times(spans)
    assert " ".join(p.group(10).replace("\n", " ") for p in parsed) == transcript.text
    assert all(len(line) <= 42 for p in parsed for line in p.group(10).split("\n") if " " in line)

    assert vtt.startswith("WEBVTT\n\n")
    vblocks = vtt[len("WEBVTT\n\n") :].split("\n\n")
    vparsed = [VTT_CUE.fullmatch(b if b.endswith("\n") else b + "\n") for b in vblocks]
    assert all(vparsed)
    assert [(_seconds(*p.groups()[0:4]), _seconds(*p.groups()[4:8])) for p in vparsed] == spans
    assert len(cues(transcript)) == len(parsed)


# ----------------------------------------------------------------------------- 50 files, some bad

BAD = {  # file name -> the phrase its error message must carry (one distinct message each)
    "missing.wav": "no such file",
    "empty.wav": "empty file",
    "truncated.wav": "truncated: the WAV header promises",
    "notes.wav": "not an audio file",
    "ac3.wav": "unsupported codec",
    "click.wav": "too short",
    "quiet.flac": "no speech: all",
    "nan.wav": "contains NaN",
    "rate.wav": "implausible sample rate",
    "folder.wav": "is a directory",
    "locked.wav": "permission denied",
    "broken.flac": "corrupt or truncated data",
}


def _as_nobody() -> list[str] | None:
    """A command prefix running as an unprivileged user, when this test runs as root."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run([*prefix, sys.executable, "-c", "import asr.audio"], capture_output=True)
    return prefix if probe.returncode == 0 else None


def make_bad_files(folder: Path) -> None:
    clip = clips()[0]
    (folder / "missing.wav").symlink_to(folder / "gone.wav")
    (folder / "empty.wav").touch()
    sf.write(folder / "truncated.wav", clip, 16000)
    data = (folder / "truncated.wav").read_bytes()
    (folder / "truncated.wav").write_bytes(data[: len(data) // 2])
    (folder / "notes.wav").write_text("these are my notes, not audio\n" * 20)
    sf.write(folder / "ac3.wav", clip, 16000)
    data = bytearray((folder / "ac3.wav").read_bytes())
    data[20:22] = struct.pack("<H", 0x2000)
    (folder / "ac3.wav").write_bytes(bytes(data))
    sf.write(folder / "click.wav", clip[:100], 16000)
    sf.write(folder / "quiet.flac", np.zeros(32000, np.float32), 16000)
    with_nan = np.where(np.arange(len(clip)) == 4000, np.nan, clip).astype(np.float32)
    sf.write(folder / "nan.wav", with_nan, 16000, subtype="FLOAT")
    sf.write(folder / "rate.wav", clip, 16000)
    data = bytearray((folder / "rate.wav").read_bytes())
    data[24:28] = struct.pack("<I", 7)
    (folder / "rate.wav").write_bytes(bytes(data))
    (folder / "folder.wav").mkdir()
    sf.write(folder / "locked.wav", clip, 16000)
    (folder / "locked.wav").chmod(0)
    sf.write(folder / "broken.flac", np.tile(clip, 4), 16000)
    data = (folder / "broken.flac").read_bytes()
    (folder / "broken.flac").write_bytes(data[: len(data) // 3])


def make_good_files(folder: Path, n: int) -> dict[str, str]:
    """``n`` fixture clips in several formats, rates and channel counts; name -> text (no Ogg
    Vorbis: its loss is too much for the memorizing model)."""
    import torch
    import torchaudio.functional as AF

    kinds = [("wav", 16000, 1), ("flac", 48000, 2), ("flac", 22050, 1), ("wav", 44100, 2), ("mp3", 24000, 1)]
    expected = {}
    for i in range(n):
        ext, rate, channels = kinds[i % len(kinds)]
        k = i % 4
        audio = AF.resample(torch.from_numpy(clips()[k]), 16000, rate).numpy()
        audio = np.stack([audio] * channels, axis=1) if channels == 2 else audio
        sub = folder / f"batch{i % 3}"
        sub.mkdir(exist_ok=True)
        name = f"good{i:02d}.{ext}"
        sf.write(sub / name, audio, rate, subtype="PCM_16" if ext == "wav" else None)
        expected[f"batch{i % 3}/good{i:02d}"] = TEXTS[k]
    return expected


@pytest.fixture()
def world_readable_dir() -> Iterator[Path]:
    """A scratch folder an unprivileged user can use (pytest's tmp_path is private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="asr-test-"))
    folder.chmod(0o755)
    yield folder
    for p in folder.rglob("*"):
        if not p.is_symlink():
            p.chmod(0o755 if p.is_dir() else 0o644)
    shutil.rmtree(folder)


def test_directory_with_bad_files(robust_checkpoint: Path, world_readable_dir: Path) -> None:
    prefix = _as_nobody()
    if prefix is None:
        pytest.skip(
            "running as root, and user nobody cannot run this checkout's python (no setpriv, or a "
            "checkout under a private folder such as mktemp's): cannot make an unreadable file"
        )
    audio = world_readable_dir / "audio"
    audio.mkdir()
    expected = make_good_files(audio, 50 - len(BAD))
    make_bad_files(audio)
    model = world_readable_dir / "model.pt"
    shutil.copy(robust_checkpoint, model)
    model.chmod(0o644)
    out = world_readable_dir / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    command = [*prefix, sys.executable, "-m", "asr.cli", "transcribe", "--model", str(model), str(audio)]
    command += ["--format", "json", "--output-dir", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=world_readable_dir)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors and errors[-1] == f"error: {len(BAD)} of 50 inputs could not be transcribed:", result.stderr
    for name, phrase in BAD.items():
        mine = [e for e in errors if f"/{name}:" in e]
        assert len(mine) == 1 and phrase in mine[0], (name, mine)
    assert len({e.split(": ", 2)[2].split(":")[0].split(" (")[0] for e in errors[:-1]}) == len(BAD)
    written = {str(p.relative_to(out).with_suffix("")): json.loads(p.read_text()) for p in out.rglob("*.json")}
    assert written.keys() == expected.keys()  # every good file transcribed, none of the bad ones
    # the memorizing model may miss a letter (fp32-trained, it reads one clip as "god morning"):
    # this test is about the bad files, so the good ones need only be close
    from asr.metrics import score

    for name, text in expected.items():
        assert score([text], [written[name]["text"]]).cer <= 0.1, (name, written[name]["text"], text)
    assert score(list(expected.values()), [written[k]["text"] for k in expected]).cer <= 0.03
    assert not list(out.rglob("*.tmp*"))


# ----------------------------------------------------------------------------- CLI inputs and outputs


def test_cli_stdin_glob_and_subtitles_on_stdout(robust_checkpoint: Path, tmp_path: Path) -> None:
    long = tmp_path / "long.wav"
    sf.write(long, concatenate(clips(), gap=1.2), 16000)
    result = asr_cli("transcribe", "--model", str(robust_checkpoint), "-", "--format", "srt", stdin=long.read_bytes())
    assert result.returncode == 0, result.stderr
    srt = result.stdout
    assert srt.startswith("1\n00:00:00,") and "good morning" in srt and srt.count(" --> ") == 4
    for i in range(2):
        shutil.copy(FIXTURES / f"utt{i}.wav", tmp_path / f"clip{i}.wav")
    result = asr_cli("transcribe", "--model", str(robust_checkpoint), str(tmp_path / "clip*.wav"), "--with-names")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{tmp_path}/clip0.wav\thello world\n{tmp_path}/clip1.wav\topen the door\n"
    result = asr_cli("transcribe", "--model", str(robust_checkpoint), str(tmp_path / "nothing*.wav"), str(long))
    assert result.returncode == 1 and result.stdout == " ".join(TEXTS) + "\n"
    assert "nothing*.wav: no files match this pattern" in result.stderr
    result = asr_cli("transcribe", "--model", str(robust_checkpoint), str(long), str(long), "--format", "vtt")
    assert result.returncode == 1 and "needs --output-dir" in result.stderr  # two inputs, one VTT stream


def test_cli_nbest_json(robust_checkpoint: Path, tmp_path: Path) -> None:
    result = asr_cli("transcribe", "--model", str(robust_checkpoint), str(FIXTURES / "utt2.wav"), "--format", "json",
                     "--n-best", "3", "--beam", "8")  # fmt: skip
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["text"] == "the cat sat" and doc["settings"]["decoding"]["beam_size"] == 8
    nbest = doc["segments"][0]["nbest"]
    assert len(nbest) == 3 and nbest[0]["text"] == "the cat sat"
    assert nbest[0]["score"] >= nbest[1]["score"] >= nbest[2]["score"]


def test_cli_corrupt_and_foreign_models(tmp_path: Path) -> None:
    import torch

    junk, foreign = tmp_path / "junk.pt", tmp_path / "foreign.pt"
    junk.write_bytes(b"\x00garbage" * 100)
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    for model, message in ((junk, "not a readable checkpoint"), (foreign, "not an asr checkpoint")):
        result = asr_cli("transcribe", "--model", str(model), str(FIXTURES / "utt0.wav"))
        assert result.returncode == 1
        assert f"{model}: {message}" in result.stderr
