"""How well the training loop uses this machine (bench/training).

Measured in one run, on the same utterances of a training manifest (default: the demo
corpus, so run ``make demo`` first), in fp32, for the recipe config's model and for a
DeepSpeech2-size variant of it (5 BiLSTM layers of 800 units):

* (a) the peak FLOP/s of torch's sgemm (square fp32 matmuls);
* (b) the model's training FLOP/s through the real data pipeline: ``asr.train``'s loader
  (length bucketing, loader workers) feeding ``asr.train.train_step``;
* (c) the same batches pre-loaded in memory (no reading, decoding or collating);
* a naive loop: batches of a fixed number of random utterances (no length bucketing),
  the same mean audio per batch, pre-loaded, so it differs from (c) only by its padding.

Reported: model FLOP utilization (b / a), input-pipeline overhead (1 - b / c), the share
of padded frames, and audio-seconds trained per second (also the naive loop's).

Training FLOPs per batch: the LSTMs analytically (``2 * 4H * (D + H)`` per frame and
direction for the forward pass, 3x that with the backward pass: torch's flop counter does
not see the fused CPU LSTM), the rest (convolutions, head) by torch's flop counter; all on
the padded frames the hardware computes.

    python bench/training.py [--manifest data/synthetic-demo/train.jsonl] [--config recipes/synthetic/conf/bilstm.yaml]
                             [--batches 24] [--ds2-batches 6] [--repeats 2] [--workers 0] [--threads 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import time
from pathlib import Path

import torch
import yaml
from results import RESULTS, write_section
from torch.utils.flop_counter import FlopCounterMode

from asr.checkpoint import build
from asr.config import ExperimentConfig, from_dict
from asr.data import collate, padding_fraction
from asr.features import num_frames
from asr.model import ConvFrontEnd, output_lengths
from asr.train import make_loader, make_optimizer, train_step

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Training throughput and model FLOP utilization (bench/training.py)"
WARMUP = 3


def sgemm_peak(size: int = 2048, seconds: float = 3.0) -> float:
    """FLOP/s of fp32 ``size x size`` matmuls (best of repeated timings)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    for _ in range(3):
        a @ b
    best, deadline = 0.0, time.time() + seconds
    while time.time() < deadline:
        start = time.perf_counter()
        a @ b
        best = max(best, 2 * size**3 / (time.perf_counter() - start))
    return best


def lstm_flops(cfg: ExperimentConfig, frames: int, batch: int) -> float:
    """Training FLOPs of the LSTM stack for ``batch`` sequences of ``frames`` LSTM frames."""
    m = cfg.model
    directions = 2 if m.bidirectional else 1
    size = ConvFrontEnd(cfg.features.n_mels, m).output_size
    total = 0.0
    for _ in range(m.num_layers):
        total += directions * 2 * 4 * m.hidden_size * (size + m.hidden_size) * frames * batch
        size = m.hidden_size * directions
    return 3 * total


def batch_flops(cfg: ExperimentConfig, batch: int, samples: int) -> float:
    """Training FLOPs of one padded batch of ``batch`` utterances of ``samples`` samples."""
    feat_frames = int(num_frames(samples, cfg.features))
    lstm_frames = int(output_lengths(torch.tensor(feat_frames), cfg.model)) // cfg.model.output_frames
    probe = dataclasses.replace(cfg.model, num_layers=1)  # conv + head, and one LSTM layer, counted apart
    model = build(dataclasses.replace(cfg, model=probe)).model
    feats = torch.randn(batch, feat_frames, cfg.features.n_mels)
    with FlopCounterMode(display=False) as counter:
        log_probs, _ = model(feats, torch.full((batch,), feat_frames))
        log_probs.sum().backward()
    return counter.get_total_flops() + lstm_flops(cfg, lstm_frames, batch)


def timed(name: str, cfg: ExperimentConfig, batches, rate: int) -> dict:
    """Train on ``batches`` (an iterable of Batch); time all but the first WARMUP steps."""
    torch.manual_seed(0)
    loaded = build(cfg)
    optimizer = make_optimizer(loaded.model, cfg.train, torch.device("cpu"))
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    shapes, audio = [], 0.0
    start = time.perf_counter()
    for i, batch in enumerate(batches):
        if i == WARMUP:
            start = time.perf_counter()
        train_step(loaded, loaded.model, batch, optimizer, scaler, cfg, torch.device("cpu"))
        if i >= WARMUP:
            shapes.append(tuple(batch.waveforms.shape))
            audio += float(batch.audio_lengths.sum()) / rate
    seconds = time.perf_counter() - start
    flops = sum(batch_flops(cfg, b, samples) for b, samples in shapes)
    padded = sum(b * samples for b, samples in shapes) / rate
    return {"name": name, "flops": flops / seconds, "audio_s_per_s": audio / seconds, "padding": 1 - audio / padded}


