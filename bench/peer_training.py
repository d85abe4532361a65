"""Peer toolkits trained beside asr at equal wall minutes, then scored alike (bench/peer_training).

One run trains, one after another, on the same manifests (default: the demo's synthetic +
UQM train, mix weights as ``recipes/synthetic/conf/demo.sh``), for the same minutes on the
same threads, in the same precision (``auto``: bf16 autocast where the CPU has it natively,
as ``asr train``):

* ``asr``: the demo BiLSTM through ``asr train`` (``recipes/synthetic/conf/bilstm.yaml``);
  its ``last.pt`` is scored, as the peers' last weights are;
* ``speechbrain``: SpeechBrain's ``Fbank`` (40 mels) → ``InputNormalization`` (global) →
  ``CRDNN`` (LSTM layers, time pooling 4x) → linear CTC head, ``speechbrain.nnet.losses.ctc_loss``,
  sized to asr's parameter count; AdamW with its ``NoamScheduler`` (see :data:`SB_CHOICES`);
* ``nemo``: NeMo's ``EncDecCTCModel`` with its ``RNNEncoder`` (the ``lstm_ctc`` config,
  striding subsampling 4x), sized the same way, AdamW with ``NoamAnnealing`` (:data:`NEMO_CHOICES`).
  It runs in its own venv (``--nemo-python``), made so that the project's is never touched::

      python3 -m venv ../nemo-venv && ../nemo-venv/bin/pip install torch==2.14.1 torchaudio==2.11.0
      ../nemo-venv/bin/pip install -c constraints.txt 'nemo_toolkit[asr]' num2words sentencepiece

The peers read the manifests through ``bench/peer_data.py``: asr's own sampler, so each
sees the very batches ``asr train`` draws, with the same augmentation. The budget counts
the time spent in training steps (loading and augmenting a batch excluded, as ``asr train``
counts it). Each model then gives log-probabilities over asr's character vocabulary for
the test sets (synthetic test and UQM test400), decoded greedily and scored by
``asr.metrics`` (recogs/errs/wer files under ``OUT_DIR/<peer>/decode``).

A finished peer leaves ``OUT_DIR/<peer>/result.json``; a rerun with the same settings
reuses it (an interrupted ``asr train`` resumes).

    python bench/peer_training.py [--minutes 8] [--threads 2] [--peers asr,speechbrain,nemo]
        [--data data/synthetic-demo] [--train train.jsonl,uqm/train.jsonl] [--mix-weights 1,1]
        [--test test.jsonl,uqm/test400.jsonl] [--out-dir data/peer-bench-8min] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]  # asr from this checkout, also in the NeMo venv

from peer_data import (  # noqa: E402
    SAMPLE_RATE,
    Batch,
    TrainData,
    TrainStream,
    checked_utterances,
    describe,
    eval_loader,
    relative_lengths,
)
from results import publish  # noqa: E402

from asr.files import atomic_path  # noqa: E402
from asr.text import Vocabulary  # noqa: E402

SECTION = "## Peer toolkits trained at equal minutes: {minutes:g} min (bench/peer_training.py)"
PEERS = ("asr", "speechbrain", "nemo")
PARAM_TOLERANCE = 0.10  # peers within 10 % of asr's parameter count
WARMUP_STEPS = 100  # the peers' warmup: asr's (bilstm.yaml); SpeechBrain's and NeMo's recipes use 7500-10000
LOG_EVERY = 20

# SpeechBrain: the LibriSpeech/TIMIT CRDNN recipes' layout (2 CNN blocks, time pooling, LSTM,
# 2 DNN blocks, 40 mels), its widths cut to ~5 M parameters; the LSTM width is fitted.
SB_N_MELS = 40
SB_CNN_CHANNELS = (32, 64)  # the recipes' (128, 256) / 4: these convolutions run at 100 frames/s
SB_RNN_LAYERS = 3
SB_DNN_NEURONS = 256
SB_LR = 1e-3  # AdamW as in LibriSpeech/ASR/CTC/hparams/train_conformer.yaml (from-scratch CTC)
SB_BETAS, SB_EPS, SB_WEIGHT_DECAY = (0.9, 0.98), 1e-9, 5e-4
SB_GRAD_CLIP = 5.0  # sb.Brain's max_grad_norm
SB_CHOICES = (
    "AdamW lr 1e-3 (betas 0.9/0.98, eps 1e-9, wd 5e-4: SpeechBrain's from-scratch CTC recipes) with its "
    f"NoamScheduler (warmup {WARMUP_STEPS}, then 1/sqrt decay: needs no step count, fits a time budget); not "
    "the CRDNN recipes' Adadelta lr 1.0 + NewBob, which anneals only at epoch ends on dev loss, so in a "
    "budget of one or two epochs it never would; clip 5, dropout 0 (as bilstm.yaml), no SpecAugment"
)

# NeMo: examples/asr/conf/lstm/lstm_ctc_bpe.yaml with characters, striding subsampling and
# 3 layers; proj 320; d_model (LSTM cells) fitted.
NEMO_LAYERS, NEMO_PROJ, NEMO_CONV_CHANNELS = 3, 320, 32
NEMO_PEAK_LR = 5.0 / math.sqrt(2048 * 10000)  # the config's lr 5 x Noam(d_model 2048, warmup 10000): 1.1e-3
NEMO_BETAS, NEMO_WEIGHT_DECAY, NEMO_GRAD_CLIP = (0.9, 0.98), 1e-2, 0.3
NEMO_CHOICES = (
    f"AdamW (betas 0.9/0.98, wd 1e-2) with NoamAnnealing, warmup {WARMUP_STEPS} and the config's peak lr "
    "1.1e-3; clip 0.3, 80 mels per-feature normalized, dither 1e-5, ctc_reduction mean_batch (all from "
    "lstm_ctc_bpe.yaml), dropout 0 and no SpecAugment (as bilstm.yaml)"
)


# ----------------------------------------------------------------------------- shared


def count_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fit_width(build: Callable[[int], torch.nn.Module], target: int, low: int, high: int, step: int = 8):
    """The model ``build(width)`` (width a multiple of ``step`` in ``[low, high]``) whose
    parameter count is nearest ``target``; ValueError when that is more than
    :data:`PARAM_TOLERANCE` away. The count must grow with the width."""
    counts: dict[int, int] = {}

    def count(width: int) -> int:
        if width not in counts:
            counts[width] = count_parameters(build(width))
        return counts[width]

    lo, hi = math.ceil(low / step), high // step
    while lo < hi:  # the narrowest width with at least ``target`` parameters
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if count(mid * step) < target else (lo, mid)
    best = min((w for w in (lo * step - step, lo * step) if w >= low), key=lambda w: abs(count(w) - target))
    if abs(count(best) - target) > PARAM_TOLERANCE * target:
        raise ValueError(f"no width in [{low}, {high}] gives {target:,} parameters +- 10 % ({best}: {count(best):,})")
    return build(best)


def precision_context(precision: str) -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16")


def train_for(step: Callable[[Batch, int], float | None], stream: TrainStream, minutes: float, name: str) -> dict:
    """Call ``step(batch, epoch)`` (the loss, or None when the batch was skipped) on the
    stream's batches until the time spent in steps reaches ``minutes``."""
    elapsed, steps, skipped, window = 0.0, 0, 0, (0.0, 0.0)
    for batch in stream:  # endless: the budget ends it
        start = time.time()
        loss = step(batch, stream.epoch)
        seconds = time.time() - start
        elapsed += seconds
        steps, skipped = (steps + 1, skipped) if loss is not None else (steps, skipped + 1)
        window = (window[0] + float(batch.audio_lengths.sum()) / SAMPLE_RATE, window[1] + seconds)
        if loss is not None and steps % LOG_EVERY == 0:
            print(f"{name}: step {steps} epoch {stream.epoch + 1} loss {loss:.3f} "
                  f"audio-s/s {window[0] / window[1]:.0f} {elapsed / 60:.1f} min", flush=True)  # fmt: skip
            window = (0.0, 0.0)
        if elapsed >= minutes * 60:
            break
    return {"steps": steps, "skipped": skipped, "train_seconds": elapsed, "audio_seconds": stream.audio_seconds,
            "epochs": stream.audio_seconds / stream.epoch_seconds}  # fmt: skip


