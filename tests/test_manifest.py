"""Manifests from elsewhere: checking every line, normalizing raw text, and `asr manifest`
importing Kaldi data directories, NeMo manifests and folders of audio."""

import json
from pathlib import Path

import pytest
import soundfile as sf

from asr.data import Utterance, check_manifest, read_manifest, write_manifest
from asr.importers import import_folder, import_nemo
from asr.text import Vocabulary
from tests.conftest import FIXTURES, asr_cli

CLIPS = {json.loads(line)["id"]: json.loads(line) for line in (FIXTURES / "fixtures.jsonl").read_text().splitlines()}


def _write_lines(path: Path, rows: list[dict | str]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


def _row(uid: str, clip: str = "utt0", **keys: object) -> dict:
    """A manifest row for fixture clip ``clip`` (absolute path, its duration and text)."""
    c = CLIPS[clip]
    return {"id": uid, "audio": str(FIXTURES / c["audio"]), "duration": c["duration"], "text": c["text"], **keys}


def test_check_manifest_reports_every_bad_line(tmp_path: Path) -> None:
    (tmp_path / "noise.wav").write_text("not audio")
    manifest = _write_lines(tmp_path / "m.jsonl", [
        _row("a", text="Hello, World!", speaker="spk1"),
        _row("b", audio="wav/x.wav"),
        "{oops",
        {"id": "c", "audio": "noise.wav", "duration": 1.0},
        _row("d", text="¿?"),
        _row("e", duration=3.5),
        _row("a", clip="utt1"),
        _row("f", audio="noise.wav", duration=0),
        "",
        _row("g", clip="utt3", text="Good morning, 2!"),
    ])  # fmt: skip
    good, bad = check_manifest(manifest)
    assert [(u.id, u.text, u.raw_text, u.speaker) for u in good] == [
        ("a", "hello world", "Hello, World!", "spk1"),
        ("g", "good morning two", "Good morning, 2!", ""),
    ]
    assert bad == [
        f"{manifest}:2: audio wav/x.wav: no such file",
        f"{manifest}:3: not valid JSON (Expecting property name enclosed in double quotes)",
        f"{manifest}:4: missing keys ['text']",
        f"{manifest}:5: text '¿?' is empty after normalization",
        f"{manifest}:6: duration 3.5 s, but audio {FIXTURES / 'utt0.wav'} lasts 0.959 s",
        f"{manifest}:7: id 'a' already used on line 1",
        f"{manifest}:8: audio noise.wav: not an audio file (format not recognised); duration 0 s is not positive",
    ]
    _, bad = check_manifest(_write_lines(tmp_path / "n.jsonl", [_row("a")]), Vocabulary(" abcdefghijk"))
    where = f"{tmp_path / 'n.jsonl'}:1"
    assert bad == [
        f"{where}: text 'hello world' holds characters the model's vocabulary cannot write: 'l', 'o', 'w', 'r'"
    ]
    # a German line read as German keeps its letters; without units to check against (they
    # come from the German text) they pass; English units name them
    german = _write_lines(tmp_path / "de.jsonl", [{**_row("a"), "text": "Die Straße über Köln"}])
    utts, bad = check_manifest(german, language="de")
    assert bad == [] and utts[0].text == "die straße über köln"
    _, bad = check_manifest(german, Vocabulary(), language="de")
    assert bad == [f"{german}:1: text 'die straße über köln' holds characters the model's vocabulary cannot write: "
                   "'ß', 'ü', 'ö'"]  # fmt: skip
    utts, bad = check_manifest(german, Vocabulary(" abcdefghijklmnopqrstuvwxyzßäöü"), language="de")
    assert bad == [] and utts[0].text == "die straße über köln"


def test_manifest_check_against_a_models_units(tmp_path: Path, overfit_checkpoint: Path) -> None:
    german = _write_lines(tmp_path / "de.jsonl", [_row("a"), {**_row("b"), "text": "Die Straße über Köln"}])
    plain = asr_cli("manifest", "check", str(german), "--language", "de")
    assert plain.returncode == 0 and "2 good lines" in plain.stdout
    # the English model's units cannot write the German letters: named, exit 1
    checked = asr_cli("manifest", "check", str(german), "--language", "de", "--model", str(overfit_checkpoint))
    assert checked.returncode == 1, checked.stderr
    assert f"{german}:2: text 'die straße über köln' holds characters the model's vocabulary cannot write: " \
           "'ß', 'ü', 'ö'" in checked.stdout + checked.stderr  # fmt: skip
    # read as the model's language (English), the letters fold to a-z: nothing to name
    english = asr_cli("manifest", "check", str(german), "--model", str(overfit_checkpoint))
    assert english.returncode == 0 and "2 good lines" in english.stdout, english.stdout + english.stderr


def test_raw_text_and_speaker_survive_a_round_trip(tmp_path: Path) -> None:
    utts = [Utterance("a", FIXTURES / "utt0.wav", 0.959, "hello world", "Hello, World!", "spk1"),
            Utterance("b", FIXTURES / "utt1.wav", 1.203, "open the door")]  # fmt: skip
    write_manifest(tmp_path / "m.jsonl", utts)
    rows = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert rows[0]["text"] == "Hello, World!" and rows[0]["speaker"] == "spk1"
    assert "speaker" not in rows[1] and rows[1]["text"] == "open the door"
    assert read_manifest(tmp_path / "m.jsonl") == [
        Utterance("a", FIXTURES / "utt0.wav", 0.959, "hello world", "Hello, World!", "spk1"),
        Utterance("b", FIXTURES / "utt1.wav", 1.203, "open the door", "open the door"),
    ]


def test_import_kaldi_data_directory(tmp_path: Path) -> None:
    data = tmp_path / "kaldi"
    data.mkdir()
    (data / "wav.scp").write_text(f"rec1 {FIXTURES / 'utt1.wav'}\nrec2 flac -c -d -s rec2.flac |\n")
    (data / "segments").write_text("s1 rec1 0.0 0.5\ns2 rec1 0.5 -1\ns3 rec2 0 1\ns4 rec1 0.9 3.0\n")
    (data / "text").write_text("s1 OPEN THE\ns2 DOOR\ns3 SOMETHING\ns4 LATE\ns9 ORPHAN\n")
    (data / "utt2spk").write_text("s1 spk1\ns2 spk2\n")
    out = tmp_path / "out" / "m.jsonl"
    result = asr_cli("manifest", "kaldi", str(data), "--out", str(out))
    assert result.returncode == 1, result.stderr
    assert f"wrote {out}: 2 utterances" in result.stdout
    assert f"{data / 'segments'}:3: {data / 'wav.scp'}:2: 'flac -c -d -s rec2.flac |' is a command" in result.stderr
    assert f"{data / 'segments'}:4: segment 0.9-3 s ends after audio {FIXTURES / 'utt1.wav'} does" in result.stderr
    assert f"{data / 'text'}:5: utterance s9 is not in {data / 'segments'}" in result.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["audio"], r["text"], r.get("speaker")) for r in rows] == [
        ("s1", "m-audio/s1.wav", "OPEN THE", "spk1"),
        ("s2", "m-audio/s2.wav", "DOOR", "spk2"),
    ]
    assert [r["duration"] for r in rows] == pytest.approx([0.5, 0.703], abs=1e-3)
    info = sf.info(out.parent / "m-audio" / "s2.wav")
    assert info.samplerate == 16000 and info.frames == sf.info(FIXTURES / "utt1.wav").frames - 8000
    good, bad = check_manifest(out)
    assert [u.text for u in good] == ["open the", "door"] and not bad

    (data / "segments").unlink()  # now each wav.scp line is an utterance
    (data / "wav.scp").write_text(f"u0 {FIXTURES / 'utt0.wav'}\nu1 {tmp_path / 'gone.wav'}\n")
    (data / "text").write_text("u0 HELLO WORLD\nu1 OPEN THE DOOR\n")
    result = asr_cli("manifest", "kaldi", str(data), "--out", str(out))
    assert result.returncode == 1
    assert f"{data / 'wav.scp'}:2: audio {tmp_path / 'gone.wav'}: no such file" in result.stderr
    assert [(u.id, u.audio, u.duration, u.raw_text) for u in read_manifest(out)] == [
        ("u0", FIXTURES / "utt0.wav", pytest.approx(0.959, abs=1e-3), "HELLO WORLD")
    ]


