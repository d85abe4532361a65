"""Tiny end-to-end runs: train to memorize the fixture clips, then decode and transcribe."""

import json
from pathlib import Path

import pytest
import torch

from asr.audio import load_audio
from asr.checkpoint import load_model, read_checkpoint
from asr.data import AudioDataset, collate, read_manifest
from asr.transcribe import decode_posteriors, log_probs_of, posteriors_of
from tests.conftest import asr_cli, tiny_config

FIXTURE_TEXTS = ["hello world", "open the door", "the cat sat", "good morning"]


def test_overfit_memorizes_fixtures(overfit_checkpoint: Path, fixtures_manifest: Path) -> None:
    loaded = load_model(overfit_checkpoint)
    utts = read_manifest(fixtures_manifest)
    batch = collate([AudioDataset(utts, loaded.vocab)[i] for i in range(len(utts))])
    log_probs, lengths = log_probs_of(loaded, batch.waveforms, batch.audio_lengths)
    loss = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), batch.targets, lengths, batch.target_lengths)
    assert loss.item() < 0.05  # per target character; an untrained model is at ~4
    audios = [load_audio(u.audio) for u in utts]
    assert decode_posteriors(loaded, posteriors_of(loaded, audios), None) == FIXTURE_TEXTS
    progress = read_checkpoint(overfit_checkpoint)["progress"]
    assert progress["best_score"] == 0.0  # dev CER of the memorized fixtures


def test_cli_transcribe_fixture_clip(overfit_checkpoint: Path, fixtures_manifest: Path) -> None:
    clip = fixtures_manifest.parent / "utt1.wav"
    result = asr_cli("transcribe", "--model", str(overfit_checkpoint), str(clip))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "open the door\n"


def test_cli_decode_writes_results(overfit_checkpoint: Path, fixtures_manifest: Path, tmp_path: Path) -> None:
    result = asr_cli("decode", "--model", str(overfit_checkpoint), "--manifest", str(fixtures_manifest),
                     "--out-dir", str(tmp_path), "--num-workers", "0")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "fixtures: WER 0.00%" in result.stdout
    assert (tmp_path / "wer-fixtures.txt").read_text().startswith("WER 0.00%")
    assert len((tmp_path / "recogs-fixtures.txt").read_text().splitlines()) == 4


def test_cli_errors_name_the_file(overfit_checkpoint: Path, fixtures_manifest: Path, tmp_path: Path) -> None:
    (tmp_path / "text.wav").write_text("not audio at all")
    good = fixtures_manifest.parent / "utt0.wav"
    result = asr_cli("transcribe", "--model", str(overfit_checkpoint), str(tmp_path / "missing.wav"),
                     str(tmp_path / "text.wav"), str(good))  # fmt: skip
    assert result.returncode == 1
    assert result.stdout == "hello world\n"  # good files are still transcribed
    assert f"{tmp_path / 'missing.wav'}: no such file" in result.stderr
    assert f"{tmp_path / 'text.wav'}: not an audio file" in result.stderr
    result = asr_cli("transcribe", "--model", str(tmp_path / "text.wav"), str(good))
    assert result.returncode == 1 and "text.wav: not a readable checkpoint" in result.stderr
    result = asr_cli("decode", "--model", str(overfit_checkpoint), "--manifest", str(tmp_path / "none.jsonl"))
    assert result.returncode == 1 and "none.jsonl: no such manifest file" in result.stderr


def test_training_resumes_from_last_checkpoint(tmp_path: Path, fixtures_manifest: Path) -> None:
    from asr.train import train

    train(tiny_config(tmp_path, fixtures_manifest, epochs=2))
    assert read_checkpoint(tmp_path / "last.pt")["progress"]["epoch"] == 2
    train(tiny_config(tmp_path, fixtures_manifest, epochs=3))
    progress = read_checkpoint(tmp_path / "last.pt")["progress"]
    assert progress["epoch"] == 3 and progress["step"] == 3  # one batch per epoch, not restarted
    assert "resumed from" in (tmp_path / "train.log").read_text()