@torch.no_grad()
def posteriors(log_probs_of: Callable, tests: dict[str, str], batch_seconds: float) -> dict[str, dict]:
    """``{set: {utterance id: log_probs (T, V) float32}}`` over asr's vocabulary, ``log_probs_of``
    mapping ``waveforms (B, S), lengths (B,)`` to ``log_probs (B, T, V), frames (B,)``."""
    out = {}
    for name, manifest in tests.items():
        _, loader = eval_loader(manifest, batch_seconds)
        out[name] = {}
        for batch in loader:
            log_probs, frames = log_probs_of(batch.waveforms, batch.audio_lengths)
            for i, utt in enumerate(batch.ids):
                out[name][utt] = log_probs[i, : int(frames[i])].float().clone()
    return out


def write_json(path: Path, data: dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n")


def save_result(work: Path, result: dict, probs: dict) -> None:
    with atomic_path(work / "posteriors.pt") as tmp:
        torch.save(probs, tmp)
    write_json(work / "result.json", result)  # last: it marks the peer done


# ----------------------------------------------------------------------------- SpeechBrain


class SpeechBrainCTC(torch.nn.Module):
    """SpeechBrain's ``Fbank`` → ``InputNormalization`` (global) → ``CRDNN`` → ``Linear`` → log-softmax.

    ``forward(waveforms (B, S), lengths (B,) samples)`` → ``log_probs (B, T', V)`` float32 and
    ``frames (B,)`` (T' is the 10 ms frames / 4, the time pooling).
    """

    def __init__(self, rnn_neurons: int, vocab_size: int, dropout: float = 0.0) -> None:
        super().__init__()
        import speechbrain as sb
        from speechbrain.lobes.features import Fbank
        from speechbrain.lobes.models.CRDNN import CRDNN
        from speechbrain.processing.features import InputNormalization

        self.fbank = Fbank(sample_rate=16000, n_fft=400, n_mels=SB_N_MELS)
        self.normalize = InputNormalization(norm_type="global")
        self.encoder = CRDNN(
            input_size=SB_N_MELS, activation=torch.nn.LeakyReLU, dropout=dropout, cnn_blocks=2,
            cnn_channels=SB_CNN_CHANNELS, cnn_kernelsize=(3, 3), time_pooling=True, time_pooling_size=4,
            rnn_class=sb.nnet.RNN.LSTM, rnn_layers=SB_RNN_LAYERS, rnn_neurons=rnn_neurons, rnn_bidirectional=True,
            dnn_blocks=2, dnn_neurons=SB_DNN_NEURONS,
        )  # fmt: skip
        self.head = sb.nnet.linear.Linear(input_size=SB_DNN_NEURONS, n_neurons=vocab_size)
        self.log_softmax = sb.nnet.activations.Softmax(apply_log=True)
        self.rnn_neurons = rnn_neurons

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor, epoch: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        wav_lens = relative_lengths(lengths)
        feats = self.normalize(self.fbank(waveforms), wav_lens, epoch=epoch)
        log_probs = self.log_softmax(self.head(self.encoder(feats)).float())
        return log_probs, torch.round(wav_lens * log_probs.shape[1]).int()

    def describe(self) -> str:
        return (f"Fbank {SB_N_MELS} mels, global InputNormalization, CRDNN: 2 CNN blocks {SB_CNN_CHANNELS}, "
                f"time pooling 4, {SB_RNN_LAYERS} x {self.rnn_neurons} BiLSTM, 2 DNN blocks x {SB_DNN_NEURONS}, "
                "linear CTC head")  # fmt: skip


def speechbrain_model(target_params: int, vocab_size: int) -> SpeechBrainCTC:
    """A :class:`SpeechBrainCTC` whose LSTM width puts it within 10 % of ``target_params``."""
    return fit_width(lambda h: SpeechBrainCTC(h, vocab_size), target_params, 16, 2048)


def speechbrain_loss(model: SpeechBrainCTC, batch: Batch, epoch: int | None = None) -> torch.Tensor:
    """``speechbrain.nnet.losses.ctc_loss`` of ``batch`` (per target token, mean over utterances)."""
    from speechbrain.nnet.losses import ctc_loss

    log_probs, _ = model(batch.waveforms, batch.audio_lengths, epoch)
    target_lens = batch.target_lengths.float() / batch.targets.shape[1]
    return ctc_loss(log_probs, batch.targets, relative_lengths(batch.audio_lengths), target_lens, blank_index=0)


def run_speechbrain(settings: dict, data: TrainData) -> tuple[dict, dict]:
    import speechbrain
    from speechbrain.nnet.schedulers import NoamScheduler

    vocab = Vocabulary()
    torch.manual_seed(data.seed)
    model = speechbrain_model(settings["target_params"], len(vocab))
    n = count_parameters(model)
    print(f"SpeechBrain CRDNN: {n:,} parameters; asr BiLSTM {settings['target_params']:,} "
          f"({100 * (n / settings['target_params'] - 1):+.1f} %)", flush=True)  # fmt: skip
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=SB_LR, betas=SB_BETAS, eps=SB_EPS, weight_decay=SB_WEIGHT_DECAY
    )
    scheduler = NoamScheduler(lr_initial=SB_LR, n_warmup_steps=WARMUP_STEPS)

    def step(batch: Batch, epoch: int) -> float | None:
        model.train()
        with precision_context(settings["precision"]):
            loss = speechbrain_loss(model, batch, epoch + 1)  # sb.Brain counts epochs from 1
        optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            return None
        loss.backward()
        if not torch.isfinite(torch.nn.utils.clip_grad_norm_(model.parameters(), SB_GRAD_CLIP)):
            return None
        scheduler(optimizer)
        optimizer.step()
        return float(loss.detach())

    stats = train_for(step, TrainStream(data, vocab), settings["minutes"], "speechbrain")
    model.eval()
    probs = posteriors(lambda w, n: model(w, n), settings["tests"], data.batch_seconds)
    info = {"toolkit": f"SpeechBrain {speechbrain.__version__}", "model": model.describe(), "choices": SB_CHOICES}
    return {**stats, **info, "parameters": n}, probs


