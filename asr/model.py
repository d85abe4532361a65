"""Acoustic model: 2-D conv front-end → stacked (Bi)LSTM or GRU → linear CTC head.

Shapes: features ``(batch, frames, n_mels)`` → log-probabilities
``(batch, frames // time_subsampling * output_frames (see output_lengths), vocab)``.

The unidirectional variant adds a lookahead *row convolution* (DeepSpeech2 §3.5): each
output frame sees ``lookahead`` future frames of the last recurrent layer, so streaming
latency is bounded by ``lookahead`` output frames plus the conv front-end's one-frame
context. It streams through :meth:`AcousticModel.step` from :meth:`~AcousticModel.initial_state`,
with outputs equal to :meth:`~AcousticModel.forward`'s over any chunking.

A new cell type is an entry in :data:`RNN_CELLS` (any module with ``nn.LSTM``'s calling
convention) and in :data:`asr.config.CELLS`.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from asr.config import FeatureConfig, ModelConfig

CONV_KERNEL = 3
CONV_STRIDE = 2
CONV_PADDING = 1


def output_lengths(frames: torch.Tensor, cfg: ModelConfig) -> torch.Tensor:
    """Output frames of the model for ``frames`` input frames: each conv layer maps
    ``T`` to ``(T + 2*pad - kernel) // stride + 1`` with its time stride."""
    for stride in cfg.time_strides():
        frames = torch.div(frames + 2 * CONV_PADDING - CONV_KERNEL, stride, rounding_mode="floor") + 1
    return frames.clamp(min=0) * cfg.output_frames