def test_eval_every_scores_each_dev_set_mid_epoch(tmp_path: Path, fixtures_manifest: Path) -> None:
    import json
    from dataclasses import replace

    from asr.monitor import read_metrics
    from asr.train import dev_sets, train

    lines = fixtures_manifest.read_text().splitlines()
    devs = []
    for name, part in (("a", lines[:1]), ("b", lines[1:])):
        rows = [json.loads(line) for line in part]
        for row in rows:
            row["audio"] = str(fixtures_manifest.parent / row["audio"])
        (tmp_path / name).mkdir()
        devs.append(tmp_path / name / "dev.jsonl")
        devs[-1].write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert list(dev_sets(f"{devs[0]},{devs[1]}")) == ["a-dev", "b-dev"]
    assert dev_sets(f"{devs[0]},{fixtures_manifest}") == {"dev": str(devs[0]), "fixtures": str(fixtures_manifest)}
    out = tmp_path / "exp"
    cfg = tiny_config(out, fixtures_manifest, epochs=2, eval_every=3)
    train(replace(cfg, train=replace(cfg.train, batch_seconds=1.3, dev_manifest=f"{devs[0]},{devs[1]}")))
    dev = [r for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "dev"]
    assert [r["step"] for r in dev] == [3, 4, 6, 8]  # every 3 steps and at both epoch ends (4 batches each)
    for r in dev:
        assert min(r["wer/a-dev"], r["wer/b-dev"]) <= r["wer"] <= max(r["wer/a-dev"], r["wer/b-dev"])
    log = (out / "train.log").read_text()
    assert "step 3 (epoch 1) dev: WER" in log and "epoch 2 dev b-dev: WER" in log
    assert read_checkpoint(out / "step-00000006.pt")["progress"]["batch_in_epoch"] == 2  # saved mid-epoch
    assert (out / "curves.png").stat().st_size > 0


def test_cli_beam_search_with_lm_tune_and_decode(
    overfit_checkpoint: Path, fixtures_manifest: Path, tmp_path: Path
) -> None:
    arpa = fixtures_manifest.parent / "tiny.arpa"
    tuned = tmp_path / "tuned.json"
    result = asr_cli(
        "tune-lm",
        "--model",
        str(overfit_checkpoint),
        "--manifest",
        str(fixtures_manifest),
        "--lm",
        str(arpa),
        "--out-dir",
        str(tmp_path),
        "--out",
        str(tuned),
        "--trials",
        "6",
        "--alphas",
        "0",
        "0.5",
        "--betas",
        "0",
        "1",
        "--num-workers",
        "0",
        "--lexicon",
        "free",
    )  # fmt: skip  (the fixture ARPA knows 4 words)
    assert result.returncode == 0, result.stderr
    assert "fixtures: best alpha" in result.stdout and "WER 0.00%" in result.stdout
    assert (tmp_path / "posteriors-fixtures.pt").is_file()  # the next tune-lm run only decodes
    assert json.loads(tuned.read_text())["confidence"]["method"] == "isotonic"  # fitted at the best weights
    assert "fixtures word confidence: raw ECE" in result.stdout and "calibrated ECE" in result.stdout
    result = asr_cli("decode", "--model", str(overfit_checkpoint), "--manifest", str(fixtures_manifest),
                  "--lm", str(arpa), "--tuned", str(tuned), "--beam", "50", "--out-dir", str(tmp_path),
                  "--num-workers", "0", "--decode-workers", "2", "--lexicon", "free",
                  "--greedy-name", "fixtures-greedy")  # fmt: skip
    assert result.returncode == 0, result.stderr
    # at the beam tune-lm used (50): narrower beams lose characters here, as every fixture word is outside
    # the ARPA's 4 and lexicon-free decoding charges unknown words per character as they are spelled
    assert "fixtures: WER 0.00%" in result.stdout and f"beam 50, LM {arpa}" in result.stdout
    assert "lexicon free" in result.stdout
    assert "fixtures word confidence: raw ECE" in result.stdout  # and the tuned calibration's, on this set:
    assert json.loads((tmp_path / "confidence-fixtures.json").read_text())["calibrated"]["words"] == 10
    assert "fixtures-greedy: WER 0.00%" in result.stdout and "(greedy)" in result.stdout  # same posteriors
    assert (tmp_path / "wer-fixtures-greedy.txt").is_file() and (tmp_path / "wer-fixtures.txt").is_file()
    result = asr_cli("decode", "--model", str(overfit_checkpoint), "--manifest", str(fixtures_manifest),
                     "--lm", str(tmp_path / "nope.bin"))  # fmt: skip
    assert result.returncode == 1 and "nope.bin: no such language model file" in result.stderr


def test_cli_transcribe_with_beam_and_lexicon(overfit_checkpoint: Path, fixtures_manifest: Path) -> None:
    clip = fixtures_manifest.parent / "utt2.wav"
    arpa = fixtures_manifest.parent / "tiny.arpa"
    result = asr_cli("transcribe", "--model", str(overfit_checkpoint), str(clip), "--lm", str(arpa),
                     "--lexicon", "lm", "--alpha", "0.5")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == "the cat sat\n"


