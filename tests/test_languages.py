"""Transcripts in other languages through the data path: manifests, shards, importers, the
LM text, hotwords, the config and scoring (asr.text's rules per language)."""

import json
from pathlib import Path

import pytest

from asr.config import ConfigError, ExperimentConfig, TextConfig, from_dict
from asr.data import read_manifest
from asr.decoding import BeamSearchDecoder
from asr.importers import import_folder
from asr.lm import read_sentences
from asr.metrics import score
from asr.shards import read_shard_index, write_shards
from asr.text import Vocabulary

GERMAN = " 'abcdefghijklmnopqrstuvwxyzßäöü"


def _manifest(tmp_path: Path, fixtures_manifest: Path, texts: list[str]) -> Path:
    rows = [json.loads(line) for line in fixtures_manifest.read_text().splitlines()][: len(texts)]
    for row, text in zip(rows, texts, strict=True):
        row["text"] = text
        row["audio"] = str(fixtures_manifest.parent / row["audio"])
    path = tmp_path / "m.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def test_manifests_and_shards_read_in_the_model_language(tmp_path: Path, fixtures_manifest: Path) -> None:
    manifest = _manifest(tmp_path, fixtures_manifest, ["Die Straße, 5 Äpfel!", "Привет, мир"])
    assert [u.text for u in read_manifest(manifest, "de")[:1]] == ["die straße fünf äpfel"]
    assert [u.text for u in read_manifest(manifest, "ru")][1] == "привет мир"
    # shards keep the text as written, so each reader normalizes it in its own language
    write_shards(manifest, tmp_path / "shards", shard_mb=1)
    sharded = read_shard_index(tmp_path / "shards", "de")
    assert (sharded[0].utt.text, sharded[0].utt.raw_text) == ("die straße fünf äpfel", "Die Straße, 5 Äpfel!")


def test_english_folds_what_other_languages_keep(tmp_path: Path, fixtures_manifest: Path) -> None:
    manifest = _manifest(tmp_path, fixtures_manifest, ["Die Straße, 5 Äpfel!"])
    assert read_manifest(manifest)[0].text == "die stra e five apfel"  # ß has no ASCII letter


