"""The training loop: CTC loss, AdamW, warmup + cosine decay, clipping, per-epoch validation.

Single process::

    asr train --train.train_manifest train.jsonl --train.dev_manifest dev.jsonl --train.out_dir exp/m

Several processes (one per GPU, or gloo on CPU) run the same code under torchrun::

    torchrun --nproc_per_node=N -m asr.cli train ...

Only rank 0 writes files. ``out_dir`` receives ``last.pt`` (resumed automatically when
present), ``best.pt`` (lowest dev WER), ``train.log`` and ``config.yaml``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from pathlib import Path

import torch
import torch.distributed as dist
import yaml
from tqdm import tqdm

from asr.augment import WaveformAugment
from asr.checkpoint import LoadedModel, build, read_checkpoint, rng_state, save_checkpoint, set_rng_state
from asr.config import AugmentConfig, ExperimentConfig, TrainConfig
from asr.data import AudioDataset, BucketingBatchSampler, Utterance, collate, read_manifest, total_hours
from asr.decoding import greedy_decode
from asr.features import spec_augment
from asr.metrics import Scores, score

log = logging.getLogger("asr.train")


@dataclasses.dataclass
class Progress:
    """Where training stands; saved in checkpoints."""

    step: int = 0
    epoch: int = 0  # epochs completed
    elapsed: float = 0.0  # seconds of training so far (validation excluded)
    best_wer: float = math.inf
    skipped: int = 0  # batches whose loss was NaN or infinite (no update made)


def lr_at(step: int, fraction_done: float, cfg: TrainConfig) -> float:
    """Linear warmup over ``warmup_steps``, then cosine decay to ``lr * min_lr_ratio``
    as ``fraction_done`` goes from 0 to 1."""
    warm = min(1.0, (step + 1) / max(1, cfg.warmup_steps))
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, fraction_done)))
    return cfg.lr * warm * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cosine)


def _rank() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def setup_distributed(device: str) -> torch.device:
    """Initialise torch.distributed when launched by torchrun; pick this process's device."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    if device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device(device)


class ShardedBatches(torch.utils.data.Sampler[list[int]]):
    """This rank's share of a :class:`BucketingBatchSampler`'s batches (equal counts per rank)."""

    def __init__(self, sampler: BucketingBatchSampler) -> None:
        self.sampler = sampler

    def __iter__(self):
        rank, world = _rank()
        batches = self.sampler.batches()
        usable = len(batches) // world * world
        return iter(batches[rank:usable:world])

    def __len__(self) -> int:
        return len(self.sampler) // _rank()[1]


