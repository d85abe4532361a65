"""The training loop: CTC loss, AdamW, warmup + cosine decay, clipping, validation at every
epoch end (and every ``eval_every`` steps) on one or several dev manifests.

Single process::

    asr train --train.train_manifest train.jsonl --train.dev_manifest dev.jsonl --train.out_dir exp/m

Several processes (one per GPU, or gloo on CPU) run the same code under torchrun; NCCL on
GPUs, gloo on CPUs::

    torchrun --nproc_per_node=N -m asr.cli train ...
    torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=HOST:29500 -m asr.cli train ...

Only rank 0 writes files. ``out_dir`` receives ``step-<step>.pt`` checkpoints (the last
``keep_last``, written every ``save_every`` steps, after every validation and at every epoch
end), ``last.pt`` (the newest, resumed automatically, also by torchrun's restarts), ``best.pt``
(lowest pooled dev CER, or WER: ``train.best_metric``),
``train.log``, ``metrics.jsonl``, ``curves.png``, ``tensorboard/`` and ``config.yaml``.

A checkpoint holds the model, optimizer, gradient scaler, progress (step, epoch, batches
done in the epoch, elapsed time: the learning-rate schedule is a function of these) and
every rank's random states, so a run resumed mid-epoch continues on the batches, the
augmentation and the dropout masks the uninterrupted run would have used.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
import yaml
from tqdm import tqdm

from asr.augment import WaveformAugment
from asr.checkpoint import (
    CheckpointError,
    LoadedModel,
    build,
    init_weights,
    read_checkpoint,
    resolve_device,
    rng_state,
    save_training_checkpoint,
    set_rng_state,
)
from asr.config import AugmentConfig, ConfigError, ExperimentConfig, ModelConfig, TrainConfig, from_dict
from asr.data import (
    Batch,
    DistributedBatchSampler,
    ManifestError,
    Utterance,
    bad_lines_report,
    check_manifest,
    collate,
    read_manifest,
)
from asr.decoding import greedy_decode
from asr.features import spec_augment
from asr.metrics import Scores, score
from asr.monitor import TrainingMonitor
from asr.shards import is_shard_index, manifest_sources, read_shard_index, training_dataset
from asr.text import language
from asr.units import build_units, vocabulary_of

log = logging.getLogger("asr.train")


@dataclasses.dataclass
class Progress:
    """Where training stands; saved in checkpoints."""

    step: int = 0
    epoch: int = 0  # epochs completed
    batch_in_epoch: int = 0  # batches of the current epoch each rank has consumed
    elapsed: float = 0.0  # seconds of training so far (validation excluded)
    best_score: float = math.inf  # lowest pooled dev ``train.best_metric`` so far (the score of best.pt)
    skipped: int = 0  # batches whose loss was NaN or infinite (no update made)


@dataclass
class StepResult:
    loss: float  # CTC loss per target token, averaged over the utterances of the global batch
    grad_norm: float
    utterances: int  # in the global batch


def _progress_fields(saved: dict, path: Path, best_metric: str) -> dict:
    """``saved`` (a checkpoint's progress) for :class:`Progress`: checkpoints written before
    ``train.best_metric`` existed hold ``best_wer``, a best WER, kept only when WER picks best.pt."""
    fields = dict(saved)
    if "best_wer" in fields:
        old = fields.pop("best_wer")
        fields.setdefault("best_score", old if best_metric == "wer" else math.inf)
        if best_metric != "wer":
            log.warning("%s: best.pt was chosen by dev WER; from here on by %s", path, best_metric.upper())
    return fields


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
    device = resolve_device(device)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device == "cuda" else "gloo")
    if device == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return torch.device("cuda", local)
    return torch.device(device)


def make_loader(manifest: str, loaded: LoadedModel, cfg: TrainConfig, train: bool) -> torch.utils.data.DataLoader:
    """A loader over this rank's share of ``manifest`` (a JSONL manifest, several separated
    by commas, or a shard directory written by ``asr shards``), bucketed by duration
    (training: shuffled, long utterances dropped, waveform augmentation, and each
    manifest's utterances as often per epoch as its ``cfg.mix_weights`` weight)."""
    rate = loaded.config.features.sample_rate
    augment = WaveformAugment(loaded.config.augment, rate, _noises(loaded.config.augment)) if train else None
    mix = mix_weights(cfg.mix_weights, len(manifest_sources(manifest))) if train else None
    dataset, weights = training_dataset(
        manifest,
        loaded.vocab,
        rate,
        read=lambda m: _checked_manifest(m, loaded, cfg),
        weights=mix,
        max_duration=cfg.max_duration if train else math.inf,
        transform=augment if augment and augment.active else None,
        language=loaded.config.text.language,
    )
    uniform = set(weights) == {1.0}
    plan = dataset.batch_plan(cfg.batch_seconds, train, cfg.seed, None if uniform else weights, cfg.shuffle_buffer)
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=DistributedBatchSampler(plan, *_rank(), even=train),
        collate_fn=collate,
        num_workers=cfg.num_workers,
        persistent_workers=cfg.num_workers > 0,
        generator=torch.Generator().manual_seed(cfg.seed),  # workers' seeds: not from the global generator
    )


