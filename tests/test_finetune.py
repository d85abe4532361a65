"""Fine-tuning: ``--train.init_from`` starts from another model's weights with a fresh
optimizer and schedule, and refuses a checkpoint whose vocabulary or shapes differ
(``--train.init_head false``: another vocabulary, the output layer fresh)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from asr.checkpoint import CheckpointError, build, init_weights, read_checkpoint
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


def test_init_head_false_copies_the_encoder_into_a_model_with_other_units(
    overfit_checkpoint: Path, fixtures_manifest: Path, tmp_path: Path
) -> None:
    # the warm start of the multilingual recipe: a romanized model's encoder under a character head
    source = read_checkpoint(overfit_checkpoint)["model"]
    cfg = tiny_config(tmp_path / "other", fixtures_manifest)
    other = build(replace(cfg, vocabulary="abcdefghij"))  # 11 outputs, not 29
    with pytest.raises(CheckpointError, match=r"train\.init_head false starts the output layer fresh"):
        init_weights(other, overfit_checkpoint)
    fresh_head = other.model.head.weight.detach().clone()
    init_weights(other, overfit_checkpoint, head=False)
    mine = other.model.state_dict()
    encoder = [k for k in source if not k.startswith("head.")]
    assert encoder and all(torch.equal(mine[k], source[k]) for k in encoder)
    assert torch.equal(other.model.head.weight, fresh_head) and fresh_head.shape[0] == 11
    wider = build(replace(cfg, model=replace(cfg.model, hidden_size=64), vocabulary="abcdefghij"))
    with pytest.raises(CheckpointError, match="its weights do not fit this model config"):
        init_weights(wider, overfit_checkpoint, head=False)