def test_import_nemo_manifest(tmp_path: Path) -> None:
    (tmp_path / "wav").mkdir()
    (tmp_path / "wav" / "utt2.wav").write_bytes((FIXTURES / "utt2.wav").read_bytes())
    nemo = _write_lines(tmp_path / "nemo.json", [
        {"audio_filepath": "wav/utt2.wav", "duration": 0.974, "text": "The cat sat."},
        {"audio_filepath": str(FIXTURES / "utt1.wav"), "duration": 0.5, "offset": 0.6, "text": "door",
         "speaker": "s7"},
        {"audio_filepath": "wav/missing.wav", "duration": 1.0, "text": "x"},
        {"audio_filepath": "wav/utt2.wav", "text": "no duration"},
    ])  # fmt: skip
    utts, problems = import_nemo(nemo, tmp_path / "cuts")
    assert [(u.id, u.text, u.raw_text, u.speaker) for u in utts] == [
        ("utt2", "the cat sat", "The cat sat.", ""),
        ("utt1-0000600", "door", "door", "s7"),
    ]
    assert utts[0].audio == (tmp_path / "wav" / "utt2.wav").resolve()
    assert utts[0].duration == pytest.approx(0.974, abs=1e-3)
    assert utts[1].audio == (tmp_path / "cuts" / "utt1-0000600.wav").resolve()
    assert utts[1].duration == pytest.approx(0.5, abs=1e-3) and sf.info(utts[1].audio).samplerate == 16000
    assert problems == [f"{nemo}:3: audio wav/missing.wav: no such file", f"{nemo}:4: missing keys ['duration']"]


