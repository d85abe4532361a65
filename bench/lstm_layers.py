"""Why asr's BiLSTM layer is two unidirectional nn.LSTMs with in-length reversal.

Runs forward + backward passes of a 3-layer BiLSTM stack (the demo model's shape: 640-dim
conv output, 256 units per direction, LayerNorm between layers) over batches of ~60 s of
audio with the length spread of real utterances, three ways:

* ``packed``: ``nn.LSTM(bidirectional=True)`` over a ``PackedSequence`` (exact, the
  textbook way);
* ``padded``: ``nn.LSTM(bidirectional=True)`` over the zero-padded batch (fast, but the
  backward direction starts in the padding, so a sequence's output depends on its batch);
* ``asr``: :class:`asr.model.RecurrentLayer`, forward LSTM plus a backward LSTM run over each
  sequence reversed within its own length (exact and unpacked).

For each, in fp32 and bf16 autocast: audio-seconds per second (output frames are 40 ms)
and the largest output difference between a sequence alone and inside a padded batch.
Prints a Markdown table and writes it into bench/RESULTS.md (its own section).

    python bench/lstm_layers.py [--steps 20] [--threads 0]
"""

from __future__ import annotations

import argparse
import math
import random
import time
from collections.abc import Callable
from pathlib import Path

import torch
from results import RESULTS, publish
from torch import nn

from asr.model import RecurrentLayer
from asr.train import cpu_has_native_bf16

FRAME_S = 0.04  # one output frame after the 4x conv subsampling of 10 ms hops
INPUT, HIDDEN, LAYERS = 640, 256, 3
BATCH_S = 60.0
SECTION = "## BiLSTM layer implementations (bench/lstm_layers.py)"


class PackedStack(nn.Module):
    """Bidirectional nn.LSTM layers; ``packed`` packs each layer's input, else runs padded."""

    def __init__(self, packed: bool) -> None:
        super().__init__()
        self.packed = packed
        sizes = [INPUT] + [2 * HIDDEN] * (LAYERS - 1)
        self.lstms = nn.ModuleList(nn.LSTM(s, HIDDEN, batch_first=True, bidirectional=True) for s in sizes)
        self.norms = nn.ModuleList(nn.LayerNorm(2 * HIDDEN) for _ in sizes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        for lstm, norm in zip(self.lstms, self.norms, strict=True):
            if self.packed:
                packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
                x, _ = nn.utils.rnn.pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=x.shape[1])
            else:
                x, _ = lstm(x)
            x = norm(x)
        return x


class AsrStack(nn.Module):
    """The same stack built from :class:`asr.model.RecurrentLayer`."""

    def __init__(self) -> None:
        super().__init__()
        sizes = [INPUT] + [2 * HIDDEN] * (LAYERS - 1)
        self.lstms = nn.ModuleList(RecurrentLayer("lstm", s, HIDDEN, bidirectional=True) for s in sizes)
        self.norms = nn.ModuleList(nn.LayerNorm(2 * HIDDEN) for _ in sizes)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        for lstm, norm in zip(self.lstms, self.norms, strict=True):
            x = norm(lstm(x, lengths))
        return x


def make_batches(n: int, seed: int = 0) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``n`` batches of about :data:`BATCH_S` seconds, utterances 1-8 s (log-uniform),
    grouped by length as the bucketing sampler does: ``(x (B, T, INPUT), lengths (B,))``."""
    rng = random.Random(seed)
    durations = sorted(math.exp(rng.uniform(math.log(1.0), math.log(8.0))) for _ in range(int(n * BATCH_S)))
    batches, current = [], []
    for d in durations:
        current.append(d)
        if sum(current) >= BATCH_S:
            batches.append(current)
            current = []
    picked = rng.sample(batches, min(n, len(batches)))
    out = []
    for durs in picked:
        lengths = torch.tensor([max(1, round(d / FRAME_S)) for d in durs])
        out.append((torch.randn(len(durs), int(lengths.max()), INPUT), lengths))
    return out


def throughput(model: nn.Module, batches: list, bf16: bool) -> float:
    """Audio-seconds per second of forward + backward over ``batches`` (after one warm-up)."""

    def step(x: torch.Tensor, lengths: torch.Tensor) -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = model(x, lengths)
        y.float().square().mean().backward()

    step(*batches[0])
    start = time.perf_counter()
    for x, lengths in batches:
        step(x, lengths)
    audio = sum(float(lengths.sum()) * FRAME_S for _, lengths in batches)
    return audio / (time.perf_counter() - start)


@torch.no_grad()
def padding_leak(model: nn.Module) -> float:
    """Largest |output| difference for a 50-frame sequence alone vs padded to 200 frames."""
    torch.manual_seed(1)
    x = torch.randn(1, 50, INPUT)
    alone = model(x, torch.tensor([50]))
    padded = model(torch.cat([x, torch.zeros(1, 150, INPUT)], 1), torch.tensor([50]))[:, :50]
    return float((alone - padded).abs().max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="batches timed per variant")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    batches = make_batches(args.steps)
    variants: dict[str, Callable[[], nn.Module]] = {
        "packed": lambda: PackedStack(packed=True),
        "padded": lambda: PackedStack(packed=False),
        "asr": AsrStack,
    }
    rows, speeds = [], {}
    for name, build in variants.items():
        model = build()
        leak = padding_leak(model.eval())
        model.train()
        for bf16 in (False, True) if cpu_has_native_bf16() else (False,):  # emulated bf16: ~50x slower
            speeds[name, bf16] = throughput(model, batches, bf16)
            rows.append((name, "bf16" if bf16 else "fp32", speeds[name, bf16], leak))
            print(f"{name:7s} {'bf16' if bf16 else 'fp32'}: {speeds[name, bf16]:7.0f} audio-s/s", flush=True)
    base = speeds["packed", False]
    frames = sum(int(lengths.sum()) for _, lengths in batches)
    padded_frames = sum(x.shape[0] * x.shape[1] for x, _ in batches)
    caption = (
        f"{LAYERS}-layer BiLSTM stack ({INPUT} → {HIDDEN} per direction), forward + backward, "
        f"{len(batches)} batches of ~{BATCH_S:.0f} s (1-8 s utterances, length-bucketed, "
        f"{100 * (1 - frames / padded_frames):.1f} % padding), {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}."
    )
    header = ["layer", "precision", "audio-s/s", "vs packed fp32", "padding changes the output by"]
    table = [
        [name, precision, f"{speed:.0f}", f"{speed / base:.2f}×", f"{leak:.1e}"]
        for name, precision, speed, leak in rows
    ]
    publish(SECTION, caption, header, table, args.out)


if __name__ == "__main__":
    main()
