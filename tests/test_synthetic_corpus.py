"""Tests of the synthetic recipe's text extraction and TTS synthesis (recipes/synthetic/local).

The text tests run on small fake source files; the synthesis tests use espeak-ng/flite when
installed (skipped otherwise) and fake engine commands for the failure paths.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.text import normalize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes" / "synthetic" / "local"))
import extract_text
import results_table
import synthesize
import tts_cache
from synthesize import AudioLimits, EngineCommands, Result, Voice

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="no espeak-ng")
needs_flite = pytest.mark.skipif(shutil.which("flite") is None, reason="no flite")
needs_festival = pytest.mark.skipif(shutil.which("festival") is None, reason="no festival")
Capture = pytest.CaptureFixture[str]
ESPEAK = Voice("espeak", "en-us+m3")
ADJECTIVES, NOUNS = ("red", "old", "big", "wet", "shy"), ("cat", "dog", "man", "owl")
WORDNET_EXAMPLES = [f"the {a} {n} sat on the mat" for a in ADJECTIVES for n in NOUNS]


# --------------------------------------------------------------------------- extract_text


def _gzip(path: Path, text: str) -> Path:
    with gzip.open(path, "wt") as f:
        f.write(text)
    return path


def _fake_sources(root: Path) -> extract_text.SourcePaths:
    """WordNet-like, fortune, jargon and devil files; every WordNet example also appears
    as a fortune, so deduplication decides whether dev/test leak into train."""
    wordnet, fortunes = root / "wordnet", root / "fortunes"
    wordnet.mkdir()
    fortunes.mkdir()
    examples = WORDNET_EXAMPLES
    glosses = [f'{i:08d} 05 n 01 x 0 000 | gloss; "{ex}"' for i, ex in enumerate(examples)]
    (wordnet / "data.noun").write_text("  1 license text\n" + "\n".join(glosses) + "\n")
    entries = [f"{ex.capitalize()}.  It cost 5 dollars and all was well." for ex in examples]
    entries += [" /\\_/\\\n( o.o )\n > ^ <", "Visit http://example.com now.", "The IBM PC is old."]
    (fortunes / "misc").write_text("\n%\n".join(entries) + "\n")
    (fortunes / "misc.dat").write_bytes(b"\x00\x01binary")
    (fortunes / "ascii-art").write_text("Pictures are worth a thousand words here.\n")
    jargon = _gzip(
        root / "jargon.txt.gz",
        "   :frob: n.\n\n   [MIT] A small thing that you fiddle with often.\n\n"
        "        int main() { return 0; }\n\n   {Hackers} love to play with frobs.\n",
    )
    devil = _gzip(
        root / "devil.dict.dz",
        "00-database-short\n  header\nBORE, n.  A person who talks when you wish him to listen.\n"
        "\n    Some indented verse that is not a definition at all.\n",
    )
    return extract_text.SourcePaths(wordnet, fortunes, jargon, devil)


def _source_args(paths: extract_text.SourcePaths) -> list[str]:
    names = ("--wordnet-dir", "--fortunes-dir", "--jargon", "--devil")
    values = (paths.wordnet_dir, paths.fortunes_dir, paths.jargon, paths.devil)
    return [arg for name, value in zip(names, values, strict=True) for arg in (name, str(value))]


def test_split_never_leaks_dev_test_into_train(tmp_path: Path) -> None:
    paths, out = _fake_sources(tmp_path), tmp_path / "text"
    argv = ["--out", str(out), "--dev", "4", "--test", "4", *_source_args(paths)]
    assert extract_text.main(argv) == 0
    split = {s: (out / f"{s}.txt").read_text().splitlines() for s in ("train", "dev", "test")}
    dev, test, train = set(split["dev"]), set(split["test"]), set(split["train"])
    assert len(dev) == len(test) == 4
    assert not dev & test and not (dev | test) & train
    assert dev | test <= set(WORDNET_EXAMPLES)  # dev/test come from wordnet only
    lines = [line for lines in split.values() for line in lines]
    assert len(lines) == len(set(lines))
    assert all(normalize(line) == line for line in lines)
    assert "it cost five dollars and all was well" in train
    assert "a small thing that you fiddle with often" in train  # jargon, etymology dropped
    assert "hackers love to play with frobs" in train
    assert "a person who talks when you wish him to listen" in train  # devil, headword dropped
    banned = ("ibm", "http", "pictures", "verse", "int main")
    assert not any(word in t for t in train for word in banned)
    sources = [row.split("\t") for row in (out / "sources.tsv").read_text().splitlines()]
    assert len(sources) == len(lines)
    assert {(s, src) for s, src, _ in sources if s != "train"} == {
        ("dev", "wordnet"),
        ("test", "wordnet"),
    }


def test_split_is_reproducible(tmp_path: Path) -> None:
    pairs = list(extract_text.collect_sentences(_fake_sources(tmp_path)))
    a, b = (extract_text.build_corpus(pairs, n_dev=3, n_test=3, seed=7) for _ in range(2))
    assert a.splits == b.splits
    c = extract_text.build_corpus(pairs, n_dev=3, n_test=3, seed=8)
    assert c.splits["dev"] != a.splits["dev"]


def test_missing_sources_warn_and_finding_nothing_fails(tmp_path: Path, capsys: Capture) -> None:
    missing = extract_text.SourcePaths(*(tmp_path / f"no{i}" for i in range(4)))
    assert extract_text.main(["--out", str(tmp_path / "out"), *_source_args(missing)]) == 1
    err = capsys.readouterr().err
    assert str(tmp_path / "no0" / "data.noun") in err and str(tmp_path / "no3") in err
    assert "no usable sentence" in err
    assert not (tmp_path / "out" / "train.txt").exists()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("The cat sat on the mat.", "ok"),
        ("It cost 5 dollars.", "ok"),
        ("The IBM PC crashed.", "acronym"),
        ("See www.example.com for more.", "symbols"),
        ("Run x = y + 1 now.", "symbols"),
        ("and then the cat", "fragment"),
        ("Dr. Smith is in.", "odd_word"),
        ("Press the F key now.", "letters"),
        ("Hi there.", "length"),
    ],
)
def test_clean_sentence(raw: str, reason: str) -> None:
    assert extract_text.clean_sentence(raw)[1] == reason


def test_split_sentences_spares_abbreviations() -> None:
    text = "Mr. Brown met J. R. Smith. They talked! Did it help? No."
    expected = ["Mr. Brown met J. R. Smith.", "They talked!", "Did it help?", "No."]
    assert extract_text.split_sentences(text) == expected


# --------------------------------------------------------------------------- synthesize


def _item(index: int, voices: list[Voice], out: str = "x.wav", seed: int = 0) -> synthesize.Item:
    return synthesize.draw_item(index, "hello there world", voices, seed, f"u{index}", out)


def test_heldout_voices_never_in_train() -> None:
    train = synthesize.select_voices("train")
    assert {v.name for v in synthesize.select_voices("heldout")} == synthesize.HELDOUT_VOICES
    assert not {v.name for v in train} & synthesize.HELDOUT_VOICES
    assert not any(v.ident.endswith("+f4") for v in train)  # no sibling of espeak:en-us+f4
    drawn = {_item(i, train).voice.name for i in range(3000)}
    assert not drawn & synthesize.HELDOUT_VOICES
    assert {name.split(":")[0] for name in drawn} == {"espeak", "flite", "festival"}


def test_rhvoice_voices_hold_out_the_named_speakers_in_every_quality(monkeypatch: pytest.MonkeyPatch) -> None:
    have = ["aleksandr", "aleksandr-hq", "anna", "irina", "yuriy"]
    monkeypatch.setattr(synthesize.rhvoice_tts, "voices", lambda tree, lang: have if lang == "ru" else [])
    tree = Path("tree")
    train = synthesize.rhvoice_voices(tree, "ru", "train", ["aleksandr", "yuriy"])
    assert [v.name for v in train] == ["rhvoice:anna", "rhvoice:irina"]  # aleksandr-hq is aleksandr too
    held = synthesize.rhvoice_voices(tree, "ru", "heldout", ["aleksandr", "yuriy"])
    assert [v.name for v in held] == ["rhvoice:aleksandr", "rhvoice:yuriy"]
    drawn = {_item(i, [ESPEAK, *train]).voice.engine for i in range(200)}
    assert drawn == {"espeak", "rhvoice"}  # ENGINE_SHARE: half and half
    with pytest.raises(ValueError, match="RHVoice held-out voices boris not in tree"):
        synthesize.rhvoice_voices(tree, "ru", "train", ["boris"])
    with pytest.raises(ValueError, match="no RHVoice voice of language 'uk' in tree"):
        synthesize.rhvoice_voices(tree, "uk", "train", [])


def test_draws_depend_on_seed_and_index_only() -> None:
    voices = synthesize.select_voices("train")
    first = [_item(i, voices, seed=3) for i in range(50)]
    assert first == [_item(i, voices, seed=3) for i in reversed(range(50))][::-1]
    assert first != [_item(i, voices, seed=4) for i in range(50)]


def test_warp_draws_and_speed_perturbation(tmp_path: Path) -> None:
    voices = synthesize.select_voices("train")
    assert {_item(i, voices).warp for i in range(100)} == {1.0}  # no warp unless asked
    drawn = [synthesize.draw_item(i, "a b", voices, 0, f"u{i}", "x.wav", 0.15).warp for i in range(500)]
    assert min(drawn) == 0.85 and max(drawn) == 1.15 and len(set(drawn)) == 13  # steps of 0.025
    rate = synthesize.SAMPLE_RATE
    tone = 0.5 * np.sin(2 * np.pi * 400 * np.arange(2 * rate) / rate)
    sf.write(tmp_path / "raw.wav", tone, rate)
    item = replace(_item(0, voices, out=str(tmp_path / "out.wav")), text="one two three", warp=1.25)
    result = synthesize.finish_audio(tmp_path / "raw.wav", item, AudioLimits())
    audio, _ = sf.read(tmp_path / "out.wav")
    pad = 2 * synthesize.TRIM_PAD_S
    assert result.duration == pytest.approx(2 / 1.25 + pad, abs=0.02)  # faster...
    spectrum = np.abs(np.fft.rfft(audio))
    assert np.argmax(spectrum) * rate / len(audio) == pytest.approx(500, abs=5)  # ...and higher


def test_f0_draws_touch_only_pitchable_voices_and_nothing_else() -> None:
    voices = synthesize.select_voices("train")
    plain = [_item(i, voices) for i in range(400)]
    pitched = [synthesize.draw_item(i, "hello there world", voices, 0, f"u{i}", "x.wav", 0.0, 0.3) for i in range(400)]
    assert [replace(p, f0=1.0) for p in pitched] == plain  # voice, rate, warp draws unchanged
    for item in pitched:
        if item.voice.engine == "espeak" or item.voice.ident == "cmu_us_slt_arctic_hts":
            assert item.f0 == 1.0
        else:
            assert 0.7 <= item.f0 <= 1.3
    moved = [p.f0 for p in pitched if p.f0 != 1.0]
    assert len(moved) > 100 and min(moved) < 0.8 and max(moved) > 1.2


def _median_f0(path: str) -> float:
    import librosa

    audio, rate = sf.read(path)
    f0 = librosa.yin(audio, fmin=50, fmax=400, sr=rate, frame_length=1024, hop_length=256)
    energy = librosa.feature.rms(y=audio, frame_length=1024, hop_length=256)[0]  # yin's framing
    voiced = energy > 0.3 * energy.max()  # skip pauses and unvoiced sounds
    return float(np.median(f0[voiced]))


@needs_flite
@needs_festival
@pytest.mark.parametrize("voice", [Voice("flite", "awb"), Voice("festival", "kal_diphone")])
def test_f0_factor_moves_the_voice_pitch(tmp_path: Path, voice: Voice) -> None:
    base = synthesize.draw_item(0, "the judge sat there solemnly", [voice], 0, "u0", "")
    f0 = {}
    for factor in (0.8, 1.0, 1.25):
        item = replace(base, f0=factor, stretch=1.0, out_path=str(tmp_path / f"{factor}.wav"))
        (result,) = synthesize.synthesize_batch([item], EngineCommands(), AudioLimits())
        assert result.duration is not None, result.reason
        f0[factor] = _median_f0(item.out_path)
    assert f0[0.8] / f0[1.0] == pytest.approx(0.8, rel=0.08)
    assert f0[1.25] / f0[1.0] == pytest.approx(1.25, rel=0.08)


def test_trim_silence_leaves_the_same_margins() -> None:
    rate, pad = synthesize.SAMPLE_RATE, int(synthesize.TRIM_PAD_S * synthesize.SAMPLE_RATE)
    tone = 0.5 * np.sin(np.arange(rate // 2) * 0.1).astype(np.float32)
    for before, after in [(rate, rate), (0, 0), (rate // 50, 2 * rate)]:  # long, none, short
        trimmed = synthesize.trim_silence(np.concatenate([np.zeros(before), tone, np.zeros(after)]))
        assert len(trimmed) == len(tone) + 2 * pad
        assert not trimmed[: pad - 160].any() and not trimmed[-pad + 160 :].any()
        assert np.allclose(trimmed[pad : pad + len(tone)], tone)
    assert synthesize.trim_silence(np.zeros(rate)).size == 0


@needs_espeak
@needs_flite
def test_cli_writes_16k_mono_manifest(tmp_path: Path) -> None:
    sentences = [
        "the judge sat there solemnly",
        "she conveyed the message to me",
        "a cycle of reprisal and retaliation",
        "they needed rugs to cover the floors",
    ]
    text, data = tmp_path / "dev.txt", tmp_path / "data"
    text.write_text("\n".join(sentences) + "\n")
    argv = ["--text", str(text), "--voices", "heldout", "--out-dir", str(data / "wav")]
    argv += ["--manifest", str(data / "dev.jsonl"), "--jobs", "2", "--no-progress"]
    assert synthesize.main(argv) == 0
    rows = [json.loads(line) for line in (data / "dev.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == sentences
    assert [r["id"] for r in rows] == [f"dev-{i:07d}" for i in range(4)]
    for row in rows:
        assert row["voice"] in synthesize.HELDOUT_VOICES
        assert not Path(row["audio"]).is_absolute()
        info = sf.info(str(data / row["audio"]))
        assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")
        assert abs(info.frames / info.samplerate - row["duration"]) < 1e-3
        assert 0.5 < len(row["text"].split()) / row["duration"] < 6  # plausible speaking rate


@needs_espeak
def test_hours_target_keeps_the_shortest_prefix(tmp_path: Path) -> None:
    sentences = [f"sentence number {n} is spoken here" for n in NOUNS]
    report = synthesize.synthesize_corpus(
        sentences, [ESPEAK], tmp_path, hours=4 / 3600, cycle=True, jobs=1, progress=False
    )
    durations = [r["duration"] for r in report.rows]
    assert sum(durations) >= 4 > sum(durations[:-1])
    kept = sorted(Path(r["audio"]).name for r in report.rows)
    assert sorted(p.name for p in tmp_path.rglob("*.wav")) == kept  # the extra ones deleted


def _fake_engine(tmp_path: Path, body: str) -> str:
    script = tmp_path / "fake_tts"
    script.write_text(f"#!{sys.executable}\nimport sys, time\nimport soundfile\n{body}\n")
    script.chmod(0o755)
    return str(script)


@needs_espeak
def test_tts_failures_are_counted_not_fatal(tmp_path: Path) -> None:
    sentences = ["one two three four", "five six seven eight", "nine ten eleven twelve"] * 3
    silent = _fake_engine(tmp_path, "soundfile.write(sys.argv[-1], [0.0] * 16000, 16000)")
    voices = [ESPEAK, Voice("flite", "kal16"), Voice("festival", "kal_diphone")]
    commands = EngineCommands(flite=silent, festival="false")  # festival: batches fail
    out = tmp_path / "wav"
    report = synthesize.synthesize_corpus(sentences, voices, out, commands=commands, progress=False)
    ids = [f"utt-{i:07d}" for i in range(len(sentences))]  # synthesize_corpus's default ids
    engines = [synthesize.draw_item(0, "", voices, 0, i, "").voice.engine for i in ids]
    expected = {("flite", "silent"): engines.count("flite")}
    expected[("festival", "exit_status")] = engines.count("festival")
    assert report.failures == {key: n for key, n in expected.items() if n}
    assert len(report.rows) == engines.count("espeak") > 0
    assert all(r["voice"] == ESPEAK.name for r in report.rows)


def test_timeouts_and_missing_programs_are_failure_reasons(tmp_path: Path) -> None:
    slow = _fake_engine(tmp_path, "time.sleep(10)")
    cases = [
        (EngineCommands(flite=slow, timeout_s=0.5), "timeout"),
        (EngineCommands(flite=str(tmp_path / "no-such-tts")), "not_runnable"),
        (EngineCommands(flite="false"), "exit_status"),
    ]
    item = _item(0, [Voice("flite", "kal16")], out=str(tmp_path / "u0.wav"))
    for commands, reason in cases:
        results = synthesize.synthesize_batch([item], commands, AudioLimits())
        assert results == [Result(0, None, reason)]


def test_festival_batch_that_crashes_midway_is_retried_one_by_one(tmp_path: Path) -> None:
    # Writes the first two waves of its script, then dies of a segfault.
    crash = _fake_engine(
        tmp_path,
        "import os, re, signal\n"
        'paths = re.findall(r\'save.wave u "([^"]+)"\', open(sys.argv[-1]).read())\n'
        "for p in paths[:2]:\n"
        "    soundfile.write(p, [0.5 * (-1) ** (i // 20) for i in range(16000)], 16000)\n"
        "os.kill(os.getpid(), signal.SIGSEGV)",
    )
    voice = Voice("festival", "kal_diphone")
    items = [_item(i, [voice], out=str(tmp_path / f"u{i}.wav")) for i in range(4)]
    results = synthesize.synthesize_batch(items, EngineCommands(festival=crash), AudioLimits())
    # The second wave may be cut short by the crash: only the first is trusted; alone, each
    # of the others is written but its process crashes, which fails it.
    assert [r.index for r in results] == [0, 1, 2, 3]
    assert results[0].duration is not None and Path(items[0].out_path).is_file()
    assert [r.reason for r in results[1:]] == ["crashed"] * 3


def test_cli_fails_when_most_attempts_fail(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: Capture,
) -> None:
    text, manifest = tmp_path / "t.txt", tmp_path / "m.jsonl"
    text.write_text("alpha beta gamma\ndelta epsilon zeta\n")
    broken = EngineCommands(espeak="false", flite="false", festival="false")
    monkeypatch.setattr(synthesize, "available_voices", lambda voices, commands: voices)
    argv = ["--text", str(text), "--voices", "heldout", "--out-dir", str(tmp_path / "w")]
    argv += ["--manifest", str(manifest), "--jobs", "1", "--no-progress"]
    assert synthesize.main(argv, commands=broken) == 1
    out = capsys.readouterr()
    assert "synthesized 0 utts" in out.out and "skipped 2" in out.out
    assert "more than half" in out.err and not manifest.exists()


# --------------------------------------------------------------------------- the TTS cache

FLITE = Voice("flite", "kal16")
TONE = "[0.5 * (-1) ** (i // 20) for i in range(12000 + 400 * len(sys.argv[-3].split()))]"


def _tone_engine(tmp_path: Path, name: str, version: str = "tone 1.0", act: str = "speak") -> str:
    """A fake flite printing ``version`` for ``--version``; otherwise it ``speak``s a tone whose
    length grows with the words, speaks ``silence``, ``fail``s (exit status 1) or ``hang``s."""
    acts = {
        "speak": f"soundfile.write(sys.argv[-1], {TONE}, 16000)",
        "silence": "soundfile.write(sys.argv[-1], [0.0] * 16000, 16000)",
        "fail": "sys.exit(1)",
        "hang": "time.sleep(10)",
    }
    body = f'if sys.argv[-1] == "--version":\n    print("{version}")\nelse:\n    {acts[act]}'
    script = tmp_path / name
    script.write_text(f"#!{sys.executable}\nimport sys, time\nimport soundfile\n{body}\n")
    script.chmod(0o755)
    return str(script)


def _synth(sentences: list[str], out: Path, cache: Path, flite: str, timeout_s: float = 30.0) -> synthesize.Report:
    return synthesize.synthesize_corpus(
        sentences,
        [FLITE],
        out,
        jobs=1,
        progress=False,
        commands=EngineCommands(flite=flite, timeout_s=timeout_s),
        cache=tts_cache.TtsCache(cache),
    )


def test_cache_serves_a_rerun_without_the_engine(tmp_path: Path) -> None:
    sentences = ["one two three", "four five six seven", "eight nine"]
    first = _synth(sentences, tmp_path / "a", tmp_path / "cache", _tone_engine(tmp_path, "tone"))
    assert (first.cached, len(first.rows)) == (0, 3)
    assert len(list((tmp_path / "cache").rglob("*.wav"))) == 3
    # The same engine version, now failing every call: each line still comes back, from the cache.
    broken = _tone_engine(tmp_path, "broken", act="fail")
    again = _synth(sentences, tmp_path / "b", tmp_path / "cache", broken)
    assert (again.cached, again.failures) == (3, {})
    assert [r["duration"] for r in again.rows] == [r["duration"] for r in first.rows]
    for a, b in zip(first.rows, again.rows, strict=True):
        assert Path(b["audio"]).parent.parent == tmp_path / "b"
        assert Path(a["audio"]).read_bytes() == Path(b["audio"]).read_bytes()
    assert "3 of 3 from the cache" in again.describe()
    # A new sentence is a miss (the broken engine fails it); the others still hit.
    changed = _synth([*sentences[:2], "ten eleven"], tmp_path / "c", tmp_path / "cache", broken)
    assert changed.cached == 2 and changed.failures == {("flite", "exit_status"): 1}
    # An upgraded engine is asked again, not served the old version's audio.
    upgraded = _synth(sentences, tmp_path / "d", tmp_path / "cache", _tone_engine(tmp_path, "new", "tone 2.0"))
    assert (upgraded.cached, len(upgraded.rows)) == (0, 3)


def test_cache_keeps_lasting_failures_not_transient_ones(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = _synth(["one two three"], tmp_path / "a", cache, _tone_engine(tmp_path, "silent", act="silence"))
    assert first.failures == {("flite", "silent"): 1}
    # Same engine version, text and draws: the silence is served, not synthesized again.
    tone = _tone_engine(tmp_path, "tone")
    again = _synth(["one two three"], tmp_path / "b", cache, tone)
    assert (again.cached, again.failures, again.rows) == (1, {("flite", "silent"): 1}, [])
    # A timeout may not happen on a quieter machine: not stored, so the next run synthesizes.
    hung = _synth(["four five six"], tmp_path / "c", cache, _tone_engine(tmp_path, "hang", act="hang"), 0.5)
    assert hung.failures == {("flite", "timeout"): 1}
    later = _synth(["four five six"], tmp_path / "d", cache, tone)
    assert (later.cached, len(later.rows)) == (0, 1)


def test_cache_key_names_what_decides_the_audio() -> None:
    tags, limits = {"flite": "flite-2.2", "kokoro": "0.1"}, AudioLimits()
    item = synthesize.draw_item(0, "hello there world", [FLITE], 0, "u0", "a.wav", warp=0.15, f0=0.3)
    key = synthesize.item_key(item, tags, limits)
    assert synthesize.item_key(replace(item, index=7, utt_id="v7", out_path="b.wav"), tags, limits) == key
    for changed in (
        replace(item, text="hello there"),
        replace(item, voice=Voice("flite", "awb")),
        replace(item, stretch=item.stretch + 0.01),
        replace(item, warp=1.0),
        replace(item, f0=1.0),
    ):
        assert synthesize.item_key(changed, tags, limits) != key
    assert synthesize.item_key(item, {"flite": "flite-2.3"}, limits) != key  # an upgraded engine
    assert synthesize.item_key(item, tags, replace(limits, max_s=20.0)) != key
    mix, other = (replace(item, voice=Voice("kokoro", f"mix-000{n}")) for n in (1, 2))
    assert synthesize.item_key(mix, tags, limits) != synthesize.item_key(other, tags, limits)


def test_damaged_cache_entry_is_a_miss(tmp_path: Path) -> None:
    cache = tts_cache.TtsCache(tmp_path / "cache")
    key = "ab" + "0" * 62
    (tmp_path / "cache" / "ab").mkdir(parents=True)
    (tmp_path / "cache" / "ab" / f"{key}.wav").write_bytes(b"RIFF junk")
    assert cache.fetch(key, tmp_path / "out.wav") is None
    assert not (tmp_path / "out.wav").exists() and not list((tmp_path / "cache").rglob("*.wav"))
    assert cache.store(key, reason="timeout") is False and cache.fetch(key, tmp_path / "out.wav") is None
    assert cache.store(key, reason="crashed") is True
    assert cache.fetch(key, tmp_path / "out.wav") == tts_cache.Hit(None, "crashed")


# --------------------------------------------------------------------------- fine-tuning A/B


def test_results_table_models_option() -> None:
    assert results_table.parse_models("") == results_table.MODELS
    assert results_table.parse_models("ft-tts=TTS only,ft-uqm=UQM only") == {"ft-tts": "TTS only", "ft-uqm": "UQM only"}
    with pytest.raises(SystemExit, match="want FOLDER=LABEL"):
        results_table.parse_models("ft-tts")


def test_finetune_script_names_what_it_needs(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "recipes" / "synthetic" / "finetune.sh"
    done = subprocess.run(["bash", str(script), "--data", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert f"{tmp_path}/train.jsonl missing: run recipes/synthetic/run.sh --size demo --stop-stage 6" in done.stderr


def test_run_set_overrides_only_the_size_settings(tmp_path: Path) -> None:
    script = Path(__file__).resolve().parents[1] / "recipes" / "synthetic" / "run.sh"
    for bad in ("no_such_setting=1", "kokoro_share"):
        done = subprocess.run(["bash", str(script), "--data", str(tmp_path), "--set", bad], capture_output=True,
                              text=True, timeout=60)  # fmt: skip
        assert done.returncode == 2
        assert f"error: --set {bad}: not NAME=VALUE for a setting of conf/demo.sh" in done.stderr