def measure(cfg: ExperimentConfig, manifest: Path, batches: int, repeats: int, peak: float) -> dict:
    """The three loops on one model; the figures of the summary."""
    rate = cfg.features.sample_rate
    loaded = build(cfg)
    n = batches + WARMUP
    loader = make_loader(str(manifest), loaded, cfg.train, train=True)
    loader.batch_sampler.set_position(epoch=1)
    dataset = loader.dataset

    def pipeline():  # (b): the real loader, its first n batches
        for i, batch in enumerate(loader):
            if i == n:
                return
            yield batch

    plan = list(loader.batch_sampler)[:n]
    preloaded = [collate([dataset[key] for key in keys]) for keys in plan]  # (c)
    per_batch = round(sum(len(b) for b in plan) / len(plan))
    rng = random.Random(0)
    naive = [collate([dataset[i] for i in rng.sample(range(len(dataset)), per_batch)]) for _ in range(n)]
    runs: dict[str, list[dict]] = {}
    for _ in range(repeats):  # interleaved, best of each: steadier than one long run
        for name, source in (("pipeline", pipeline), ("pre-loaded", lambda: preloaded),
                             ("naive (random batches)", lambda: naive)):  # fmt: skip
            runs.setdefault(name, []).append(timed(name, cfg, source(), rate))
    b, c, naive_row = (max(r, key=lambda row: row["flops"]) for r in runs.values())
    m = cfg.model
    return {
        "model": f"{m.num_layers}x{m.hidden_size} {'BiLSTM' if m.bidirectional else 'LSTM'}, "
        f"{loaded.model.num_parameters() / 1e6:.1f} M",
        "rows": (b, c, naive_row),
        "mfu": b["flops"] / peak,
        "overhead": 1 - b["flops"] / c["flops"],
        "padding": padding_fraction(loader.batch_sampler.sampler.batches(), [u.duration for u in dataset.utts]),
        "speedup": b["audio_s_per_s"] / naive_row["audio_s_per_s"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--manifest", type=Path, default=ROOT / "data/synthetic-demo/train.jsonl")
    parser.add_argument("--config", type=Path, default=ROOT / "recipes/synthetic/conf/bilstm.yaml")
    parser.add_argument("--batches", type=int, default=24, help="timed batches per run (after 3 warm-up)")
    parser.add_argument("--ds2-batches", type=int, default=6, help="the same for the DeepSpeech2-size model (0: skip)")
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per loop, interleaved; the best counts")
    parser.add_argument("--workers", type=int, default=0, help="loader worker processes (train.num_workers)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if not args.manifest.is_file():
        raise SystemExit(f"{args.manifest}: no such manifest (run `make demo` first, or pass --manifest)")
    data = yaml.safe_load(args.config.read_text())
    data.setdefault("train", {}).update(train_manifest=str(args.manifest), dev_manifest=str(args.manifest),
                                        precision="fp32", spec_augment=False, num_workers=args.workers)  # fmt: skip
    cfg = from_dict(ExperimentConfig, data)
    peak = sgemm_peak()
    results = [measure(cfg, args.manifest, args.batches, args.repeats, peak)]
    if args.ds2_batches:
        ds2 = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, hidden_size=800, num_layers=5))
        results.append(measure(ds2, args.manifest, args.ds2_batches, args.repeats, peak))
    lines = [
        f"{args.manifest.parent.name} training set, config {args.config.name}, fp32, "
        f"{torch.get_num_threads()} threads, {cfg.train.batch_seconds:.0f} s batches, {args.workers} loader "
        f"worker(s); each row the best of {args.repeats} interleaved runs; "
        f"sgemm peak (a) **{peak / 1e9:.1f} GFLOP/s**.",
        "",
        "| model | loop | GFLOP/s | FLOP utilization | padded frames | audio-s/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        for row in r["rows"]:
            lines.append(f"| {r['model']} | {row['name']} | {row['flops'] / 1e9:.1f} | {row['flops'] / peak:.2f} "
                         f"| {100 * row['padding']:.1f} % | {row['audio_s_per_s']:.1f} |")  # fmt: skip
    lines += ["", "| model | FLOP utilization (b / a) | input-pipeline overhead (1 - b / c) | padding (epoch) "
              "| vs naive loop (audio-s/s) |", "|---|---:|---:|---:|---:|"]  # fmt: skip
    for r in results:
        lines.append(f"| {r['model']} | {r['mfu']:.2f} | {100 * r['overhead']:.1f} % | {100 * r['padding']:.1f} % "
                     f"| {r['speedup']:.2f}x |")  # fmt: skip
    table = "\n".join(lines)
    print(table)
    write_section(SECTION, table, RESULTS)
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