class ConvFrontEnd(nn.Module):
    """``(B, T, F)`` → ``(B, T', C * F')``: 3x3 convolutions, stride 2 in frequency and
    ``cfg.time_strides()`` in time, each followed by a per-frame layer norm over
    ``(C, F')`` and a clipped ReLU.

    Padded frames are zeroed after every layer, so an utterance's output never depends on
    how much padding its batch added or on the other utterances in it (unlike batch norm):
    one process and N data-parallel processes compute the same gradients, and training,
    offline decoding and streaming see the same numbers.
    """

    def __init__(self, n_mels: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.strides = cfg.time_strides()
        channels, freq = 1, n_mels
        for time_stride in self.strides:
            stride = (time_stride, CONV_STRIDE)
            self.convs.append(nn.Conv2d(channels, cfg.conv_channels, CONV_KERNEL, stride, CONV_PADDING))
            channels = cfg.conv_channels
            freq = (freq + 2 * CONV_PADDING - CONV_KERNEL) // CONV_STRIDE + 1
            self.norms.append(nn.LayerNorm([channels, freq]))
        self.output_size = channels * freq
        self.subsampling = math.prod(self.strides)
        self.lead = next(n for n in itertools.count() if self._first_input(n) >= 0)

    def _first_input(self, k: int) -> int:
        """The first input frame output frame ``k``'s receptive field reaches (negative: left padding)."""
        for stride in reversed(self.strides):
            k = stride * k - CONV_PADDING
        return k

    def last_input(self, k: int) -> int:
        """The last input frame output frame ``k`` depends on."""
        for stride in reversed(self.strides):
            k = stride * k + CONV_KERNEL - 1 - CONV_PADDING
        return k

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``feats (B, T, F)``, ``lengths (B,)`` frames → ``(B, T', C * F')``."""
        x = feats.unsqueeze(1)  # (B, 1, T, F)
        for conv, norm, stride in zip(self.convs, self.norms, self.strides, strict=True):
            x = conv(x)  # (B, C, T', F')
            lengths = torch.div(lengths + 2 * CONV_PADDING - CONV_KERNEL, stride, rounding_mode="floor") + 1
            x = norm(x.transpose(1, 2)).clamp(0, 20)  # (B, T', C, F')
            valid = torch.arange(x.shape[1], device=x.device)[None, :] < lengths.to(x.device)[:, None]
            x = (x * valid[:, :, None, None]).transpose(1, 2)
        return x.transpose(1, 2).flatten(2)


class RowConvolution(nn.Module):
    """Depthwise convolution over time looking ``lookahead`` frames into the future:
    ``y[t] = sum_{j=0..lookahead} w_j * x[t + j]``. ``(B, T, D)`` → ``(B, T, D)``.

    It starts as the identity (``w_0 = 1``, the future taps 0), so a new model begins as one
    without lookahead and learns how much of the future to use. Conv1d's default init mixes
    each channel's next frames with random signs (|w_j| ~ 0.25 for every tap); the training
    steps of a short budget never undo it, and the demo's streaming model stayed all blank
    (dev CER 94.6 % after one epoch, against 65.8 % from the identity: recipes/synthetic/RESULTS.md).
    """

    def __init__(self, dim: int, lookahead: int) -> None:
        super().__init__()
        self.lookahead = lookahead
        self.conv = nn.Conv1d(dim, dim, lookahead + 1, groups=dim, bias=False)
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.weight[:, 0, 0] = 1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.pad(x.transpose(1, 2), (0, self.lookahead))
        return self.conv(x).transpose(1, 2)


def reverse_padded(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse each sequence of ``x (B, T, D)`` within its own length, padding left in place.

    Its own inverse: ``reverse_padded(reverse_padded(x, n), n) == x``.
    """
    steps = torch.arange(x.shape[1], device=x.device)[None, :]
    lengths = lengths.to(x.device)[:, None]
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class RecurrentLayer(nn.Module):
    """One LSTM or GRU layer over a padded batch ``(B, T, D_in)`` → ``(B, T, H * directions)``.

    Two kernels for the bidirectional layer, with the same parameters (so a checkpoint
    moves freely between them) and the same outputs on valid frames:

    - ``padded`` (CPU): no ``PackedSequence``, since packing sends PyTorch's CPU LSTM down
      a per-step path several times slower than the fused (oneDNN) one. The backward
      direction runs forward over each sequence reversed within its length, so padding
      only ever follows the valid frames and never reaches them, in either direction.
    - ``packed`` (CUDA): one bidirectional call over a ``PackedSequence``, which cuDNN
      runs as both directions at once; padded frames come out as zeros.

    :attr:`kernel` picks one: ``auto`` (packed on CUDA, padded elsewhere), ``padded`` or
    ``packed``. Unidirectional layers always run padded (their padding follows the frames).
    """

    kernel = "auto"

    def __init__(self, cell: str, input_size: int, hidden_size: int, bidirectional: bool) -> None:
        super().__init__()
        rnn = RNN_CELLS[cell]
        self.forward_rnn = rnn(input_size, hidden_size, batch_first=True)
        self.backward_rnn = rnn(input_size, hidden_size, batch_first=True) if bidirectional else None
        # the packed kernel's module: its parameters are this layer's, swapped in per call
        # (a list, so that it is not a submodule: no parameters, state or device of its own)
        self._both = []
        if bidirectional:
            self._both.append(rnn(input_size, hidden_size, batch_first=True, bidirectional=True, device="meta"))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.backward_rnn is None:
            return self.forward_rnn(x)[0]
        if self.kernel == "packed" or (self.kernel == "auto" and x.is_cuda):
            return self._packed(x, lengths)
        out, _ = self.forward_rnn(x)
        back, _ = self.backward_rnn(reverse_padded(x, lengths))
        return torch.cat([out, reverse_padded(back, lengths)], dim=-1)

    def _packed(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The bidirectional layer as one call over the packed batch (cuDNN on CUDA)."""
        params = dict(self.forward_rnn.named_parameters())
        params |= {f"{name}_reverse": p for name, p in self.backward_rnn.named_parameters()}
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        with warnings.catch_warnings():  # weights not in one flat buffer: cuDNN packs them per call
            warnings.filterwarnings("ignore", message="RNN module weights are not part")
            out, _ = torch.func.functional_call(self._both[0], params, (packed,))
        return nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0]

    def step(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Unidirectional only: ``x (T, D_in)`` frames after those ``state`` has seen →
        ``(T, H)`` outputs and the state after them (the cell's own: LSTM ``(h, c)``, GRU
        ``h``; None at the start)."""
        out, state = self.forward_rnn(x[None], state)
        return out[0], state


RNN_CELLS: dict[str, type[nn.Module]] = {"lstm": nn.LSTM, "gru": nn.GRU}


@dataclass(frozen=True)
class StreamState:
    """Where one stream is inside the model, between :meth:`AcousticModel.step` calls.

    ``feats (n, n_mels)`` are the input frames the conv window still needs, starting at
    stream frame ``first``; ``frames`` counts all input frames received; ``consumed`` the
    conv-output frames already run through the recurrent layers, whose states are
    ``recurrent`` (one per layer, the cell's own, None before the first frame);
    ``pending (n, D)`` the top-layer outputs still waiting for their row-conv lookahead.
    """

    feats: torch.Tensor
    first: int
    frames: int
    consumed: int
    recurrent: tuple[Any, ...]
    pending: torch.Tensor

    @property
    def nbytes(self) -> int:
        """Memory the state holds: its buffers and every layer's recurrent tensors."""
        tensors = [self.feats, self.pending]
        for carried in self.recurrent:
            tensors += [carried] if isinstance(carried, torch.Tensor) else list(carried or ())
        return sum(t.numel() * t.element_size() for t in tensors)


class AcousticModel(nn.Module):
    """DeepSpeech2-style CTC model. ``forward(feats, lengths)`` → ``(log_probs, out_lengths)``.

    ``feats`` are normalized log-mels ``(B, T, n_mels)``; ``log_probs`` are
    ``(B, T', vocab_size)`` with blank at index 0.
    """

    def __init__(self, features: FeatureConfig, cfg: ModelConfig, vocab_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.frontend = ConvFrontEnd(features.n_mels, cfg)
        directions = 2 if cfg.bidirectional else 1
        self.rnns = nn.ModuleList()
        self.norms = nn.ModuleList()
        size = self.frontend.output_size
        for _ in range(cfg.num_layers):
            self.rnns.append(RecurrentLayer(cfg.cell, size, cfg.hidden_size, cfg.bidirectional))
            size = cfg.hidden_size * directions
            self.norms.append(nn.LayerNorm(size))
        self.dropout = nn.Dropout(cfg.dropout)
        self.rowconv = RowConvolution(size, cfg.lookahead) if not cfg.bidirectional and cfg.lookahead > 0 else None
        self.head = nn.Linear(size, vocab_size * cfg.output_frames)
        self.n_mels, self.vocab_size = features.n_mels, vocab_size
        self.register_load_state_dict_pre_hook(_rename_lstm_keys)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.frontend(feats, lengths)
        k = self.cfg.output_frames
        lstm_lengths = torch.div(output_lengths(lengths, self.cfg), k, rounding_mode="floor").clamp(1, x.shape[1])
        for rnn, norm in zip(self.rnns, self.norms, strict=True):
            x = self.dropout(norm(rnn(x, lstm_lengths)))
        if self.rowconv is not None:  # future context past the end is zeros, as in streaming
            valid = torch.arange(x.shape[1], device=x.device)[None, :] < lstm_lengths[:, None].to(x.device)
            x = self.rowconv(x * valid.unsqueeze(-1))
        logits = self.head(x)  # (B, T', k * V) -> (B, k * T', V)
        logits = logits.reshape(x.shape[0], x.shape[1] * k, -1)
        return logits.log_softmax(-1), lstm_lengths * k

    # ------------------------------------------------------------------------- streaming

    def initial_state(self) -> StreamState:
        """The state of a stream that has heard nothing (see :meth:`step`)."""
        if self.cfg.bidirectional:
            raise ValueError(
                "streaming needs a unidirectional model (model.bidirectional false); this one is bidirectional"
            )
        device = next(self.parameters()).device
        empty = torch.zeros(0, self.n_mels, device=device)
        return StreamState(
            empty, 0, 0, 0, (None,) * len(self.rnns), torch.zeros(0, self.head.in_features, device=device)
        )

    @torch.no_grad()
    def step(self, feats: torch.Tensor, state: StreamState, final: bool = False) -> tuple[torch.Tensor, StreamState]:
        """Streaming inference (unidirectional models, eval mode): ``feats (T, n_mels)``, the
        input frames that follow those ``state`` has seen (any number, 0 included) →
        ``log_probs (T', vocab)``, the output frames that are final now, and the new state.

        With ``final`` the stream ends after ``feats``: the rest is computed as if no more
        frames followed (the returned state is spent). The concatenated outputs of a
        stream's steps equal :meth:`forward` on all its frames, whatever the chunking.
        ``state`` itself is never changed, so a caller may look ahead with ``final`` and
        carry on from the old state.

        Each step computes only new work: the conv front-end over the few frames its
        receptive field needs, the recurrent layers over the new conv outputs from the
        carried states, the row convolution once a frame's lookahead exists.
        """
        frontend, k = self.frontend, self.cfg.output_frames
        frames = state.frames + len(feats)
        feats = torch.cat([state.feats, feats.to(state.feats)])
        if final:
            stop = int(output_lengths(torch.tensor([frames]), self.cfg)) // k if frames else 0
        else:
            stop = state.consumed
            while frontend.last_input(stop) < frames:
                stop += 1
        x, recurrent = feats.new_zeros(0, self.head.in_features), state.recurrent
        if stop > state.consumed:
            sub = frontend.subsampling
            start = max(0, sub * (state.consumed - frontend.lead))  # the window: inexact lead included
            window = feats[start - state.first :]
            conv = frontend(window[None], torch.tensor([len(window)], device=feats.device))[0]
            x = conv[state.consumed - start // sub : stop - start // sub]
            states = []
            with _ONEDNN_OFF if x.device.type == "cpu" else contextlib.nullcontext():
                for rnn, norm, carried in zip(self.rnns, self.norms, recurrent, strict=True):
                    out, carried = rnn.step(x, carried)
                    x = norm(out)
                    states.append(carried)
            recurrent = tuple(states)
        pending = torch.cat([state.pending, x])
        if self.rowconv is not None:
            lookahead = self.rowconv.lookahead
            if final:
                pending = torch.cat([pending, pending.new_zeros(lookahead, pending.shape[1])])
            ready = len(pending) - lookahead
            x = self.rowconv.conv(pending.T[None])[0].T if ready > 0 else pending[:0]
            pending = pending[max(ready, 0) :] if not final else pending[:0]
        else:
            x, pending = pending, pending[:0]
        log_probs = self.head(x).reshape(len(x) * k, self.vocab_size).log_softmax(-1)
        keep = max(state.first, frontend.subsampling * (stop - frontend.lead))  # the next window's start
        return log_probs, StreamState(feats[keep - state.first :], keep, frames, stop, recurrent, pending)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def _rename_lstm_keys(module: nn.Module, state_dict: dict, prefix: str, *args: object) -> None:
    """Checkpoints from before GRU cells name the layers ``lstms.N.forward_lstm``/``backward_lstm``."""
    for key in [k for k in state_dict if k.startswith(prefix + "lstms.")]:
        new = prefix + "rnns." + key[len(prefix + "lstms.") :]
        new = new.replace(".forward_lstm.", ".forward_rnn.").replace(".backward_lstm.", ".backward_rnn.")
        state_dict[new] = state_dict.pop(key)


class _OneDnnOff:
    """oneDNN off while any thread is inside (a process-wide switch, counted so that streams
    in several threads, as in ``asr serve``, never flip it for each other); back to what it
    was when the last one leaves. Use the one instance, :data:`_ONEDNN_OFF`.

    For :meth:`AcousticModel.step` on CPU: oneDNN's LSTM re-packs the weights on every call
    (a few frames each when streaming), ATen's does not."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = 0
        self.before = True

    def __enter__(self) -> None:
        with self.lock:
            if self.inside == 0:
                self.before = torch.backends.mkldnn.enabled
                torch.backends.mkldnn.enabled = False
            self.inside += 1

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.inside -= 1
            if self.inside == 0:
                torch.backends.mkldnn.enabled = self.before


_ONEDNN_OFF = _OneDnnOff()
