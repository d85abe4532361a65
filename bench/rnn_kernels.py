"""The two BiLSTM kernels on a CUDA GPU: cuDNN over packed sequences against the padded path.

Trains the DeepSpeech2-size model (conv front-end, 5 BiLSTM layers of 1024 units per
direction, ``asr.model.AcousticModel``) with ``asr.train.train_step`` in bf16 autocast for
``--seconds`` per kernel (``asr.model.RecurrentLayer.kernel``: ``packed``, asr's default on
CUDA, and ``padded``, its CPU path), on the same synthetic batches: random 16 kHz waveforms
of 1-16 s (log-uniform), length-bucketed to ``--batch-seconds`` of audio, random targets at
15 characters per second. Prints audio-seconds per second and peak GPU memory, and writes
the table into bench/RESULTS.md (its own section). Needs a CUDA device; exits 2 without one.

    python bench/rnn_kernels.py [--seconds 180] [--batch-seconds 480]
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import random
import sys
import time
from pathlib import Path

import torch
from results import RESULTS, publish

from asr.checkpoint import build
from asr.config import ExperimentConfig, ModelConfig, TrainConfig
from asr.data import Batch
from asr.train import train_step

SECTION = "## BiLSTM kernels on a GPU: cuDNN packed vs padded (bench/rnn_kernels.py)"
RATE = 16000
DS2 = ModelConfig(hidden_size=1024, num_layers=5, dropout=0.0)


def make_batches(n: int, batch_seconds: float, vocab_size: int, seed: int = 0) -> list[Batch]:
    """``n`` length-bucketed batches of random audio (1-16 s utterances) and targets."""
    rng = random.Random(seed)
    durations = sorted(math.exp(rng.uniform(0.0, math.log(16.0))) for _ in range(int(n * batch_seconds / 4)))
    groups, current = [], []
    for d in durations:
        if current and (len(current) + 1) * d > batch_seconds:
            groups.append(current)
            current = []
        current.append(d)
    batches = []
    for durs in rng.sample(groups, min(n, len(groups))):
        lengths = torch.tensor([round(d * RATE) for d in durs])
        labels = torch.tensor([max(1, round(15 * d)) for d in durs])
        batches.append(
            Batch(
                waveforms=0.1 * torch.randn(len(durs), int(lengths.max())),
                audio_lengths=lengths,
                targets=torch.randint(1, vocab_size, (len(durs), int(labels.max()))),
                target_lengths=labels,
                ids=[str(i) for i in range(len(durs))],
            )
        )
    return batches


def run(kernel: str, batches: list[Batch], seconds: float) -> tuple[float, float, int]:
    """Audio-s/s, peak GPU GiB and steps of ``seconds`` of bf16 training with ``kernel``."""
    device = torch.device("cuda")
    cfg = ExperimentConfig(model=DS2, train=TrainConfig(precision="bf16"))
    torch.manual_seed(0)
    loaded = build(cfg)
    loaded = dataclasses.replace(loaded, model=loaded.model.to(device), features=loaded.features.to(device))
    for layer in loaded.model.rnns:
        layer.kernel = kernel
    optimizer = torch.optim.AdamW(loaded.model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=False)
    for batch in batches[:2]:  # warm-up: cuDNN plans, allocator
        train_step(loaded, loaded.model, batch, optimizer, scaler, cfg, device)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    audio, steps, start = 0.0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        batch = batches[steps % len(batches)]
        train_step(loaded, loaded.model, batch, optimizer, scaler, cfg, device)
        audio += float(batch.audio_lengths.sum()) / RATE
        steps += 1
        if steps % 10 == 0:
            torch.cuda.synchronize()
    torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return audio / elapsed, torch.cuda.max_memory_allocated() / 2**30, steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="training time per kernel")
    parser.add_argument("--batch-seconds", type=float, default=480.0, help="audio per batch")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench/rnn_kernels.py needs a CUDA device; none here", file=sys.stderr)
        return 2
    batches = make_batches(40, args.batch_seconds, 29)
    rows = []
    for kernel in ("packed", "padded"):
        speed, memory, steps = run(kernel, batches, args.seconds)
        rows.append((kernel, speed, memory, steps))
        print(f"{kernel}: {speed:.0f} audio-s/s, {memory:.1f} GiB peak, {steps} steps", flush=True)
    base = rows[1][1]
    params = build(ExperimentConfig(model=DS2)).model.num_parameters() / 1e6
    caption = (
        f"DeepSpeech2-size model (5 x 1024 BiLSTM, {params:.1f} M parameters), bf16 autocast, "
        f"`asr.train.train_step`, {args.seconds:.0f} s per kernel, batches of {args.batch_seconds:.0f} s "
        f"of 1-16 s utterances; {torch.cuda.get_device_name()}, torch {torch.__version__}, "
        f"cuDNN {torch.backends.cudnn.version()}."
    )
    header = ["kernel", "audio-s/s", "vs padded", "peak GPU memory", "steps"]
    table = [[k, f"{v:.0f}", f"{v / base:.2f}×", f"{m:.1f} GiB", str(n)] for k, v, m, n in rows]
    publish(SECTION, caption, header, table, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
