"""Atomic checkpoint save/load; a checkpoint alone rebuilds the model, features and vocabulary.

Layout of the saved dict: ``format``, ``version``, ``config`` (``asdict`` of
:class:`~asr.config.ExperimentConfig`), ``model`` (unwrapped from DDP) and ``features``
state dicts, and for resuming ``optimizer``, ``scaler``, ``progress`` (step, epoch, batches
done in the epoch, elapsed time, best WER, skipped batches) and ``rng``: one entry per rank
with its global random states and its augmentation generator's state.

Training writes ``step-<step>.pt`` files (the newest ``keep_last`` kept) and points the
``last.pt`` and ``best.pt`` hard links at them (:func:`save_training_checkpoint`).
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import random
import shutil
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from asr.config import ExperimentConfig, FeatureConfig, from_dict
from asr.features import FeaturePipeline
from asr.files import atomic_path, marker_problem
from asr.model import AcousticModel
from asr.text import Vocabulary
from asr.units import vocabulary_of

FORMAT = "asr-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and the problem."""


@dataclass
class LoadedModel:
    """What inference needs, rebuilt from a checkpoint."""

    config: ExperimentConfig
    model: AcousticModel
    features: FeaturePipeline
    vocab: Vocabulary


def build(config: ExperimentConfig) -> LoadedModel:
    """Fresh (untrained) model, feature pipeline and vocabulary for ``config``."""
    vocab = vocabulary_of(config.vocabulary, config.sentencepiece)
    model = AcousticModel(config.features, config.model, len(vocab))
    return LoadedModel(config, model, FeaturePipeline(config.features), vocab)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DDP / torch.compile wrappers."""
    model = getattr(model, "module", model)
    return getattr(model, "_orig_mod", model)


def rng_state() -> dict[str, Any]:
    """This process's global random states (Python, NumPy, torch CPU and current CUDA device)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def save_training_checkpoint(
    out_dir: str | Path,
    step: int,
    config: ExperimentConfig,
    model: torch.nn.Module,
    features: FeaturePipeline,
    keep_last: int,
    best: bool = False,
    **extra: Any,
) -> Path:
    """Write ``step-<step>.pt`` atomically, point ``last.pt`` (and ``best.pt`` when ``best``)
    at it, and delete all but the newest ``keep_last`` step checkpoints (0 keeps all)."""
    out_dir = Path(out_dir)
    path = out_dir / f"step-{step:08d}.pt"
    _write_atomic(_state(config, model, features, **extra), path)
    for alias in ("last.pt", "best.pt") if best else ("last.pt",):
        _link_atomic(path, out_dir / alias)
    if keep_last > 0:
        for old in sorted(out_dir.glob("step-*.pt"))[:-keep_last]:
            old.unlink()
    return path


def _state(config: ExperimentConfig, model: torch.nn.Module, features: FeaturePipeline, **extra: Any) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "config": dataclasses.asdict(config),
        "model": unwrap(model).state_dict(),
        "features": features.state_dict(),
        **extra,
    }


def _write_atomic(state: dict[str, Any], path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def _link_atomic(source: Path, alias: Path) -> None:
    """``alias`` becomes a hard link to ``source`` (a copy where links are not supported)."""
    with atomic_path(alias) as tmp:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict, with clear errors for missing, truncated or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or corrupt?): {e}") from None
    problem = marker_problem(state, path, FORMAT, VERSION, "checkpoint")
    if problem:
        raise CheckpointError(problem)
    return state


def resolve_device(name: str) -> str:
    """The device every command runs on for ``--device NAME``: ``auto`` is ``cuda`` where a
    GPU is available, else ``cpu``; any other name is kept."""
    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild model, feature pipeline and vocabulary from ``path``, in eval mode
    (``device`` ``auto``: :func:`resolve_device`)."""
    if device == "auto":
        device = resolve_device(device)
    state = read_checkpoint(path)
    try:
        loaded = build(from_dict(ExperimentConfig, state["config"]))
        loaded.model.load_state_dict(state["model"])
        loaded.features.load_state_dict(state["features"])
    except (KeyError, ValueError, TypeError, RuntimeError) as e:
        raise CheckpointError(f"{path}: checkpoint does not match its config: {e}") from None
    loaded.model.to(device).eval()
    loaded.features.to(device).eval()
    return loaded


def init_weights(loaded: LoadedModel, path: str | Path, head: bool = True) -> bool:
    """Copy the weights of checkpoint ``path`` into ``loaded`` (fine-tuning: optimizer and
    schedule stay fresh). The feature state (global CMVN statistics) is copied too when the
    feature configs match; returns whether it was. With ``head`` False every weight but the
    output layer's is copied and the output layer keeps its fresh init, so the checkpoint may
    have other output symbols (a warm start from a romanized model, another language). Raises
    :class:`CheckpointError` when the vocabularies differ (with ``head``) or the shapes do."""
    state = read_checkpoint(path)
    theirs = state["config"].get("vocabulary")
    same_units = theirs == loaded.config.vocabulary and state["config"].get("sentencepiece", "") == (
        loaded.config.sentencepiece
    )
    if head and not same_units:
        raise CheckpointError(
            f"{path}: its vocabulary {theirs!r} differs from this model's {loaded.config.vocabulary!r}; "
            "init_from needs the same output symbols (train.init_head false starts the output layer fresh)"
        )
    weights = state["model"] if head else {k: v for k, v in state["model"].items() if not k.startswith("head.")}
    try:
        missing, unexpected = loaded.model.load_state_dict(weights, strict=head)
    except RuntimeError as e:
        raise CheckpointError(f"{path}: its weights do not fit this model config: {e}") from None
    if other := [k for k in missing if not k.startswith("head.")] + unexpected:
        raise CheckpointError(f"{path}: its weights do not fit this model config: {', '.join(other)} differ")
    theirs_features = state["config"].get("features")  # older checkpoints lack newer fields: compare configs
    same_features = theirs_features is not None and from_dict(FeatureConfig, theirs_features) == loaded.config.features
    if same_features:
        loaded.features.load_state_dict(state["features"])
    return same_features


def average_checkpoints(paths: Sequence[str | Path], out: str | Path) -> Path:
    """Average the model weights of checkpoints trained with one config (e.g. the last K
    epochs) into ``out``, an inference checkpoint (no optimizer state). Integer buffers
    (if a model has any) and the feature statistics come from the last checkpoint."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    first = read_checkpoint(paths[0])
    total = {k: v.double().clone() if v.is_floating_point() else v for k, v in first["model"].items()}
    last = first
    for path in paths[1:]:
        last = read_checkpoint(path)
        for part in ("model", "features"):
            if last["config"][part] != first["config"][part]:
                raise CheckpointError(f"{path}: its {part} config differs from {paths[0]}'s; cannot average")
        if last["config"]["vocabulary"] != first["config"]["vocabulary"]:
            raise CheckpointError(f"{path}: its vocabulary differs from {paths[0]}'s; cannot average")
        for k, v in last["model"].items():
            total[k] = total[k] + v.double() if v.is_floating_point() else v
    model = {k: (v / len(paths)).to(first["model"][k].dtype) if v.is_floating_point() else v for k, v in total.items()}
    state = {
        "format": FORMAT,
        "version": VERSION,
        "config": first["config"],
        "model": model,
        "features": last["features"],
        "averaged_from": [str(p) for p in paths],
    }
    out = Path(out)
    _write_atomic(state, out)
    return out