def mix_weights(text: str, parts: int) -> list[float]:
    """``train.mix_weights`` (``"1,2"``: one per training manifest; empty: all 1) as floats."""
    if not text:
        return [1.0] * parts
    try:
        weights = [float(w) for w in text.split(",")]
    except ValueError:
        raise ConfigError(f"train.mix_weights {text!r}: not a comma-separated list of numbers") from None
    if len(weights) != parts or min(weights) < 0 or max(weights) == 0:
        raise ConfigError(f"train.mix_weights {text!r}: needs {parts} weights (one per training manifest), >= 0")
    return weights


def _checked_manifest(manifest: str, loaded: LoadedModel, cfg: TrainConfig) -> list[Utterance]:
    """The good utterances of ``manifest``; a :class:`ManifestError` listing the bad lines
    unless ``cfg.skip_bad_lines``, which logs how many were skipped."""
    utts, bad = check_manifest(manifest, loaded.vocab, language=loaded.config.text.language)
    if bad and not (cfg.skip_bad_lines and utts):
        hint = "\n(--train.skip_bad_lines true trains on the rest)" if utts else ""
        raise ManifestError(bad_lines_report(manifest, bad, len(utts)) + hint)
    if bad:
        log.warning("skipped %s", bad_lines_report(manifest, bad, len(utts)))
    return utts


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


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW; the fused kernel (one pass over all parameters) on CPU and CUDA."""
    fused = device.type in ("cpu", "cuda")
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, fused=fused)


def _noises(cfg: AugmentConfig) -> list[Utterance]:
    return read_manifest(cfg.noise_manifest) if cfg.noise_prob > 0 and cfg.noise_manifest else []


def _autocast(device: torch.device, precision: str) -> torch.autocast:
    dtype = torch.float16 if precision == "fp16" else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype, enabled=precision != "fp32")


def train_step(
    loaded: LoadedModel,
    model: torch.nn.Module,
    batch: Batch,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    cfg: ExperimentConfig,
    device: torch.device,
    generator: torch.Generator | None = None,
) -> StepResult | None:
    """One update on this rank's ``batch``; None (no update) when the loss or the gradient
    is not finite. ``generator`` drives VTLP and SpecAugment.

    The loss is each utterance's CTC loss divided by its target length (``CTCLoss``'s
    ``"mean"``), averaged over the *global* batch: the sum on each rank is divided by the
    all-reduced utterance count, and DDP averages gradients over ranks, so N processes on
    a global batch compute the gradients of one process on all of it.
    """
    tc = cfg.train
    batch = batch.to(device)
    with torch.no_grad():
        warp = None
        if tc.vtlp > 0:  # one vocal-tract warp factor per utterance, uniform in 1 +- vtlp
            warp = 1 + tc.vtlp * (2 * torch.rand(batch.waveforms.shape[0], generator=generator) - 1)
        feats, frames = loaded.features(batch.waveforms, batch.audio_lengths, warp)
        if tc.spec_augment:
            feats = spec_augment(feats, frames, cfg.spec_augment, generator)
    with _autocast(device, tc.precision):
        log_probs, out_lengths = model(feats, frames)
    losses = torch.nn.functional.ctc_loss(
        log_probs.float().transpose(0, 1),
        batch.targets,
        out_lengths,
        batch.target_lengths,
        blank=loaded.vocab.blank,
        reduction="none",
        zero_infinity=True,
    )
    loss_sum = (losses / batch.target_lengths.clamp(min=1)).sum()
    # one all-reduce: [non-finite ranks, utterances, loss sum] over the global batch
    bad = (~torch.isfinite(loss_sum)).float()
    stats = torch.stack([bad, loss_sum.new_tensor(float(len(batch.ids))), loss_sum.detach()])
    world = 1
    if dist.is_initialized():  # every rank skips together, or DDP's all-reduce would hang
        dist.all_reduce(stats)
        world = dist.get_world_size()
    optimizer.zero_grad(set_to_none=True)
    if stats[0] > 0:
        return None
    utterances = int(stats[1])
    scaler.scale(loss_sum * (world / utterances)).backward()  # fp16: loss scaling; otherwise a no-op
    scaler.unscale_(optimizer)
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
    if not torch.isfinite(grad_norm):  # fp16 overflow, or a bad batch
        optimizer.zero_grad(set_to_none=True)
        scaler.update()  # fp16: a smaller loss scale next time
        return None
    scaler.step(optimizer)
    scaler.update()
    return StepResult(float(stats[2]) / utterances, float(grad_norm), utterances)


@dataclass
class Trainer:
    """The state of one training run (model, optimizer, loaders, progress) and its loop."""

    cfg: ExperimentConfig
    loaded: LoadedModel
    model: torch.nn.Module  # DDP-wrapped when distributed
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    train_loader: torch.utils.data.DataLoader
    dev_loaders: dict[str, torch.utils.data.DataLoader]  # by dev set name (dev_sets)
    device: torch.device
    progress: Progress
    generator: torch.Generator  # VTLP and SpecAugment draws
    monitor: TrainingMonitor
    validated_at: int = -1  # step of this process's last validation

    @property
    def total_steps(self) -> int:
        return max(1, len(self.train_loader.batch_sampler) * self.cfg.train.epochs)

    def fraction_done(self) -> float:
        budget = self.cfg.train.max_minutes * 60
        p = self.progress
        return max(p.step / self.total_steps, p.elapsed / budget if budget else 0.0)

    def eta(self) -> float:
        """Seconds of training left (time budget or steps), at the speed so far."""
        if self.progress.step == 0:
            return math.nan
        done = self.fraction_done()
        return self.progress.elapsed * (1 - done) / max(done, 1e-9)

    def train_one_epoch(self) -> bool:
        """This rank's batches of the epoch from where progress stands; False when the time
        budget ran out mid-epoch."""
        tc, p = self.cfg.train, self.progress
        rank, world = _rank()
        sampler = self.train_loader.batch_sampler
        sampler.set_position(p.epoch, p.batch_in_epoch)
        sampler.sampler.sorted_first = tc.sortagrad and p.epoch == 0
        self.model.train()
        bar = tqdm(
            self.train_loader,
            desc=f"epoch {p.epoch + 1}",
            initial=p.batch_in_epoch,
            total=len(sampler),
            disable=True if rank != 0 else None,  # None: no bar when stderr is not a terminal
            dynamic_ncols=True,
            mininterval=2,
        )
        window_audio, window_start = 0.0, time.time()
        for batch in bar:
            start = time.time()
            for group in self.optimizer.param_groups:
                group["lr"] = lr_at(p.step, self.fraction_done(), tc)
            result = train_step(
                self.loaded, self.model, batch, self.optimizer, self.scaler, self.cfg, self.device, self.generator
            )
            p.batch_in_epoch += 1
            if result is None:
                p.skipped += 1
                log.warning("step %d: loss or gradient not finite, batch skipped (%d so far)", p.step, p.skipped)
                continue
            p.step += 1
            p.elapsed += time.time() - start
            if dist.is_initialized():  # one clock for all ranks: same lr and the same last step
                clock = torch.tensor([p.elapsed], device=self.device)
                dist.all_reduce(clock, op=dist.ReduceOp.MAX)
                p.elapsed = float(clock)
            window_audio += float(batch.audio_lengths.sum()) / self.loaded.config.features.sample_rate * world
            if p.step % tc.log_every == 0:
                self._log_step(result, bar, window_audio / (time.time() - window_start))
                window_audio, window_start = 0.0, time.time()
            if tc.eval_every and p.step % tc.eval_every == 0:
                self.validate_and_save()
                self.model.train()
            elif tc.save_every and p.step % tc.save_every == 0:
                self.save()
            if tc.max_minutes and p.elapsed >= tc.max_minutes * 60:
                log.info("time budget of %.1f minutes reached at step %d", tc.max_minutes, p.step)
                return False
        return True

    def _log_step(self, result: StepResult, bar: tqdm, speed: float) -> None:
        p, lr = self.progress, self.optimizer.param_groups[0]["lr"]
        eta = self.eta()
        eta_text = "?" if math.isnan(eta) else f"{int(eta // 3600)}:{int(eta % 3600 // 60):02d}:{int(eta % 60):02d}"
        bar.set_postfix(loss=f"{result.loss:.3f}", lr=f"{lr:.2e}", audio_s_per_s=f"{speed:.0f}", eta=eta_text)
        log.info(
            "step %d epoch %d loss %.4f grad_norm %.2f lr %.2e audio-s/s %.0f eta %s",
            p.step, p.epoch + 1, result.loss, result.grad_norm, lr, speed, eta_text,
        )  # fmt: skip
        self.monitor.log_step(
            p.step, p.epoch + 1, loss=result.loss, lr=lr, grad_norm=result.grad_norm, audio_s_per_s=speed
        )

    def save(self, best: bool = False) -> None:
        """Checkpoint (rank 0 writes; every rank contributes its random states)."""
        tc, p = self.cfg.train, self.progress
        states = {"global": rng_state(), "augment": self.generator.get_state()}
        rng: list = [states]
        if dist.is_initialized():
            rng = [None] * dist.get_world_size()
            dist.all_gather_object(rng, states)
        if _rank()[0] == 0:
            save_training_checkpoint(
                tc.out_dir, p.step, self.cfg, self.model, self.loaded.features, tc.keep_last, best,
                optimizer=self.optimizer.state_dict(), scaler=self.scaler.state_dict(),
                progress=dataclasses.asdict(p), rng=rng,
            )  # fmt: skip

    def resume(self, path: Path) -> None:
        """Continue from checkpoint ``path`` (model, optimizer, scaler, progress, random states)."""
        state = read_checkpoint(path)
        same_model = from_dict(ModelConfig, state["config"]["model"]) == self.cfg.model  # older ones lack new fields
        stored = (state["config"].get("vocabulary"), state["config"].get("sentencepiece", ""))
        if not same_model or stored != (self.cfg.vocabulary, self.cfg.sentencepiece):
            raise CheckpointError(f"{path}: was trained with a different model config; use another out_dir")
        self.loaded.model.load_state_dict(state["model"])
        self.loaded.features.load_state_dict(state["features"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        self.progress = Progress(**_progress_fields(state["progress"], path, self.cfg.train.best_metric))
        rank, world = _rank()
        if isinstance(state.get("rng"), list) and len(state["rng"]) == world:
            set_rng_state(state["rng"][rank]["global"])
            self.generator.set_state(state["rng"][rank]["augment"])
        else:
            log.warning("%s: saved by another number of processes: random states not restored", path)
        p = self.progress
        log.info("resumed from %s at epoch %d (batch %d), step %d", path, p.epoch + 1, p.batch_in_epoch, p.step)

    def run(self) -> None:
        tc, p = self.cfg.train, self.progress
        out_of_time = tc.max_minutes > 0 and p.elapsed >= tc.max_minutes * 60
        while p.epoch < tc.epochs and not out_of_time:
            out_of_time = not self.train_one_epoch()
            p.epoch += 1
            p.batch_in_epoch = 0
            self.validate_and_save()

    def validate_and_save(self) -> None:
        """Greedy dev scores (pooled over the dev sets, and each one's), logged and plotted,
        then a checkpoint (``best.pt`` too when the pooled ``train.best_metric`` is the lowest so far)."""
        p = self.progress
        if p.step == self.validated_at:  # eval_every's validation was at this step: nothing new to score
            self.save()
            return
        self.validated_at = p.step
        pooled, per_set = validate(self.loaded, self.model, self.dev_loaders, self.device)
        where = f"epoch {p.epoch}" if p.batch_in_epoch == 0 else f"step {p.step} (epoch {p.epoch + 1})"
        log.info("%s dev: %s", where, pooled.summary())
        if len(per_set) > 1:
            for name, scores in per_set.items():
                log.info("%s dev %s: %s", where, name, scores.summary())
        sets = {f"{k}/{name}": getattr(sc, k) for name, sc in per_set.items() for k in ("wer", "cer")}
        self.monitor.log_validation(
            p.step, p.epoch, wer=pooled.wer, cer=pooled.cer, **(sets if len(per_set) > 1 else {})
        )
        score = getattr(pooled, self.cfg.train.best_metric)
        best = score <= p.best_score
        p.best_score = min(p.best_score, score)
        self.save(best)


@torch.no_grad()
def validate(
    loaded: LoadedModel,
    model: torch.nn.Module,
    loaders: dict[str, torch.utils.data.DataLoader],
    device: torch.device,
) -> tuple[Scores, dict[str, Scores]]:
    """Greedy WER/CER of ``model`` pooled over ``loaders`` (one per dev set) and per set
    (gathered over ranks)."""
    model.eval()
    spaces = language(loaded.config.text.language).spaces
    all_refs, all_hyps, per_set = [], [], {}
    for name, loader in loaders.items():
        refs, hyps = [], []
        text = {u.id: u.text for u in loader.dataset.utts}
        for batch in loader:
            batch = batch.to(device)
            feats, frames = loaded.features(batch.waveforms, batch.audio_lengths)
            log_probs, out_lengths = model(feats, frames)
            hyps += greedy_decode(log_probs, out_lengths, loaded.vocab)
            refs += [text[i] for i in batch.ids]
        if dist.is_initialized():
            gathered: list = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, (refs, hyps))
            refs = [r for rs, _ in gathered for r in rs]
            hyps = [h for _, hs in gathered for h in hs]
        per_set[name] = score(refs, hyps, spaces)
        all_refs += refs
        all_hyps += hyps
    return score(all_refs, all_hyps, spaces), per_set


def dev_sets(manifests: str) -> dict[str, str]:
    """Comma-separated dev ``manifests`` by short name: the file's stem, with its folder's
    name in front (``uqm-dev``) where stems repeat."""
    paths = [Path(m) for m in manifests.split(",") if m]
    stems = [p.stem for p in paths]
    return {(f"{p.parent.name}-{p.stem}" if stems.count(p.stem) > 1 else p.stem): str(p) for p in paths}


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


def with_units(cfg: ExperimentConfig, last: Path) -> ExperimentConfig:
    """``cfg`` with the units its ``text.units`` asks for (:func:`asr.units.build_units`): as
    given, or built from the training manifests' text normalized in ``text.language`` (on
    rank 0, then sent to the others); a run resumed from ``last`` keeps the ones it began with."""
    if cfg.text.units == "vocabulary":
        return cfg
    if last.exists():
        stored = read_checkpoint(last)["config"]
        units = [stored["vocabulary"], stored.get("sentencepiece", "")]
    elif _rank()[0] == 0:
        lang, texts = cfg.text.language, []
        for m in manifest_sources(cfg.train.train_manifest):
            utts = [s.utt for s in read_shard_index(m, lang)] if is_shard_index(m) else read_manifest(m, lang)
            texts += [u.text for u in utts]
        try:
            units = list(build_units(cfg.text.units, texts, lang))
        except ValueError as e:
            raise ConfigError(f"text.units {cfg.text.units}: {e}") from None
    else:
        units = [None, None]
    if dist.is_initialized():
        dist.broadcast_object_list(units, src=0)
    vocabulary, sentencepiece = units
    size = len(vocabulary_of(vocabulary, sentencepiece))
    log.info("units %s: %d symbols and the blank%s", cfg.text.units, size - 1, f": {vocabulary}" if vocabulary else "")
    return dataclasses.replace(cfg, vocabulary=vocabulary, sentencepiece=sentencepiece)


def train(cfg: ExperimentConfig) -> Path:
    """Train (or resume) the model described by ``cfg``; returns the path of ``best.pt``."""
    tc = cfg.train
    if not tc.train_manifest or not tc.dev_manifest:
        raise ConfigError("train needs --train.train_manifest and --train.dev_manifest")
    out_dir = Path(tc.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    owns_group = dist.is_available() and not dist.is_initialized()  # torchrun: this call starts it, and ends it
    device = setup_distributed(tc.device)
    rank, world = _rank()
    _setup_logging(out_dir, rank)
    cfg = dataclasses.replace(cfg, train=dataclasses.replace(tc, precision=resolve_precision(tc.precision, device)))
    tc = cfg.train
    if tc.threads > 0:
        torch.set_num_threads(tc.threads)
    if tc.deterministic:
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    torch.manual_seed(tc.seed)  # the same initial model on every rank
    last = out_dir / "last.pt"
    cfg = with_units(cfg, last)
    loaded = build(cfg)
    have_stats = False  # global CMVN statistics come with the init_from weights
    if tc.init_from and not last.exists():  # fine-tuning starts here; a resumed run has its own weights
        have_stats = init_weights(loaded, tc.init_from, head=tc.init_head)
        log.info(
            "weights from %s%s%s",
            tc.init_from,
            "" if tc.init_head else " but its output layer",
            " and its CMVN statistics" if have_stats else "",
        )
    torch.manual_seed(tc.seed + 1 + rank)  # then different dropout masks per rank
    loaded.model.to(device)
    loaded.features.to(device)
    model = loaded.model
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    trainer = Trainer(
        cfg,
        loaded,
        model,
        make_optimizer(loaded.model, tc, device),
        torch.amp.GradScaler(device.type, enabled=tc.precision == "fp16"),
        make_loader(tc.train_manifest, loaded, tc, train=True),
        {name: make_loader(m, loaded, tc, train=False) for name, m in dev_sets(tc.dev_manifest).items()},
        device,
        Progress(),
        torch.Generator().manual_seed(tc.seed * 1000 + rank),
        TrainingMonitor(out_dir, False),
    )
    if last.exists():
        trainer.resume(last)
    elif cfg.features.normalize in ("global", "online") and not have_stats:
        _fit_global_stats(loaded, trainer.train_loader, device)
    if rank == 0:
        (out_dir / "config.yaml").write_text(yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
        log.info("config: %s", cfg)
        log.info("model: %.2f M parameters, %s, %d process(es)", loaded.model.num_parameters() / 1e6, device, world)
    trainer.monitor = TrainingMonitor(out_dir, rank == 0, trainer.progress.step, tc.tensorboard)
    try:
        trainer.run()
    finally:
        trainer.monitor.close()
    if dist.is_initialized():
        dist.barrier()
        if owns_group:  # gloo's threads left running at exit can abort the process
            dist.destroy_process_group()
    p = trainer.progress
    log.info(
        "done: %d epochs, %d steps, %.1f min training, best dev %s %.2f%%, %d batches skipped",
        p.epoch, p.step, p.elapsed / 60, tc.best_metric.upper(), 100 * p.best_score, p.skipped,
    )  # fmt: skip
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
    if dist.is_initialized():  # every rank normalizes with rank 0's statistics
        dist.broadcast(loaded.features.mean, 0)
        dist.broadcast(loaded.features.std, 0)
    log.info("global CMVN statistics from %d batches", len(batches))
