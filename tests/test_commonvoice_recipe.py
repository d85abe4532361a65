"""The Common Voice recipe, offline, on a small fake release in Common Voice's layout (German
sentences, MP3 clips at 48 kHz): every stage to RESULTS.md; broken lines are reported and
skipped; a folder that is not a release is refused."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.checkpoint import read_checkpoint
from asr.importers import import_commonvoice

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "recipes" / "commonvoice" / "run.sh"
FIXTURES = ROOT / "data" / "fixtures"
COLUMNS = (
    "client_id path sentence_id sentence sentence_domain up_votes down_votes age gender accents variant locale segment"
)
HEADER = "\t".join(COLUMNS.split())  # a Common Voice 17 TSV header
SENTENCES = {
    "train": ["Die Straße ist nass.", "Grüß Gott, Frau Müller!", "Wir trinken 2 Tassen Tee.",
              "Öl und Äpfel im Überfluss.", "Das Wetter ist schön.", "Heute ist Montag."],
    "dev": ["Der Bär schläft.", "Es regnet oft."],
    "test": ["Die Brücke ist alt.", "Guten Morgen!"],
}  # fmt: skip


def make_release(root: Path) -> Path:
    """``root/de``: train/dev/test/validated TSVs and clips/*.mp3 (the fixture clips at 48 kHz),
    plus one train line whose clip is missing and one whose sentence is only punctuation."""
    release = root / "de"
    (release / "clips").mkdir(parents=True)
    clips = sorted(FIXTURES.glob("utt*.wav"))
    validated = [HEADER]
    for split, sentences in SENTENCES.items():
        lines = [HEADER]
        for i, sentence in enumerate(sentences):
            name = f"common_voice_de_{split}{i}.mp3"
            audio, rate = sf.read(clips[i % len(clips)], dtype="float32")
            sf.write(release / "clips" / name, np.interp(np.arange(len(audio) * 3) / 3, np.arange(len(audio)), audio),
                     rate * 3, format="MP3")  # fmt: skip
            lines.append(f"spk{i % 3}\t{name}\t{i}\t{sentence}\t\t2\t0\t\t\t\t\tde\t")
        if split == "train":
            lines += ["spk9\tcommon_voice_de_gone.mp3\t98\tVerloren.\t\t2\t0\t\t\t\t\tde\t",
                      "spk9\tcommon_voice_de_dots.mp3\t99\t...\t\t2\t0\t\t\t\t\tde\t"]  # fmt: skip
        (release / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        validated += lines[1 : len(sentences) + 1]
    validated.append("spk5\tcommon_voice_de_extra.mp3\t7\tNur im Text: ein Igel.\t\t2\t0\t\t\t\t\tde\t")
    (release / "validated.tsv").write_text("\n".join(validated) + "\n", encoding="utf-8")
    return release


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_release(tmp_path_factory.mktemp("cv"))


def _recipe(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["bash", str(RUN), "--conf", "test", *args], capture_output=True, text=True, env=env,
                          timeout=600)  # fmt: skip


def test_importer_reads_a_split_and_names_its_bad_lines(release: Path, tmp_path: Path) -> None:
    utts, problems = import_commonvoice(release / "train.tsv", tmp_path, "de")
    expected = ["die straße ist nass", "grüß gott frau müller", "wir trinken zwei tassen tee",
                "öl und äpfel im überfluss", "das wetter ist schön", "heute ist montag"]  # fmt: skip
    assert [u.text for u in utts] == expected
    assert utts[1].id == "common_voice_de_train1" and utts[1].speaker == "spk1" and utts[1].raw_text.startswith("Grüß")
    assert 0.9 < utts[0].duration < 1.3 and utts[0].audio.suffix == ".mp3"
    train = release / "train.tsv"
    assert len(problems) == 2, problems
    assert problems[0].startswith(f"{train}:8: audio clips/common_voice_de_gone.mp3")
    assert problems[1] == f"{train}:9: transcript '...' is empty after normalization"


def test_recipe_end_to_end_offline(release: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    done = _recipe("--release", str(release), "--data", str(data))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = [json.loads(line) for line in (data / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 6 and rows[0]["text"] == "Die Straße ist nass."  # written as it was; read in German
    assert "common_voice_de_gone.mp3" in done.stderr  # the broken lines reported, the rest used
    lm_text = (data / "text" / "lm.txt").read_text(encoding="utf-8").splitlines()
    assert "nur im text ein igel" in lm_text and "der bär schläft" not in lm_text  # validated's, not dev's
    vocabulary = read_checkpoint(data / "exp" / "bilstm" / "best.pt")["config"]["vocabulary"]
    assert {"ß", "ü", "ö", "ä"} <= set(vocabulary) and vocabulary.startswith(" ")
    results = (data / "RESULTS.md").read_text(encoding="utf-8")
    assert "| model | decoding | dev WER | dev CER | test WER | test CER |" in results
    for label in ("| BiLSTM | greedy |", "| BiLSTM | beam 8 + LM", "| streaming LSTM | greedy |"):
        assert label in results, results
    rerun = _recipe("--release", str(release), "--data", str(data))
    assert rerun.returncode == 0 and rerun.stdout.count("(done already, skipped)") == 5


def test_recipe_refuses_a_folder_that_is_not_a_release(tmp_path: Path) -> None:
    done = _recipe("--release", str(tmp_path))
    assert done.returncode == 2
    assert f"{tmp_path}/train.tsv missing: not a Common Voice release folder" in done.stderr
