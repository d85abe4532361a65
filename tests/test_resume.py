"""Exact resume: a run killed with SIGKILL mid-epoch and restarted reproduces the losses of
the uninterrupted run (augmentation, SpecAugment, VTLP and dropout all on)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asr.checkpoint import CheckpointError, read_checkpoint
from asr.monitor import read_metrics
from asr.shards import write_shards


def _train_command(fixtures_manifest: Path, out_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "asr.cli", "train",
        "--train.train_manifest", str(fixtures_manifest), "--train.dev_manifest", str(fixtures_manifest),
        "--train.out_dir", str(out_dir), "--train.epochs", "3", "--train.batch_seconds", "1.3",
        "--train.save_every", "3", "--train.keep_last", "2", "--train.log_every", "1", "--train.num_workers", "1",
        "--train.deterministic", "true", "--train.sortagrad", "false", "--train.spec_augment", "true",
        "--train.vtlp", "0.1", "--augment.speed", "0.1", "--augment.noise_prob", "0.5", "--augment.gain_db", "6",
        "--model.hidden_size", "48", "--model.num_layers", "2", "--model.dropout", "0.2", "--train.threads", "1",
        "--train.precision", "fp32", "--train.warmup_steps", "4",
    ]  # fmt: skip


def _losses(out_dir: Path) -> dict[int, float]:
    return {r["step"]: r["loss"] for r in read_metrics(out_dir / "metrics.jsonl") if r["kind"] == "train"}


@pytest.mark.parametrize("source", ["manifest", "shards"])
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(
    tmp_path: Path, fixtures_manifest: Path, source: str
) -> None:
    if source == "shards":
        fixtures_manifest = write_shards(fixtures_manifest, tmp_path / "shards", shard_mb=0.05)
    whole = subprocess.run(_train_command(fixtures_manifest, tmp_path / "whole"), capture_output=True, text=True,
                           timeout=300)  # fmt: skip
    assert whole.returncode == 0, whole.stderr
    reference = _losses(tmp_path / "whole")
    assert sorted(reference) == list(range(1, 13))  # 4 batches of one utterance, 3 epochs

    out = tmp_path / "killed"
    proc = subprocess.Popen(_train_command(fixtures_manifest, out), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if (out / "metrics.jsonl").exists() and max(_losses(out), default=0) >= 7:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)  # after step 7: the last checkpoint is step 6, mid-epoch 2
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    resumed_from = read_checkpoint(out / "last.pt")["progress"]
    assert resumed_from["batch_in_epoch"] > 0, resumed_from  # killed mid-epoch

    again = subprocess.run(_train_command(fixtures_manifest, out), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"resumed from {out / 'last.pt'} at epoch 2 (batch {resumed_from['batch_in_epoch']})" in again.stderr
    losses = _losses(out)
    assert sorted(losses) == sorted(reference)  # no step lost, none repeated
    for step, loss in reference.items():
        assert losses[step] == pytest.approx(loss, rel=1e-5), step
    dev = [(r["step"], r["wer"]) for r in read_metrics(out / "metrics.jsonl") if r["kind"] == "dev"]
    assert dev == [(r["step"], r["wer"]) for r in read_metrics(tmp_path / "whole" / "metrics.jsonl")
                   if r["kind"] == "dev"]  # fmt: skip
    kept = sorted(p.name for p in out.glob("step-*.pt"))
    assert kept == ["step-00000009.pt", "step-00000012.pt"]  # keep_last 2
    assert (out / "curves.png").stat().st_size > 1000 and any((out / "tensorboard").iterdir())
    if source == "manifest":
        avg = subprocess.run([sys.executable, "-m", "asr.cli", "average", "--last", "2", str(out), "--out",
                              str(tmp_path / "avg.pt")], capture_output=True, text=True)  # fmt: skip
        assert avg.returncode == 0, avg.stderr
        assert "the average of step-00000009.pt, step-00000012.pt" in avg.stdout
        avg = subprocess.run([sys.executable, "-m", "asr.cli", "average", "--last", "5", str(out), "--out",
                              str(tmp_path / "avg.pt")], capture_output=True, text=True)  # fmt: skip
        assert avg.returncode == 1 and "only 2 step checkpoints (--last 5)" in avg.stderr


def test_truncated_or_foreign_last_checkpoint_is_a_clear_error(tmp_path: Path, fixtures_manifest: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "last.pt").write_bytes(b"PK\x03\x04 truncated")
    result = subprocess.run(_train_command(fixtures_manifest, out), capture_output=True, text=True, timeout=300)
    assert result.returncode == 1
    assert f"{out / 'last.pt'}: not a readable checkpoint" in result.stderr
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        read_checkpoint(out / "last.pt")
