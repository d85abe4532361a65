"""Which checkpoint is ``best.pt``: the lowest pooled dev ``train.best_metric`` (CER by
default, since near 100 % WER the lowest WER rewards deleting), and checkpoints saved before
the field existed still resume."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

import asr.train as train_module
from asr.config import ExperimentConfig, TrainConfig
from asr.metrics import Scores
from asr.monitor import TrainingMonitor


def _scores(wer: float, cer: float) -> Scores:
    return Scores(wer=wer, cer=cer, substitutions=0, deletions=0, insertions=0, words=10, utterances=2)


@pytest.mark.parametrize(("metric", "best_steps"), [("cer", [1, 2]), ("wer", [1, 3])])
def test_best_checkpoint_follows_best_metric(
    monkeypatch: pytest.MonkeyPatch, metric: str, best_steps: list[int]
) -> None:
    # near 100 % WER a checkpoint that deletes most words can have the lowest WER (step 3) while
    # its CER is far worse: by default (cer) best.pt stays at step 2
    dev = {1: _scores(1.00, 0.70), 2: _scores(1.01, 0.58), 3: _scores(0.97, 0.69)}
    saved: list[tuple[int, bool]] = []
    # validate and save are replaced below: nothing else of the trainer is reached
    trainer = train_module.Trainer(
        ExperimentConfig(train=TrainConfig(best_metric=metric)),
        loaded=None,
        model=None,
        optimizer=None,
        scaler=None,
        train_loader=None,
        dev_loaders={},
        device=None,
        progress=train_module.Progress(),
        generator=None,
        monitor=TrainingMonitor(Path("unused"), False),
    )
    monkeypatch.setattr(train_module, "validate", lambda *a: (dev[trainer.progress.step], {}))
    monkeypatch.setattr(trainer, "save", lambda best=False: saved.append((trainer.progress.step, best)))
    for step in dev:
        trainer.progress.step = step
        trainer.validate_and_save()
    assert [s for s, best in saved if best] == best_steps
    assert trainer.progress.best_score == min(getattr(s, metric) for s in dev.values())


def test_best_metric_is_checked_and_old_checkpoints_resume() -> None:
    with pytest.raises(ValueError, match=r"train\.best_metric 'loss': cer or wer"):
        TrainConfig(best_metric="loss")
    old = {"step": 40, "epoch": 1, "batch_in_epoch": 0, "elapsed": 12.0, "best_wer": 0.9, "skipped": 0}
    assert train_module.Progress(**train_module._progress_fields(old, Path("last.pt"), "wer")).best_score == 0.9
    # a best WER is no best CER: the next validation starts the CER record
    assert train_module._progress_fields(old, Path("last.pt"), "cer")["best_score"] == math.inf