def test_import_folder_of_audio_with_transcripts(tmp_path: Path) -> None:
    for sub, clip, text in (("a", "utt0", "Hello world!\n"), ("b/c", "utt3", "GOOD\nMORNING"), ("b", "utt1", None)):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
        (tmp_path / sub / f"{clip}.wav").write_bytes((FIXTURES / f"{clip}.wav").read_bytes())
        if text is not None:
            (tmp_path / sub / f"{clip}.txt").write_text(text)
    utts, problems = import_folder(tmp_path)
    assert [(u.id, u.text, u.raw_text) for u in utts] == [
        ("a/utt0", "hello world", "Hello world!"),
        ("b/c/utt3", "good morning", "GOOD MORNING"),
    ]
    assert [u.duration for u in utts] == pytest.approx([0.959, 0.881], abs=1e-3)
    assert problems == [f"{tmp_path / 'b' / 'utt1.wav'}: no transcript utt1.txt beside it"]


def test_decode_normalizes_raw_text(overfit_checkpoint: Path, tmp_path: Path) -> None:
    raw = {"utt0": "Hello, World!", "utt1": "OPEN the Door.", "utt2": "The cat... sat", "utt3": "Good morning, 2!"}
    manifest = _write_lines(tmp_path / "raw.jsonl", [_row(uid, uid, text=text) for uid, text in raw.items()])
    result = asr_cli("decode", "--model", str(overfit_checkpoint), "--manifest", str(manifest),
                     "--out-dir", str(tmp_path), "--num-workers", "0")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "raw: WER 9.09% [ 1 / 11, 0 ins, 1 del, 0 sub ]" in result.stdout  # "two" is not in the audio
    recogs = (tmp_path / "recogs-raw.txt").read_text().splitlines()
    assert recogs[0] == "utt0\tref=hello world\thyp=hello world\traw=Hello, World!"
    assert recogs[3] == "utt3\tref=good morning two\thyp=good morning\traw=Good morning, 2!"


def test_decode_scores_good_lines_and_lists_bad_ones(overfit_checkpoint: Path, tmp_path: Path) -> None:
    rows = [_row(f"{uid}-{copy}", uid) for copy in range(2) for uid in CLIPS]
    rows += [_row("lost", audio="wav/lost.wav"), _row("blank", text="¿?"), _row("last", "utt2")]
    manifest = _write_lines(tmp_path / "mixed.jsonl", rows)
    result = asr_cli("decode", "--model", str(overfit_checkpoint), "--manifest", str(manifest),
                     "--out-dir", str(tmp_path), "--num-workers", "0")  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "mixed: WER 0.00%" in result.stdout and "over 9 utterances" in result.stdout
    assert f"error: 2 of 11 lines of {manifest} are unusable (the other 9 were used):" in result.stderr
    assert f"  {manifest}:9: audio wav/lost.wav: no such file\n" in result.stderr
    assert f"  {manifest}:10: text '¿?' is empty after normalization\n" in result.stderr
    assert len((tmp_path / "recogs-mixed.txt").read_text().splitlines()) == 9
    assert (tmp_path / "wer-mixed.txt").read_text().startswith("WER 0.00%")


def test_train_refuses_bad_lines_unless_told_to_skip_them(tmp_path: Path) -> None:
    manifest = _write_lines(tmp_path / "train.jsonl", [*(_row(uid, uid) for uid in CLIPS), _row("x", audio="x.wav")])
    args = ["train", "--train.train_manifest", str(manifest), "--train.dev_manifest", str(FIXTURES / "fixtures.jsonl"),
            "--train.out_dir", str(tmp_path / "exp"), "--train.epochs", "1", "--train.num_workers", "0",
            "--train.tensorboard", "false", "--train.precision", "fp32", "--model.hidden_size", "32",
            "--model.num_layers", "1"]  # fmt: skip
    result = asr_cli(*args)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"1 of 5 lines of {manifest} are unusable:\n  {manifest}:5: audio x.wav: no such file" in result.stderr
    assert "--train.skip_bad_lines true" in result.stderr
    result = asr_cli(*args, "--train.skip_bad_lines", "true")
    assert result.returncode == 0, result.stderr
    assert "best checkpoint:" in result.stdout
    log = (tmp_path / "exp" / "train.log").read_text()
    assert "skipped 1 of 5 lines" in log and f"{manifest}: 4 utterances" in log