def make_loader(manifest: str, loaded: LoadedModel, cfg: TrainConfig, train: bool) -> torch.utils.data.DataLoader:
    utts = read_manifest(manifest)
    if train:
        kept = [u for u in utts if u.duration <= cfg.max_duration]
        if len(kept) < len(utts):
            log.info(
                "dropped %d utterances longer than %.1f s from %s", len(utts) - len(kept), cfg.max_duration, manifest
            )
        utts = kept
    log.info("%s: %d utterances, %.2f hours", manifest, len(utts), total_hours(utts))
    sampler = BucketingBatchSampler(
        [u.duration for u in utts], max(cfg.batch_seconds, max(u.duration for u in utts)), shuffle=train, seed=cfg.seed
    )
    rate = loaded.config.features.sample_rate
    augment = WaveformAugment(loaded.config.augment, rate, _noises(loaded.config.augment)) if train else None
    dataset = AudioDataset(utts, loaded.vocab, rate, augment if augment and augment.active else None)
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=ShardedBatches(sampler),
        collate_fn=collate,
        num_workers=cfg.num_workers,
        persistent_workers=cfg.num_workers > 0,
    )


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 natively (AVX512-BF16 or AMX); elsewhere bf16 autocast
    is emulated and many times slower than fp32 (seen: 30 s per step on an AVX2 EPYC)."""
    try:
        flags = Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """``fp32``, ``bf16`` or ``fp16`` for ``precision`` (``auto``: bf16 where the device runs it
    natively, else fp32)."""
    if precision not in ("fp32", "bf16", "fp16", "auto"):
        raise ValueError(f"unknown precision {precision!r} (fp32, bf16, fp16 or auto)")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp32"
    return "bf16" if device.type == "cpu" and cpu_has_native_bf16() else "fp32"


def _noises(cfg: AugmentConfig) -> list[Utterance]:
    return read_manifest(cfg.noise_manifest) if cfg.noise_prob > 0 and cfg.noise_manifest else []


def _autocast(device: torch.device, precision: str) -> torch.autocast:
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype, enabled=precision != "fp32")


def train_one_epoch(
    loaded: LoadedModel,
    model: torch.nn.Module,
    loader: torch.utils.data.DataLoader,
    optimizer: torch.optim.Optimizer,
    progress: Progress,
    cfg: ExperimentConfig,
    device: torch.device,
    total_steps: int,
    scaler: torch.amp.GradScaler,
) -> bool:
    """One pass over ``loader``; returns False when the time budget ran out mid-epoch."""
    tc = cfg.train
    ctc = torch.nn.CTCLoss(blank=loaded.vocab.blank, zero_infinity=True)
    model.train()
    rank, world = _rank()
    quiet = True if rank != 0 else None  # None: no bar when stderr is not a terminal (logs say it all)
    bar = tqdm(loader, desc=f"epoch {progress.epoch + 1}", disable=quiet, dynamic_ncols=True, mininterval=2)
    window_audio, window_start = 0.0, time.time()
    for batch in bar:
        start = time.time()
        budget = tc.max_minutes * 60
        done = max(progress.step / total_steps, progress.elapsed / budget if budget else 0.0)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(progress.step, done, tc)
        batch = batch.to(device)
        with torch.no_grad():
            warp = None
            if tc.vtlp > 0:  # one vocal-tract warp factor per utterance, uniform in 1 +- vtlp
                warp = 1 + tc.vtlp * (2 * torch.rand(batch.waveforms.shape[0]) - 1)
            feats, frames = loaded.features(batch.waveforms, batch.audio_lengths, warp)
            if tc.spec_augment:
                feats = spec_augment(feats, frames, cfg.spec_augment)
        with _autocast(device, tc.precision):
            log_probs, out_lengths = model(feats, frames)
        loss = ctc(log_probs.float().transpose(0, 1), batch.targets, out_lengths, batch.target_lengths)
        optimizer.zero_grad(set_to_none=True)
        finite = torch.isfinite(loss)
        if dist.is_initialized():  # every rank skips together, or DDP's all-reduce would hang
            dist.all_reduce(finite := finite.to(torch.int32), op=dist.ReduceOp.MIN)
        if not bool(finite):
            progress.skipped += 1
            log.warning("step %d: loss is %s, batch skipped (%d so far)", progress.step, loss.item(), progress.skipped)
            continue
        scaler.scale(loss).backward()  # fp16: loss scaling; otherwise a no-op
        scaler.unscale_(optimizer)
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        if not torch.isfinite(grad_norm):  # fp16 overflow, or a bad batch
            progress.skipped += 1
            log.warning("step %d: gradient norm is %s, update skipped", progress.step, float(grad_norm))
            optimizer.zero_grad(set_to_none=True)
            scaler.update()  # fp16: a smaller loss scale next time
            continue
        scaler.step(optimizer)
        scaler.update()
        progress.step += 1
        progress.elapsed += time.time() - start
        if dist.is_initialized():  # one clock for all ranks: same lr and the same last step
            clock = torch.tensor([progress.elapsed], device=device)
            dist.all_reduce(clock, op=dist.ReduceOp.MAX)
            progress.elapsed = float(clock)
        audio_seconds = float(batch.audio_lengths.sum()) / loaded.config.features.sample_rate * world
        window_audio += audio_seconds
        if progress.step % tc.log_every == 0:
            speed = window_audio / (time.time() - window_start)
            bar.set_postfix(
                loss=f"{loss.item():.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}", audio_s_per_s=f"{speed:.0f}"
            )
            log.info(
                "step %d epoch %d loss %.4f grad_norm %.2f lr %.2e audio-s/s %.0f",
                progress.step,
                progress.epoch + 1,
                loss.item(),
                float(grad_norm),
                optimizer.param_groups[0]["lr"],
                speed,
            )
            window_audio, window_start = 0.0, time.time()
        if budget and progress.elapsed >= budget:
            log.info("time budget of %.1f minutes reached at step %d", tc.max_minutes, progress.step)
            return False
    return True


@torch.no_grad()
def validate(
    loaded: LoadedModel, model: torch.nn.Module, loader: torch.utils.data.DataLoader, device: torch.device
) -> Scores:
    """Greedy WER/CER of ``model`` on ``loader`` (gathered over ranks)."""
    model.eval()
    refs, hyps = [], []
    text = {i: u.text for i, u in enumerate(loader.dataset.utts)}
    index = {u.id: i for i, u in enumerate(loader.dataset.utts)}
    for batch in loader:
        batch = batch.to(device)
        feats, frames = loaded.features(batch.waveforms, batch.audio_lengths)
        log_probs, out_lengths = model(feats, frames)
        hyps += greedy_decode(log_probs, out_lengths, loaded.vocab)
        refs += [text[index[i]] for i in batch.ids]
    if dist.is_initialized():
        gathered: list = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, (refs, hyps))
        refs = [r for rs, _ in gathered for r in rs]
        hyps = [h for _, hs in gathered for h in hs]
    return score(refs, hyps)


def _setup_logging(out_dir: Path, rank: int) -> None:
    handlers: list[logging.Handler] = [logging.StreamHandler()]
    if rank == 0:
        handlers.append(logging.FileHandler(out_dir / "train.log"))
    logging.basicConfig(
        level=logging.INFO if rank == 0 else logging.WARNING,
        handlers=handlers,
        force=True,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def train(cfg: ExperimentConfig) -> Path:
    """Train (or resume) the model described by ``cfg``; returns the path of ``best.pt``."""
    tc = cfg.train
    if not tc.train_manifest or not tc.dev_manifest:
        raise SystemExit("train needs --train.train_manifest and --train.dev_manifest")
    out_dir = Path(tc.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = setup_distributed(tc.device)
    rank, world = _rank()
    _setup_logging(out_dir, rank)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(tc, precision=resolve_precision(tc.precision, device)))
    tc = cfg.train
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    torch.manual_seed(tc.seed)
    loaded = build(cfg)
    loaded.model.to(device)
    loaded.features.to(device)
    train_loader = make_loader(tc.train_manifest, loaded, tc, train=True)
    dev_loader = make_loader(tc.dev_manifest, loaded, tc, train=False)
    optimizer = torch.optim.AdamW(loaded.model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    scaler = torch.amp.GradScaler(device.type, enabled=tc.precision == "fp16")
    progress = Progress()
    last = out_dir / "last.pt"
    if last.exists():
        state = read_checkpoint(last)
        if state["config"]["model"] != dataclasses.asdict(cfg.model):
            raise SystemExit(f"{last}: was trained with a different model config; use another out_dir")
        loaded.model.load_state_dict(state["model"])
        loaded.features.load_state_dict(state["features"])
        optimizer.load_state_dict(state["optimizer"])
        if "scaler" in state:
            scaler.load_state_dict(state["scaler"])
        progress = Progress(**state["progress"])
        set_rng_state(state["rng"])
        log.info("resumed from %s at epoch %d, step %d", last, progress.epoch, progress.step)
    elif cfg.features.normalize == "global":
        _fit_global_stats(loaded, train_loader, device)
    if rank == 0:
        (out_dir / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
        log.info("config: %s", cfg)
        log.info("model: %.2f M parameters, %s", loaded.model.num_parameters() / 1e6, device)
    model = loaded.model
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    total_steps = max(1, len(train_loader) * tc.epochs)
    out_of_time = tc.max_minutes > 0 and progress.elapsed >= tc.max_minutes * 60
    while progress.epoch < tc.epochs and not out_of_time:
        train_loader.batch_sampler.sampler.set_epoch(progress.epoch)
        train_loader.batch_sampler.sampler.sorted_first = tc.sortagrad and progress.epoch == 0
        out_of_time = not train_one_epoch(
            loaded, model, train_loader, optimizer, progress, cfg, device, total_steps, scaler
        )
        progress.epoch += 1
        scores = validate(loaded, model, dev_loader, device)
        log.info("epoch %d dev: %s", progress.epoch, scores.summary())
        if rank == 0:
            extra = {"optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(), "rng": rng_state()}
            if scores.wer <= progress.best_wer:
                progress.best_wer = scores.wer
                save_checkpoint(
                    out_dir / "best.pt", cfg, model, loaded.features, progress=dataclasses.asdict(progress), **extra
                )
            save_checkpoint(last, cfg, model, loaded.features, progress=dataclasses.asdict(progress), **extra)
    if dist.is_initialized():
        dist.barrier()
    log.info(
        "done: %d epochs, %d steps, %.1f min training, best dev WER %.2f%%",
        progress.epoch,
        progress.step,
        progress.elapsed / 60,
        100 * progress.best_wer,
    )
    return out_dir / "best.pt"


def _fit_global_stats(
    loaded: LoadedModel, loader: torch.utils.data.DataLoader, device: torch.device, max_batches: int = 20
) -> None:
    batches = []
    for i, batch in enumerate(loader):
        if i == max_batches:
            break
        batches.append((batch.waveforms.to(device), batch.audio_lengths.to(device)))
    loaded.features.fit_global_stats(batches)
    log.info("global CMVN statistics from %d batches", len(batches))
