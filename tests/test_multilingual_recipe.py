"""The multilingual recipe, offline: a fake unpacked tree in Debian's layout (a Spanish fortune
file, Asterisk prompts with their transcripts) through every stage to RESULTS.md, espeak-ng
speaking; and the text extraction and prompt reading on their own."""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest
import soundfile as sf

from asr.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "recipes" / "multilingual" / "run.sh"


def _local(name: str) -> types.ModuleType:
    """A module of recipes/multilingual/local, under a name of its own (the synthetic recipe
    has an ``extract_text`` too)."""
    spec = importlib.util.spec_from_file_location(
        f"multilingual_{name}", ROOT / "recipes/multilingual/local" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


extract_text, prompts, romanize = _local("extract_text"), _local("prompts"), _local("romanize")

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="no espeak-ng")
SUBJECTS = ["el gato", "la niña", "mi abuelo", "un perro", "la señora"]
VERBS = ["come", "mira", "busca", "quiere"]
OBJECTS = ["pan", "queso", "el río", "una canción"]


def make_tree(root: Path) -> Path:
    """An unpacked tree with ``usr/share/games/fortunes/es/refranes`` (the 80 sentences of
    :data:`SUBJECTS` x :data:`VERBS` x :data:`OBJECTS`, in fortune entries with an author line
    and a line of code among them) and two Asterisk prompts (8 kHz) with a transcript file
    that also lists a sound description and a prompt whose audio is missing."""
    fortunes = root / "usr/share/games/fortunes/es"
    fortunes.mkdir(parents=True)
    sentences = [f"{s.capitalize()} {v} {o}." for s in SUBJECTS for v in VERBS for o in OBJECTS]
    entries = [" ".join(sentences[i : i + 2]) + "\n\t\t-- Refranero." for i in range(0, len(sentences), 2)]
    entries.append("Use ls -la /usr/bin para ver.")
    (fortunes / "refranes").write_text("\n%\n".join(entries) + "\n", encoding="utf-8")
    (fortunes / "refranes.dat").write_bytes(b"\0\0\0\2")
    sounds = root / "usr/share/asterisk/sounds/es_MX_f_Allison"
    sounds.mkdir(parents=True)
    for name, clip in (("agent-pass", "utt0"), ("digits/1", "utt1"), ("digits/0", "utt0")):
        audio, rate = sf.read(ROOT / "data" / "fixtures" / f"{clip}.wav", dtype="float32")
        (sounds / name).parent.mkdir(parents=True, exist_ok=True)
        sf.write(sounds / f"{name}.wav", audio[:: rate // 8000], 8000)
    doc = root / "usr/share/doc/asterisk-core-sounds-es"
    doc.mkdir(parents=True)
    text = "; Core Asterisk Sounds in Spanish\n\nagent-pass: El gato come pan.\ndigits/1: uno\n"
    text += "beep: [tono simple]\nagent-gone: La niña mira el río.\n"
    text += "agent-pass: El gato come pan.\ndigits/0: el pan\ndigits/0: el perro\n"  # twice; two transcripts
    (doc / "core-sounds-es.txt.gz").write_bytes(gzip.compress(text.encode()))
    return root


def test_extract_text_keeps_prose_and_splits_apart(tmp_path: Path) -> None:
    tree = make_tree(tmp_path / "tree")
    argv = ["--language", "es", "--script", "latin", "--files", str(tree / "usr/share/games/fortunes/es/*")]
    assert extract_text.main([*argv, "--out", str(tmp_path / "text"), "--dev", "5", "--test", "5"]) == 0
    split = {
        n: (tmp_path / "text" / f"{n}.txt").read_text(encoding="utf-8").splitlines() for n in ("train", "dev", "test")
    }
    assert (len(split["train"]), len(split["dev"]), len(split["test"])) == (70, 5, 5)
    every = [t for lines in split.values() for t in lines]
    assert len(set(every)) == 80 and "la niña quiere una canción" in every  # ñ and ó kept
    assert not any("refranero" in t or "ls" in t.split() for t in every)  # authors and code dropped
    with pytest.raises(SystemExit):
        extract_text.main(["--language", "es", "--script", "greek", "--files", "x", "--out", str(tmp_path)])


def test_prompts_skip_descriptions_missing_audio_and_unwritable_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = make_tree(tmp_path / "tree")
    chars = tmp_path / "train.txt"
    chars.write_text("el gato come pan y el perro\n", encoding="utf-8")  # no "u": "uno" cannot be written
    argv = ["--text", str(tree / "usr/share/doc/asterisk-core-sounds-es/core-sounds-es.txt.gz"), "--sounds",
            str(tree / "usr/share/asterisk/sounds/es_MX_f_Allison"), "--language", "es", "--chars", str(chars),
            "--out", str(tmp_path / "prompts.jsonl")]  # fmt: skip
    assert prompts.main(argv) == 0
    rows = [json.loads(line) for line in (tmp_path / "prompts.jsonl").read_text().splitlines()]
    assert [(r["id"], r["text"]) for r in rows] == [("agent-pass", "El gato come pan.")]
    out = capsys.readouterr().out
    assert "no words (a sound description) 1" in out and "characters the training text never uses 2" in out
    assert "one sound, two transcripts 2" in out  # digits/0: neither reference is trusted


@needs_espeak
def test_recipe_end_to_end_offline(tmp_path: Path) -> None:
    tree, data = make_tree(tmp_path / "tree"), tmp_path / "data"
    env = {**os.environ, "PYTHON": sys.executable}
    cmd = ["bash", str(RUN), "--language", "es", "--size", "test", "--data", str(data), "--unpacked", str(tree)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    train = [json.loads(line) for line in (data / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert train and all(r["voice"].startswith("espeak:es") for r in train)
    assert not {r["voice"] for r in train} & {"espeak:es+f4", "espeak:es+m7"}  # the held-out speakers
    held = {json.loads(line)["voice"] for line in (data / "test.jsonl").read_text().splitlines()}
    assert held <= {"espeak:es+f4", "espeak:es+m7"}
    vocabulary = read_checkpoint(data / "exp" / "bilstm" / "best.pt")["config"]["vocabulary"]
    assert "ñ" in vocabulary and vocabulary.startswith(" ")
    results = (data / "RESULTS.md").read_text(encoding="utf-8")
    assert "| model | decoding | test WER | test CER | prompts WER | prompts CER |" in results
    assert "| BiLSTM | greedy |" in results and "| BiLSTM | beam 4 + LM" in results
    rerun = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert rerun.returncode == 0 and rerun.stdout.count("(done already, skipped)") == 7


@needs_espeak
def test_mandarin_trains_on_pinyin_first_then_characters(tmp_path: Path) -> None:
    # zh's row: espeak-ng cmn-latn-pinyin speaks, the first warm_minutes train on toned pinyin
    fortunes = tmp_path / "tree" / "usr/share/games/fortunes"
    fortunes.mkdir(parents=True)
    who, does = ["我的朋友", "小猫", "老师", "妈妈", "孩子们"], ["喜欢", "看见", "想要", "买了"]
    lines = [f"{a}{b}{c}。" for a in who for b in does for c in ("苹果", "大山", "新书", "绿茶")]
    for k, name in enumerate(("chinese", "song100", "tang300")):
        (fortunes / name).write_text("\n%\n".join(lines[k::3]) + "\n", encoding="utf-8")
    data = tmp_path / "data"
    cmd = ["bash", str(RUN), "--language", "zh", "--size", "test", "--data", str(data), "--unpacked",
           str(tmp_path / "tree"), "--set", "bilstm_minutes=2", "--set", "warm_minutes=1"]  # fmt: skip
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "train the BiLSTM model (2 min, the first 1 on pinyin)" in done.stdout
    first = [json.loads(line)["text"] for line in (data / "pinyin" / "train.jsonl").read_text().splitlines()]
    assert first and all(t.replace(" ", "").isascii() and t[-1] in "12345" for t in first)
    warm = read_checkpoint(data / "exp" / "bilstm-pinyin" / "best.pt")["config"]["vocabulary"]
    chars = read_checkpoint(data / "exp" / "bilstm" / "best.pt")["config"]["vocabulary"]
    assert set(warm) <= set("0123456789abcdefghijklmnopqrstuvwxyz") and "猫" in chars and "a" not in chars
    assert "but its output layer" in (data / "exp" / "bilstm" / "train.log").read_text()
    assert "| BiLSTM | greedy |" in (data / "RESULTS.md").read_text(encoding="utf-8")


def test_romanize_writes_pinyin_with_tones_and_keeps_the_audio(tmp_path: Path) -> None:
    src = tmp_path / "data" / "train.jsonl"
    src.parent.mkdir()
    rows = [{"id": "a", "audio": "wav/a.wav", "duration": 1.0, "text": "我爱绿茶", "voice": "espeak:cmn"}]
    src.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    out = tmp_path / "data" / "pinyin" / "train.jsonl"
    assert romanize.main(["--scheme", "pinyin", str(src), str(out)]) == 0
    (got,) = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert got == rows[0] | {"text": "wo3 ai4 lv4 cha2", "audio": "../wav/a.wav"}
    src.write_text('{"id": "b"}\n', encoding="utf-8")
    with pytest.raises(ValueError, match=r"train\.jsonl:1: not a manifest line with text and audio"):
        romanize.romanize(src, out, "pinyin")


def test_recipe_names_the_languages_it_has() -> None:
    done = subprocess.run(["bash", str(RUN), "--language", "xx"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--language must be one of: es fr ru de zh" in done.stderr