def test_folder_import_in_french(tmp_path: Path, fixtures_manifest: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    row = json.loads(fixtures_manifest.read_text().splitlines()[0])
    (folder / "a.wav").write_bytes((fixtures_manifest.parent / row["audio"]).read_bytes())
    (folder / "a.txt").write_text("L'élève a 21 ans.", encoding="utf-8")
    utts, problems = import_folder(folder, tmp_path / "cut", "fr")
    assert problems == [] and [u.text for u in utts] == ["l'élève a vingt et un ans"]


def test_lm_text_and_hotwords_in_german(tmp_path: Path) -> None:
    text = tmp_path / "de.txt"
    text.write_text("Grüß Gott!\nDas Wetter: 3 Grad.\n", encoding="utf-8")
    assert read_sentences([text], "de") == ["grüß gott", "das wetter drei grad"]
    decoder = BeamSearchDecoder(Vocabulary(GERMAN), hotwords=[("Größe", 2.0)], language="de")
    assert decoder.hotwords == [("größe", 2.0)]
    with pytest.raises(ValueError, match="not in vocabulary"):  # the English alphabet cannot spell it
        BeamSearchDecoder(Vocabulary(), hotwords=[("Größe", 2.0)], language="de")


def test_text_language_is_checked_and_old_checkpoints_read_english() -> None:
    assert from_dict(ExperimentConfig, {}).text.language == "en"  # a checkpoint from before text.language
    assert TextConfig("ru").language == "ru"
    with pytest.raises(ConfigError, match=r"text\.language: language 'Deutsch' is not an ISO 639 code"):
        TextConfig("Deutsch")


def test_languages_without_spaces_are_scored_by_cer() -> None:
    scores = score(["北京欢迎你", "我们很好"], ["北京 欢你", "我们很好"], spaces=False)
    assert scores.cer == pytest.approx(1 / 9)  # one deletion; the stray space is not an error
    assert scores.headline == scores.cer and scores.summary().startswith("CER 11.11% (written without spaces)")
    spaced = score(["the cat"], ["the hat"])
    assert spaced.headline == spaced.wer == 0.5


SCRIPTS = ["grüß die straße", "привет мир", "北京 欢迎 你", "noël à la fête"]


def test_char_units_carry_four_scripts_through_training_and_decoding(tmp_path: Path, fixtures_manifest: Path) -> None:
    """``text.units char``: the vocabulary is the training text's characters (Latin with
    umlauts and ß, Cyrillic, Han), stored in the checkpoint; the model memorizes the clips
    relabeled in those scripts and greedy decoding and ``asr transcribe`` give them back."""
    from dataclasses import replace

    from asr.audio import load_audio
    from asr.checkpoint import load_model
    from asr.text import units_from_texts
    from asr.train import train
    from asr.transcribe import decode_posteriors, posteriors_of
    from tests.conftest import asr_cli, tiny_config

    manifest = _manifest(tmp_path, fixtures_manifest, SCRIPTS)
    cfg = tiny_config(tmp_path / "exp", manifest, epochs=120)
    best = train(replace(cfg, text=TextConfig("mul", "char")))  # ISO 639 "multiple languages": the generic rules
    loaded = load_model(best)
    assert loaded.config.vocabulary == units_from_texts(SCRIPTS)
    assert set(loaded.config.vocabulary) == set("".join(SCRIPTS)) and loaded.config.vocabulary[0] == " "
    assert loaded.config.text == TextConfig("mul", "char")
    audios = [load_audio(u.audio) for u in read_manifest(manifest, "mul")]
    assert decode_posteriors(loaded, posteriors_of(loaded, audios), None) == SCRIPTS
    done = asr_cli("transcribe", "--model", str(best), str(read_manifest(manifest)[2].audio))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "北京 欢迎 你\n"


def test_character_lm_for_a_language_without_spaces(tmp_path: Path) -> None:
    """``asr lm build --units char``: a character n-gram; the beam search then scores each
    character of a language written without spaces as a word and writes no spaces."""
    import numpy as np

    from asr.config import DecodingConfig
    from asr.lm import open_lm
    from tests.conftest import asr_cli

    text = tmp_path / "zh.txt"
    text.write_text("北京欢迎你。\n我们在北京。\n欢迎你们！\n", encoding="utf-8")
    done = asr_cli("lm", "build", "--text", str(text), "--language", "zh", "--units", "char", "--order", "3",
                   "--out", str(tmp_path / "lm"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "lm" / "lm.json").read_text())["units"] == "char"
    assert {"北", "京", "欢"} <= set((tmp_path / "lm" / "vocab.txt").read_text(encoding="utf-8").split())
    evaluated = asr_cli("lm", "eval", "--lm", str(tmp_path / "lm"), "--text", str(text), "--language", "zh")
    assert evaluated.returncode == 0 and "OOV rate 0.00%" in evaluated.stdout, evaluated.stdout + evaluated.stderr
    vocab = Vocabulary("们在我京北欢你迎")
    # 北, 京, then 京 and 欢 nearly tied, then 迎: the acoustics read 北京京迎, the LM 北京欢迎
    rows = [{"北": 0.9}, {}, {"京": 0.9}, {}, {"京": 0.5, "欢": 0.45}, {}, {"迎": 0.9}, {}]
    x = np.full((len(rows), len(vocab)), np.log(0.005), dtype=np.float32)
    for t, row in enumerate(rows):
        x[t, 0] = np.log(0.9 if not row else 0.01)
        for ch, p in row.items():
            x[t, vocab.encode(ch)[0]] = np.log(p)
    lm = open_lm(tmp_path / "lm")
    for alpha, want in ((0.0, "北京京迎"), (1.0, "北京欢迎")):
        best = BeamSearchDecoder(vocab, DecodingConfig(beam_size=16, alpha=alpha, beta=0.0), lm=lm).decode(x)[0]
        assert best.text == want and [w.word for w in best.words] == list(want)
