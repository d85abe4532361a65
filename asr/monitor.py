"""What training reports: ``metrics.jsonl`` (one JSON record per logged step and per
validation), TensorBoard scalars, and ``curves.png`` redrawn at every validation.

Only rank 0 makes a :class:`TrainingMonitor` that writes. On resume, records after the
resumed step are dropped (and TensorBoard purges them), so curves never fold back.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from asr.files import atomic_path, write_text

log = logging.getLogger("asr.monitor")

METRICS = "metrics.jsonl"
CURVES = "curves.png"


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file (an unreadable last line, cut by a crash, is dropped)."""
    records = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class TrainingMonitor:
    """Writes step and validation records under ``out_dir``; ``enabled=False`` writes nothing."""

    def __init__(self, out_dir: str | Path, enabled: bool, resume_step: int = 0, tensorboard: bool = True) -> None:
        self.out_dir = Path(out_dir)
        self.enabled = enabled
        self.path = self.out_dir / METRICS
        self.writer = None
        if not enabled:
            return
        if self.path.exists():  # keep what the resumed checkpoint had seen, drop the rest
            kept = [r for r in read_metrics(self.path) if r["step"] <= resume_step]
            write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                log.warning("tensorboard is not installed: no TensorBoard scalars (pip install tensorboard)")
            else:
                self.writer = SummaryWriter(str(self.out_dir / "tensorboard"), purge_step=resume_step + 1)

    def _write(self, record: dict[str, Any], prefix: str) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if self.writer is not None:
            for key, value in record.items():
                if key not in ("step", "epoch", "kind") and isinstance(value, int | float):
                    self.writer.add_scalar(f"{prefix}/{key}", value, record["step"])

    def log_step(self, step: int, epoch: int, **scalars: float) -> None:
        """A training step: loss, lr, grad norm, throughput, ..."""
        if self.enabled:
            self._write({"kind": "train", "step": step, "epoch": epoch, **scalars}, "train")

    def log_validation(self, step: int, epoch: int, **scalars: float) -> None:
        """A validation (WER, CER, ...), then the curves PNG is redrawn."""
        if not self.enabled:
            return
        self._write({"kind": "dev", "step": step, "epoch": epoch, **scalars}, "dev")
        if self.writer is not None:
            self.writer.flush()
        try:
            plot_curves(self.path, self.out_dir / CURVES)
        except ImportError:
            log.warning("matplotlib is not installed: no %s", CURVES)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def plot_curves(metrics: str | Path, png: str | Path) -> None:
    """Draw training loss, dev WER/CER and learning rate against steps into ``png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics)
    train = [r for r in records if r["kind"] == "train"]
    dev = [r for r in records if r["kind"] == "dev"]
    fig, (ax_loss, ax_wer, ax_lr) = plt.subplots(1, 3, figsize=(15, 4))
    ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train], lw=0.8)
    ax_loss.set(title="training CTC loss", xlabel="step", yscale="log")
    for key in ("wer", "cer"):
        ax_wer.plot([r["step"] for r in dev], [100 * r[key] for r in dev], marker="o", label=key.upper())
    for key in sorted({k for r in dev for k in r if k.startswith("wer/")}):  # each dev set's WER
        points = [(r["step"], 100 * r[key]) for r in dev if key in r]
        ax_wer.plot(*zip(*points, strict=True), ls="--", marker=".", label=f"WER {key[4:]}")
    ax_wer.set(title="dev (greedy)", xlabel="step", ylabel="%")
    ax_wer.legend()
    ax_lr.plot([r["step"] for r in train], [r["lr"] for r in train])
    ax_lr.set(title="learning rate", xlabel="step")
    for ax in (ax_loss, ax_wer, ax_lr):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(png) as tmp:
        fig.savefig(tmp, dpi=80)
    plt.close(fig)
