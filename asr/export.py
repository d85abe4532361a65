"""Deployment exports: one graph from 16 kHz waveforms to CTC log-probabilities, and int8.

- :func:`export_torchscript` writes a traced TorchScript module; :func:`load_torchscript`
  reads it back with its metadata.
- :func:`export_onnx` writes an ONNX model (opset :data:`ONNX_OPSET`, STFT included);
  :func:`load_onnx` opens it in onnxruntime with its metadata.
- :func:`quantize_int8` gives a copy of a model whose LSTM/GRU and linear layers run as
  dynamic int8 on CPU (``torch.ao.quantization``).

Every export maps ``waveforms (batch, samples)`` float32 at the feature sample rate and
``lengths (batch,)`` int64 samples to ``log_probs (batch, frames, vocab)`` (blank at index 0)
and ``out_lengths (batch,)`` valid frames, as :func:`asr.transcribe.log_probs_of` does.
Two differences, both from tracing: the number of output frames follows the padded
waveform length (frames past ``out_lengths`` are padding; identical to ``log_probs_of``
when the longest utterance fills the batch), and waveforms must be at least ``n_fft``
samples long.

The metadata (features, model config, vocabulary, input/output description) is JSON
under the key :data:`METADATA_KEY`: an extra file in the TorchScript archive and a
``metadata_props`` entry in the ONNX model. ONNX needs ``pip install asr[export]``.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import io
import json
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from asr.checkpoint import LoadedModel
from asr.features import LOG_FLOOR, FeaturePipeline, LogMel, num_frames
from asr.files import atomic_path, marker_problem
from asr.model import RNN_CELLS

FORMAT = "asr-export"
VERSION = 1
METADATA_KEY = "asr.json"
ONNX_OPSET = 17  # the first opset with STFT
FORMATS = ("torchscript", "onnx")
EXTRA_HINT = "pip install asr[export]"

# Example batch the graphs are traced with, and a different one they are checked with.
TRACE_SECONDS = (1.0, 0.75)
CHECK_SECONDS = (1.3, 0.6, 1.1)
CHECK_ATOL = 1e-4


class ExportError(ValueError):
    """An export that cannot be written or read; the message names the file and the problem."""


def metadata(loaded: LoadedModel) -> dict[str, Any]:
    """What a user of an exported model needs besides the graph, as JSON-ready data."""
    cfg = loaded.config
    return {
        "format": FORMAT,
        "version": VERSION,
        "features": dataclasses.asdict(cfg.features),
        "model": dataclasses.asdict(cfg.model),
        "vocabulary": loaded.vocab.symbols,  # index -> symbol; 0 is the CTC blank
        "blank": loaded.vocab.blank,
        "sample_rate": cfg.features.sample_rate,
        "seconds_per_frame": cfg.seconds_per_frame,
        "inputs": {"waveforms": "float32 (batch, samples)", "lengths": "int64 (batch,) samples"},
        "outputs": {"log_probs": "float32 (batch, frames, vocab)", "out_lengths": "int64 (batch,) frames"},
    }


class _TraceableLogMel(nn.Module):
    """:class:`~asr.features.LogMel` without its data-dependent trim to the longest
    utterance (a trace would freeze the trimmed length), optionally with a real-valued
    STFT (the TorchScript-based ONNX exporter cannot export complex tensors)."""

    def __init__(self, logmel: LogMel, real_stft: bool) -> None:
        super().__init__()
        spec = logmel.mel.spectrogram
        if spec.center or spec.pad or spec.normalized or spec.power != 2.0:
            raise ExportError("export supports power-2, uncentred, unnormalized spectrograms only")
        self.cfg = logmel.cfg
        self.mel = logmel.mel
        self.real_stft = real_stft

    def power(self, waveforms: torch.Tensor) -> torch.Tensor:
        """``(B, S)`` → power spectra ``(B, n_fft // 2 + 1, T)``."""
        spec = self.mel.spectrogram
        if not self.real_stft:
            return spec(waveforms)
        stft = torch.stft(
            waveforms, spec.n_fft, spec.hop_length, spec.win_length, spec.window, center=False, return_complex=False
        )  # (B, F, T, 2): real and imaginary parts
        return stft.pow(2).sum(-1)

    def forward(
        self, waveforms: torch.Tensor, lengths: torch.Tensor, warp: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, S)``, ``(B,)`` samples → ``(B, T, n_mels)`` with ``T`` from ``S``, ``(B,)`` frames."""
        feats = torch.log(self.mel.mel_scale(self.power(waveforms)) + LOG_FLOOR).transpose(1, 2)
        return feats, num_frames(lengths, self.cfg)


class WaveformModel(nn.Module):
    """Feature pipeline and acoustic model in one module, on CPU, for tracing.

    ``forward(waveforms (B, S), lengths (B,))`` → ``(log_probs (B, T', V), out_lengths (B,))``.
    Holds copies: the ``loaded`` modules are left as they were.
    """

    def __init__(self, loaded: LoadedModel, real_stft: bool = False) -> None:
        super().__init__()
        features: FeaturePipeline = copy.deepcopy(loaded.features).cpu().eval()
        features.logmel = _TraceableLogMel(features.logmel, real_stft)
        self.features = features
        self.model = copy.deepcopy(loaded.model).cpu().eval()

    def forward(self, waveforms: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats, frames = self.features(waveforms, lengths)
        return self.model(feats, frames)


def example_batch(sample_rate: int, seconds: tuple[float, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise ``waveforms (B, S)`` and ``lengths (B,)`` of the given durations, zero-padded."""
    lengths = torch.tensor([round(s * sample_rate) for s in seconds])
    waveforms = 0.1 * torch.randn(len(seconds), int(lengths.max()), generator=torch.Generator().manual_seed(seed))
    waveforms *= torch.arange(waveforms.shape[1])[None, :] < lengths[:, None]
    return waveforms, lengths


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the tracer's and exporters' expected warnings (TorchScript and the legacy
    ONNX exporter are deprecated in torch 2.14; data-dependent values are checked by
    :func:`_check_trace` and the tests), also under ``-W error``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def _out_path(out_path: str | Path) -> Path:
    """``out_path`` with its folder created; :class:`ExportError` when it cannot be written."""
    out_path = Path(out_path)
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ExportError(f"{out_path}: cannot create the output directory: {e.strerror or e}") from None
    if not os.access(out_path.parent, os.W_OK | os.X_OK):
        raise ExportError(f"{out_path}: output directory {out_path.parent} is not writable")
    if out_path.is_dir():
        raise ExportError(f"{out_path}: is a directory; give a file name")
    return out_path


def _write_atomic(out_path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)``, then move ``tmp`` to ``out_path``: no half-written exports."""
    try:
        with atomic_path(out_path) as tmp:
            write(tmp)
    except OSError as e:
        raise ExportError(f"{out_path}: cannot write: {e.strerror or e}") from None
    return out_path


def _check_trace(eager: WaveformModel, traced: Callable[..., Any], sample_rate: int) -> None:
    """Compare ``traced`` with ``eager`` on a batch of another size and lengths than the trace's."""
    waveforms, lengths = example_batch(sample_rate, CHECK_SECONDS, seed=1)
    with torch.no_grad():
        want, want_lengths = eager(waveforms, lengths)
        got, got_lengths = traced(waveforms, lengths)
    if got.shape != want.shape or not torch.equal(got_lengths, want_lengths):
        raise ExportError(f"traced model gives shape {tuple(got.shape)}, expected {tuple(want.shape)}")
    if not torch.allclose(got, want, atol=CHECK_ATOL, rtol=0):
        raise ExportError(f"traced model differs from the eager one by {(got - want).abs().max():.2g}")


def export_torchscript(loaded: LoadedModel, out_path: str | Path) -> Path:
    """Trace features + model into ``out_path`` (a TorchScript archive) with metadata.

    The module maps ``(waveforms (B, S) float32, lengths (B,) int64)`` to ``(log_probs
    (B, T', V), out_lengths (B,))``; it is checked against the eager model on a batch of
    another size before it is written. Works for :func:`quantize_int8` models too.
    """
    out_path = _out_path(out_path)
    rate = loaded.config.features.sample_rate
    module = WaveformModel(loaded)
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(module, example_batch(rate, TRACE_SECONDS), check_trace=False)
    _check_trace(module, traced, rate)
    extra = {METADATA_KEY: json.dumps(metadata(loaded))}
    with _quiet():
        return _write_atomic(out_path, lambda tmp: torch.jit.save(traced, str(tmp), _extra_files=extra))


def _read_metadata(path: Path, text: str | bytes) -> dict[str, Any]:
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as e:
        raise ExportError(f"{path}: unreadable {METADATA_KEY} metadata: {e}") from None
    problem = marker_problem(meta, path, FORMAT, VERSION, "export")
    if problem:
        raise ExportError(problem)
    return meta


def load_torchscript(path: str | Path) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """The module written by :func:`export_torchscript` (on CPU, eval mode) and its metadata."""
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    extra = {METADATA_KEY: ""}
    try:
        with _quiet():
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except RuntimeError as e:
        raise ExportError(f"{path}: not a TorchScript archive: {str(e).splitlines()[0]}") from None
    if not extra[METADATA_KEY]:
        raise ExportError(f"{path}: not an asr export (no {METADATA_KEY} inside)")
    return module.eval(), _read_metadata(path, extra[METADATA_KEY])


def _require(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError:
        raise ExportError(f"ONNX export needs the '{module}' package: {EXTRA_HINT}") from None


def _is_quantized(model: nn.Module) -> bool:
    return any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in model.modules())


def export_onnx(loaded: LoadedModel, out_path: str | Path, opset: int = ONNX_OPSET) -> Path:
    """Export features + model to ONNX with dynamic batch, sample and frame axes.

    Inputs ``waveforms`` float32 ``(batch, samples)`` and ``lengths`` int64 ``(batch,)``;
    outputs ``log_probs`` ``(batch, frames, vocab)`` and ``out_lengths`` ``(batch,)``; the
    metadata JSON is the ``metadata_props`` entry :data:`METADATA_KEY`.

    Uses the TorchScript-based exporter (``dynamo=False``) with a real-valued STFT (the ONNX
    STFT op). In torch 2.14 the ``torch.export`` exporter (``dynamo=True``, onnxscript
    0.7) took three minutes for a tiny model and wrote a graph that onnxruntime rejects for
    any other number of samples than the example's (a bad ``Expand`` shape in the
    backward-LSTM reversal).
    """
    onnx = _require("onnx")
    if _is_quantized(loaded.model):
        raise ExportError(f"{out_path}: int8 (quantize_int8) models export to TorchScript only")
    out_path = _out_path(out_path)
    module = WaveformModel(loaded, real_stft=True)
    buffer = io.BytesIO()
    with _quiet(), torch.no_grad():
        torch.onnx.export(
            module,
            example_batch(loaded.config.features.sample_rate, TRACE_SECONDS),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=["waveforms", "lengths"],
            output_names=["log_probs", "out_lengths"],
            dynamic_axes={
                "waveforms": {0: "batch", 1: "samples"},
                "lengths": {0: "batch"},
                "log_probs": {0: "batch", 1: "frames"},
                "out_lengths": {0: "batch"},
            },
        )
    proto = onnx.load_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, {METADATA_KEY: json.dumps(metadata(loaded))})
    return _write_atomic(out_path, lambda tmp: onnx.save(proto, str(tmp)))


def load_onnx(path: str | Path) -> tuple[Any, dict[str, Any]]:
    """An ``onnxruntime.InferenceSession`` (CPU) for :func:`export_onnx`'s file, and its metadata."""
    ort = _require("onnxruntime")
    path = Path(path)
    if not path.is_file():
        raise ExportError(f"{path}: no such file")
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise ExportError(f"{path}: not a loadable ONNX model: {str(e).splitlines()[0]}") from None
    props = session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in props:
        raise ExportError(f"{path}: not an asr export (no {METADATA_KEY} metadata)")
    return session, _read_metadata(path, props[METADATA_KEY])


def quantize_int8(loaded: LoadedModel) -> LoadedModel:
    """A copy of ``loaded`` on CPU whose recurrent and linear layers are dynamically quantized to
    int8 (weights int8, activations quantized per batch); ``loaded`` is left unchanged.

    Activations are quantized per call over the whole ``(batch, time, dim)`` tensor, so
    unlike the fp32 model an utterance's int8 outputs depend slightly on its batch mates.

    Uses ``torch.ao.quantization.quantize_dynamic``, deprecated in torch 2.14 in favour of
    torchao (whose int8 API covers ``nn.Linear`` but not ``nn.LSTM``); its warnings are
    silenced here.
    """
    model = copy.deepcopy(loaded.model).cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", UserWarning)
        kinds = {*RNN_CELLS.values(), nn.Linear}
        model = torch.ao.quantization.quantize_dynamic(model, kinds, dtype=torch.qint8, inplace=True)
    features = copy.deepcopy(loaded.features).cpu().eval()
    return dataclasses.replace(loaded, model=model, features=features)


_EXPORTERS: dict[str, Callable[[LoadedModel, Path], Path]] = {
    "torchscript": export_torchscript,
    "onnx": export_onnx,
}


def export(loaded: LoadedModel, out_path: str | Path, fmt: str) -> Path:
    """Export ``loaded`` to ``out_path`` in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt not in _EXPORTERS:
        raise ExportError(f"{out_path}: unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    return _EXPORTERS[fmt](loaded, Path(out_path))
