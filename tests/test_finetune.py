"""Fine-tuning: ``--train.init_from`` starts from another model's weights with a fresh
optimizer and schedule, and refuses a checkpoint whose vocabulary or shapes differ."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from asr.checkpoint import read_checkpoint
from asr.train import train
from tests.conftest import asr_cli, tiny_config


def _dev_wers(out: Path) -> list[float]:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["wer"] for r in rows if "wer" in r]


def test_init_from_starts_at_the_other_models_weights(
    overfit_checkpoint: Path, fixtures_manifest: Path, tmp_path: Path
) -> None:
    cfg = tiny_config(tmp_path / "scratch", fixtures_manifest, epochs=1)
    train(cfg)
    cfg = tiny_config(tmp_path / "tuned", fixtures_manifest, epochs=1, init_from=str(overfit_checkpoint))
    train(replace(cfg, train=replace(cfg.train, lr=1e-6)))  # a tiny step: the weights stay where they came from
    assert _dev_wers(tmp_path / "scratch") == [1.0]  # one epoch from scratch reads nothing
    assert _dev_wers(tmp_path / "tuned") == [0.0]  # the memorizing model's weights
    progress = read_checkpoint(tmp_path / "tuned" / "last.pt")["progress"]
    assert progress["epoch"] == 1 and progress["step"] == 1  # its own schedule, from step 0
    assert "weights from" in (tmp_path / "tuned" / "train.log").read_text()


def test_init_from_refuses_another_vocabulary_or_shape(
    overfit_checkpoint: Path, fixtures_manifest: Path, tmp_path: Path
) -> None:
    common = ["train", "--train.train_manifest", str(fixtures_manifest), "--train.dev_manifest",
              str(fixtures_manifest), "--train.init_from", str(overfit_checkpoint), "--train.num_workers", "0",
              "--model.num_layers", "2", "--model.dropout", "0", "--train.epochs", "1"]  # fmt: skip
    done = asr_cli(*common, "--train.out_dir", str(tmp_path / "a"), "--model.hidden_size", "96",
                   "--vocabulary", " abcdefghijklmnopqrstuvwxyz")  # fmt: skip
    assert done.returncode == 1
    assert f"{overfit_checkpoint}: its vocabulary" in done.stderr and "differs" in done.stderr
    assert "Traceback" not in done.stderr
    done = asr_cli(*common, "--train.out_dir", str(tmp_path / "b"), "--model.hidden_size", "64")
    assert done.returncode == 1
    assert f"{overfit_checkpoint}: its weights do not fit this model config" in done.stderr
    assert not (tmp_path / "b" / "last.pt").exists()