# ----------------------------------------------------------------------------- NeMo


def nemo_model(target_params: int, vocabulary: str):
    """NeMo's ``EncDecCTCModel`` (characters ``vocabulary``, blank last) with an ``RNNEncoder``
    whose LSTM size (``d_model``) puts it within 10 % of ``target_params``."""
    from nemo.collections.asr.models import EncDecCTCModel
    from omegaconf import OmegaConf

    def build(d_model: int) -> EncDecCTCModel:
        cfg = {
            "sample_rate": 16000, "labels": list(vocabulary), "ctc_reduction": "mean_batch",
            "preprocessor": {
                "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor", "sample_rate": 16000,
                "normalize": "per_feature", "window_size": 0.025, "window_stride": 0.01, "window": "hann",
                "features": 80, "n_fft": 512, "frame_splicing": 1, "dither": 1e-5, "pad_to": 0,
            },
            "spec_augment": None,
            "encoder": {
                "_target_": "nemo.collections.asr.modules.RNNEncoder", "feat_in": 80, "n_layers": NEMO_LAYERS,
                "d_model": d_model, "proj_size": NEMO_PROJ, "rnn_type": "lstm", "bidirectional": True,
                "subsampling": "striding", "subsampling_factor": 4,
                "subsampling_conv_channels": NEMO_CONV_CHANNELS, "dropout": 0.0,
            },
            "decoder": {"_target_": "nemo.collections.asr.modules.ConvASRDecoder", "feat_in": None,
                        "num_classes": -1, "vocabulary": list(vocabulary)},
        }  # fmt: skip
        return EncDecCTCModel(cfg=OmegaConf.create(cfg))

    return fit_width(build, target_params, NEMO_PROJ // 2 + 8, 2048)


def run_nemo(settings: dict, data: TrainData) -> tuple[dict, dict]:
    import logging

    import nemo
    from nemo.core.optim.lr_scheduler import NoamAnnealing
    from nemo.utils import logging as nemo_logging

    nemo_logging.setLevel(logging.WARNING)
    vocab = Vocabulary()
    torch.manual_seed(data.seed)
    model = nemo_model(settings["target_params"], "".join(vocab.symbols[1:]))
    n, d_model = count_parameters(model), model.cfg.encoder.d_model
    print(f"NeMo RNNEncoder CTC: {n:,} parameters; asr BiLSTM {settings['target_params']:,} "
          f"({100 * (n / settings['target_params'] - 1):+.1f} %)", flush=True)  # fmt: skip
    base_lr = NEMO_PEAK_LR * math.sqrt(d_model * WARMUP_STEPS)  # Noam's peak is lr / sqrt(d_model * warmup)
    optimizer = torch.optim.AdamW(model.parameters(), lr=base_lr, betas=NEMO_BETAS, weight_decay=NEMO_WEIGHT_DECAY)
    scheduler = NoamAnnealing(optimizer, d_model=d_model, warmup_steps=WARMUP_STEPS, min_lr=1e-6)

    def step(batch: Batch, epoch: int) -> float | None:
        model.train()
        with precision_context(settings["precision"]):
            log_probs, frames, _ = model(input_signal=batch.waveforms, input_signal_length=batch.audio_lengths)
        targets = (batch.targets - 1).clamp(min=0)  # NeMo's ids: asr's less one, blank last
        loss = model.loss(log_probs=log_probs.float(), targets=targets, input_lengths=frames,
                          target_lengths=batch.target_lengths)  # fmt: skip
        optimizer.zero_grad(set_to_none=True)
        if not torch.isfinite(loss):
            return None
        loss.backward()
        if not torch.isfinite(torch.nn.utils.clip_grad_norm_(model.parameters(), NEMO_GRAD_CLIP)):
            return None
        optimizer.step()
        scheduler.step()
        return float(loss.detach())

    def log_probs_of(waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_probs, frames, _ = model(input_signal=waveforms, input_signal_length=lengths)
        return torch.cat([log_probs[..., -1:], log_probs[..., :-1]], -1), frames  # blank first, as asr's

    stats = train_for(step, TrainStream(data, vocab), settings["minutes"], "nemo")
    model.eval()
    probs = posteriors(log_probs_of, settings["tests"], data.batch_seconds)
    model_text = (f"EncDecCTCModel, striding subsampling 4x ({NEMO_CONV_CHANNELS} channels), RNNEncoder "
                  f"{NEMO_LAYERS} x BiLSTM d_model {d_model} proj {NEMO_PROJ}, 80 mels, conv CTC head")  # fmt: skip
    info = {"toolkit": f"NeMo {nemo.__version__}", "model": model_text, "choices": NEMO_CHOICES}
    return {**stats, **info, "parameters": n}, probs


def nemo_problem(python: Path) -> str | None:
    """Why NeMo cannot run from ``python`` (one line), or None when it can."""
    if not python.exists():
        return f"no NeMo venv at {python} (make it as the bench's docstring says, or pass --nemo-python)"
    probe = "import torch; from nemo.collections.asr.models import EncDecCTCModel; print(torch.__version__)"
    done = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    if done.returncode != 0:
        return f"`import nemo.collections.asr` failed in {python}: " + (done.stderr.strip().splitlines() or ["?"])[-1]
    # the worker imports asr itself (its data adapter): its requirements must be there too
    probe = f"import sys; sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'bench')!r}]; import peer_data"
    asr = subprocess.run([str(python), "-c", probe], capture_output=True, text=True)
    if asr.returncode != 0:
        return f"asr does not import in {python}: " + (asr.stderr.strip().splitlines() or ["?"])[-1]
    theirs = done.stdout.strip().splitlines()[-1].split("+")[0]
    if theirs != torch.__version__.split("+")[0]:
        return f"the NeMo venv has torch {theirs}, the project {torch.__version__}"
    return None


# ----------------------------------------------------------------------------- asr


def run_asr(settings: dict, data: TrainData, work: Path) -> tuple[dict, dict]:
    """``asr train`` with the demo's config and the bench's manifests, budget and threads."""
    import asr
    from asr.checkpoint import load_model, read_checkpoint
    from asr.transcribe import log_probs_of

    exp = work / "exp"
    cmd = [
        sys.executable, "-m", "asr.cli", "train", "--config", settings["config"],
        "--train.train_manifest", ",".join(settings["train"]),
        "--train.mix_weights", ",".join(f"{w:g}" for w in settings["weights"]),
        "--train.dev_manifest", ",".join(settings["dev"]), "--train.eval_every", "0",
        "--train.out_dir", str(exp), "--train.max_minutes", f"{settings['minutes']:g}", "--train.epochs", "100",
        "--train.seed", str(data.seed), "--train.threads", str(settings["threads"]),
        "--train.precision", settings["precision"],
    ]  # fmt: skip
    run_logged(cmd, work / "train.log", settings["threads"])
    progress = read_checkpoint(exp / "last.pt")["progress"]
    stream = TrainStream(data)
    audio, _ = stream.planned_audio(progress["step"] + progress["skipped"])
    loaded = load_model(exp / "last.pt")
    probs = posteriors(lambda w, n: log_probs_of(loaded, w, n), settings["tests"], data.batch_seconds)
    m, t, conf = loaded.config.model, loaded.config.train, Path(settings["config"]).name
    result = {
        "steps": progress["step"], "skipped": progress["skipped"], "train_seconds": progress["elapsed"],
        "audio_seconds": audio, "epochs": audio / stream.epoch_seconds, "parameters": loaded.model.num_parameters(),
        "toolkit": f"asr {asr.__version__}",
        "model": f"conv {m.conv_layers} x {m.conv_channels}, {m.num_layers} x {m.hidden_size} BiLSTM, linear CTC "
        f"head ({conf})",
        "choices": f"AdamW lr {t.lr:g}, warmup {t.warmup_steps}, cosine to the budget ({conf}); last.pt scored",
    }  # fmt: skip
    return result, probs


# ----------------------------------------------------------------------------- orchestration


def run_logged(cmd: list[str], log: Path, threads: int) -> None:
    """Run ``cmd`` from the repository root on ``threads`` threads, its output printed and kept in ``log``."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    tail: collections.deque[str] = collections.deque(maxlen=15)
    with log.open("w") as f, subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                              env=env, cwd=ROOT) as proc:  # fmt: skip
        for line in proc.stdout or ():
            f.write(line)
            tail.append(line)
            print(line, end="", flush=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:5])} ... failed (exit {proc.returncode}); log {log}:\n{''.join(tail)}")


def run_peer(peer: str, settings: dict, work: Path, python: Path) -> dict:
    """Train and run ``peer`` (or reuse its finished run); its result with ``wall_seconds``."""
    done = work / "result.json"
    if done.exists():
        result = json.loads(done.read_text())
        if result["settings"] == settings:
            print(f"{peer}: reusing {done}")
            return result
        raise SystemExit(f"{done}: trained with other settings; delete {work} or pass another --out-dir")
    work.mkdir(parents=True, exist_ok=True)
    start = time.time()
    if peer == "asr":
        result, probs = run_asr(settings, TrainData.from_config(settings["config"], settings["train"],
                                                                  settings["weights"]), work)  # fmt: skip
        save_result(work, {**result, "settings": settings, "wall_seconds": time.time() - start}, probs)
    else:
        cmd = [str(python), __file__, "--worker", peer, "--out-dir", str(work.parent)]
        run_logged(cmd, work / "train.log", settings["threads"])
        write_json(done, {**json.loads(done.read_text()), "wall_seconds": time.time() - start})  # with start-up
    return json.loads(done.read_text())


def worker(peer: str, out_dir: Path) -> None:
    """In a peer's own process: train it, write ``OUT_DIR/<peer>/result.json`` and posteriors."""
    start = time.time()
    settings = json.loads((out_dir / "settings.json").read_text())
    torch.set_num_threads(settings["threads"])
    data = TrainData.from_config(settings["config"], settings["train"], settings["weights"])
    result, probs = (run_speechbrain if peer == "speechbrain" else run_nemo)(settings, data)
    save_result(out_dir / peer, {**result, "settings": settings, "wall_seconds": time.time() - start}, probs)


def score(work: Path, tests: dict[str, str]) -> dict:
    """Greedy WER/CER of a peer's posteriors on each test set (files under ``work/decode``)."""
    from asr.decoding import greedy_decode  # imported here: the NeMo venv has no jiwer
    from asr.metrics import write_results

    vocab = Vocabulary()
    probs = torch.load(work / "posteriors.pt")
    out = {}
    for name, manifest in tests.items():
        utts = checked_utterances(manifest, vocab)
        hyps = [greedy_decode(probs[name][u.id][None], torch.tensor([len(probs[name][u.id])]), vocab)[0] for u in utts]
        out[name] = write_results(work / "decode", name.replace("/", "-"), [u.id for u in utts],
                                  [u.text for u in utts], hyps, [u.raw_text for u in utts])  # fmt: skip
    return out


def demo_uqm_weight(path: Path) -> str:
    """``uqm_weight`` of a recipe size file (``recipes/synthetic/conf/demo.sh``)."""
    found = re.search(r"^uqm_weight=(\S+)", path.read_text(), re.MULTILINE)
    if not found:
        raise SystemExit(f"{path}: no uqm_weight= line")
    return found.group(1)


def resolve(args: argparse.Namespace) -> dict:
    """The settings every peer gets (JSON-able: the workers read them from a file)."""
    import yaml

    from asr.checkpoint import build
    from asr.config import ExperimentConfig, from_dict
    from asr.train import resolve_precision

    def paths(text: str) -> list[str]:
        return [str(p if p.is_absolute() else args.data / p) for p in map(Path, text.split(",")) if str(p)]

    def name(path: str) -> str:
        p = Path(path)
        return str(p.relative_to(args.data).with_suffix("")) if p.is_relative_to(args.data) else p.stem

    train, dev, tests = paths(args.train), paths(args.dev), paths(args.test)
    weights = [float(w) for w in (args.mix_weights or f"1,{demo_uqm_weight(args.demo_conf)}").split(",")]
    for manifest in [*train, *dev, *tests]:
        if not Path(manifest).is_file():
            raise SystemExit(f"{manifest}: no such manifest (run `make demo` first, or pass --data/--train/--test)")
    cfg = from_dict(ExperimentConfig, yaml.safe_load(args.config.read_text()) or {})
    return {
        "train": train, "weights": weights[: len(train)], "dev": dev, "tests": {name(t): t for t in tests},
        "config": str(args.config), "minutes": args.minutes, "threads": args.threads,
        "precision": resolve_precision(args.precision, torch.device("cpu")),
        "target_params": build(cfg).model.num_parameters(),
    }  # fmt: skip


def caption(settings: dict, results: dict[str, dict], skipped: dict[str, str], data: TrainData) -> str:
    from asr.data import read_manifest, total_hours

    hours = [f"{Path(m).parent.name}/{Path(m).name} ({total_hours(read_manifest(m)):.1f} h)" for m in settings["train"]]
    threads = f"{settings['threads']} thread" + "s" * (settings["threads"] != 1)
    lines = [
        f"Each peer trained for **{settings['minutes']:g} min** of training steps (batch loading not counted, as "
        f"`asr train` counts it) on **{threads}**, one after another, {settings['precision']}, "
        f"on {' + '.join(hours)}, mix weights {','.join(f'{w:g}' for w in settings['weights'])}: all three on the "
        f"batches `asr train` draws (asr's sampler through bench/peer_data.py: <= {data.batch_seconds:g} s of "
        f"padded audio, shortest first in epoch 1), with its augmentation ({describe(data)}) for all. Parameters "
        f"sized to asr's ({settings['target_params']:,}) within 10 %. Each scored by its last weights with greedy "
        "CTC decoding over asr's characters, WER/CER by asr.metrics; audio-s/s: audio trained per second of steps.",
    ]
    for peer, r in results.items():
        lines.append(f"- **{peer}** ({r['toolkit']}): {r['model']}; {r['choices']}.")
    for peer, why in skipped.items():
        lines.append(f"- **{peer}**: not run: {why}.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / "data/synthetic-demo", help="manifests are relative to it")
    parser.add_argument("--train", default="train.jsonl,uqm/train.jsonl", help="training manifests, comma-separated")
    parser.add_argument("--mix-weights", default="", help="per training manifest (default: 1,uqm_weight of demo.sh)")
    parser.add_argument("--dev", default="dev.jsonl,uqm/dev.jsonl", help="asr train's dev sets (it needs one)")
    parser.add_argument("--test", default="test.jsonl,uqm/test400.jsonl", help="scored test sets")
    parser.add_argument("--config", type=Path, default=ROOT / "recipes/synthetic/conf/bilstm.yaml")
    parser.add_argument("--demo-conf", type=Path, default=ROOT / "recipes/synthetic/conf/demo.sh")
    parser.add_argument("--minutes", type=float, default=8.0, help="training minutes per peer")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", default="auto", help="fp32, bf16 or auto (bf16 where the CPU has it natively)")
    parser.add_argument("--peers", default=",".join(PEERS))
    nemo_python = Path(os.environ.get("NEMO_PYTHON", ROOT.parent / "nemo-venv/bin/python"))
    parser.add_argument("--nemo-python", type=Path, default=nemo_python, help="the NeMo venv's python ($NEMO_PYTHON)")
    parser.add_argument("--out-dir", type=Path, help="work folder (default data/peer-bench-<minutes>min)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench/RESULTS.md")
    parser.add_argument("--worker", choices=PEERS[1:], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args.worker, args.out_dir)
    peers = [p for p in args.peers.split(",") if p]
    if unknown := set(peers) - set(PEERS):
        raise SystemExit(f"--peers: unknown {sorted(unknown)} (known: {','.join(PEERS)})")
    torch.set_num_threads(args.threads)
    out_dir = args.out_dir or ROOT / f"data/peer-bench-{args.minutes:g}min"
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = resolve(args)
    write_json(out_dir / "settings.json", settings)
    print(f"asr BiLSTM ({Path(settings['config']).name}): {settings['target_params']:,} parameters")
    skipped = {}
    if "speechbrain" in peers and importlib.util.find_spec("speechbrain") is None:
        skipped["speechbrain"] = "speechbrain is not installed (pip install -c constraints.txt speechbrain)"
        print(f"speechbrain: not run: {skipped['speechbrain']}")
    if "nemo" in peers and (why := nemo_problem(args.nemo_python)):
        print(f"nemo: not run: {why}")
        skipped["nemo"] = why
    results = {}
    for peer in peers:
        if peer not in skipped:
            python = args.nemo_python if peer == "nemo" else Path(sys.executable)
            results[peer] = run_peer(peer, settings, out_dir / peer, python)
    rows = []
    for peer, r in results.items():
        scores = score(out_dir / peer, settings["tests"])
        rows.append([peer, f"{r['parameters'] / 1e6:.2f} M", str(r["steps"]), f"{r['epochs']:.2f}",
                     f"{r['audio_seconds'] / r['train_seconds']:.0f}",
                     *(f"{100 * getattr(s, k):.1f}" for s in scores.values() for k in ("wer", "cer")),
                     f"{r['wall_seconds'] / 60:.1f}"])  # fmt: skip
    rows += [[peer, *["-"] * (5 + 2 * len(settings["tests"]))] for peer in skipped]
    header = ["peer", "parameters", "steps", "epochs", "audio-s/s",
              *(f"{t} {k}" for t in settings["tests"] for k in ("WER %", "CER %")), "wall min"]  # fmt: skip
    data = TrainData.from_config(settings["config"], settings["train"], settings["weights"])
    section = SECTION.format(minutes=settings["minutes"])
    publish(section, caption(settings, results, skipped, data), header, rows, args.out)


if __name__ == "__main__":
    main()