def test_cli_transcribe_applies_the_tuned_calibration_and_min_confidence(
    overfit_checkpoint: Path, fixtures_manifest: Path, tmp_path: Path
) -> None:
    clip = fixtures_manifest.parent / "utt2.wav"
    tuned = tmp_path / "tuned.json"  # a calibration that calls every word doubtful
    tuned.write_text(json.dumps({"alpha": 0.5, "beta": 0.0, "confidence": {"method": "temperature", "a": 1, "b": -20}}))
    common = ["transcribe", "--model", str(overfit_checkpoint), str(clip), "--lm", str(fixtures_manifest.parent /
              "tiny.arpa"), "--lexicon", "lm", "--tuned", str(tuned), "--min-confidence", "0.5"]  # fmt: skip
    result = asr_cli(*common, "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["text"] == "the cat sat" and doc["settings"]["decoding"]["confidence_calibration"] == "temperature"
    assert [w["low_confidence"] for w in doc["words"]] == [True] * 3 and max(
        w["confidence"] for w in doc["words"]
    ) < 0.01
    result = asr_cli(*common, "--low-confidence", "drop")
    assert result.returncode == 0 and result.stdout == "\n"
    tuned.write_text(json.dumps({"alpha": 0.5, "beta": 0.0, "confidence": {"method": "spline"}}))
    result = asr_cli(*common)
    assert (
        result.returncode == 1
        and f"{tuned}: not a usable tune-lm result" in result.stderr
        and "'spline'" in result.stderr
    )


def test_average_checkpoints(tmp_path: Path, fixtures_manifest: Path) -> None:
    import dataclasses
    import shutil

    from asr.checkpoint import CheckpointError, average_checkpoints
    from asr.train import train

    train(tiny_config(tmp_path / "run", fixtures_manifest, epochs=1))
    shutil.copy(tmp_path / "run" / "last.pt", tmp_path / "epoch1.pt")
    train(tiny_config(tmp_path / "run", fixtures_manifest, epochs=2))
    a, b = read_checkpoint(tmp_path / "epoch1.pt"), read_checkpoint(tmp_path / "run" / "last.pt")
    result = asr_cli("average", str(tmp_path / "epoch1.pt"), str(tmp_path / "run" / "last.pt"),
                     "--out", str(tmp_path / "avg.pt"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    avg = read_checkpoint(tmp_path / "avg.pt")
    weight = "head.weight"
    assert torch.allclose(avg["model"][weight], (a["model"][weight] + b["model"][weight]) / 2, atol=1e-6)
    assert load_model(tmp_path / "avg.pt") is not None  # loads as an inference checkpoint
    other = tiny_config(tmp_path / "other", fixtures_manifest, epochs=1)
    train(dataclasses.replace(other, model=dataclasses.replace(other.model, hidden_size=32)))
    try:
        average_checkpoints([tmp_path / "epoch1.pt", tmp_path / "other" / "last.pt"], tmp_path / "bad.pt")
        raise AssertionError("averaging different models must fail")
    except CheckpointError as e:
        assert "other/last.pt: its model config differs" in str(e)
    assert not (tmp_path / "bad.pt").exists()


def test_nan_loss_batches_are_skipped_and_counted(tmp_path: Path, fixtures_manifest: Path, monkeypatch) -> None:
    from asr.model import AcousticModel
    from asr.train import train

    forward = AcousticModel.forward
    calls = {"n": 0}

    def first_call_nan(self, feats, lengths):
        log_probs, out_lengths = forward(self, feats, lengths)
        calls["n"] += 1
        return (log_probs * float("nan") if calls["n"] == 1 else log_probs), out_lengths

    monkeypatch.setattr(AcousticModel, "forward", first_call_nan)
    train(tiny_config(tmp_path, fixtures_manifest, epochs=3))
    state = read_checkpoint(tmp_path / "last.pt")
    assert state["progress"]["skipped"] == 1 and state["progress"]["step"] == 2  # 3 batches, 1 skipped
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    assert "loss or gradient not finite, batch skipped (1 so far)" in (tmp_path / "train.log").read_text()


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_training_learns_on_cpu(tmp_path: Path, fixtures_manifest: Path, precision: str) -> None:
    import re

    from asr.train import train

    cfg = tiny_config(tmp_path, fixtures_manifest, epochs=12, log_every=1, precision=precision)
    train(cfg)
    log = (tmp_path / "train.log").read_text()
    losses = [float(x) for x in re.findall(r"step \d+ epoch \d+ loss ([0-9.]+)", log)]
    assert len(losses) >= 10 and "nan" not in log
    assert sum(losses[-3:]) / 3 < 0.6 * sum(losses[:3]) / 3  # the loss falls
    state = read_checkpoint(tmp_path / "last.pt")
    assert state["config"]["train"]["precision"] == precision
    assert ("scale" in state["scaler"]) == (precision == "fp16")  # fp16 keeps a loss scaler
