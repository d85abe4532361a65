"""Acoustic model: 2-D conv front-end → stacked (Bi)LSTM → linear CTC head.

Shapes: features ``(batch, frames, n_mels)`` → log-probabilities
``(batch, frames // time_subsampling * output_frames (see output_lengths), vocab)``.

The unidirectional variant adds a lookahead *row convolution* (DeepSpeech2 §3.5): each
output frame sees ``lookahead`` future frames of the last LSTM layer, so streaming latency
is bounded by ``lookahead`` output frames plus the conv front-end's one-frame context.
"""

from __future__ import annotations

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
    ``y[t] = sum_{j=0..lookahead} w_j * x[t + j]``. ``(B, T, D)`` → ``(B, T, D)``."""

    def __init__(self, dim: int, lookahead: int) -> None:
        super().__init__()
        self.lookahead = lookahead
        self.conv = nn.Conv1d(dim, dim, lookahead + 1, groups=dim, bias=False)

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


class LSTMLayer(nn.Module):
    """One LSTM layer over a padded batch ``(B, T, D_in)`` → ``(B, T, H * directions)``.

    No ``PackedSequence``: variable-length packing sends PyTorch's CPU LSTM down a
    per-step path several times slower than the fused (oneDNN) one. Instead the backward
    direction runs forward over each sequence reversed within its length, so padding
    only ever follows the valid frames and never reaches them, in either direction.
    """

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool) -> None:
        super().__init__()
        self.forward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True)
        self.backward_lstm = nn.LSTM(input_size, hidden_size, batch_first=True) if bidirectional else None

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        out, _ = self.forward_lstm(x)
        if self.backward_lstm is None:
            return out
        back, _ = self.backward_lstm(reverse_padded(x, lengths))
        return torch.cat([out, reverse_padded(back, lengths)], dim=-1)


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
        self.lstms = nn.ModuleList()
        self.norms = nn.ModuleList()
        size = self.frontend.output_size
        for _ in range(cfg.num_layers):
            self.lstms.append(LSTMLayer(size, cfg.hidden_size, cfg.bidirectional))
            size = cfg.hidden_size * directions
            self.norms.append(nn.LayerNorm(size))
        self.dropout = nn.Dropout(cfg.dropout)
        self.rowconv = RowConvolution(size, cfg.lookahead) if not cfg.bidirectional and cfg.lookahead > 0 else None
        self.head = nn.Linear(size, vocab_size * cfg.output_frames)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.frontend(feats, lengths)
        k = self.cfg.output_frames
        lstm_lengths = torch.div(output_lengths(lengths, self.cfg), k, rounding_mode="floor").clamp(1, x.shape[1])
        for lstm, norm in zip(self.lstms, self.norms, strict=True):
            x = self.dropout(norm(lstm(x, lstm_lengths)))
        if self.rowconv is not None:  # future context past the end is zeros, as in streaming
            valid = torch.arange(x.shape[1], device=x.device)[None, :] < lstm_lengths[:, None].to(x.device)
            x = self.rowconv(x * valid.unsqueeze(-1))
        logits = self.head(x)  # (B, T', k * V) -> (B, k * T', V)
        logits = logits.reshape(x.shape[0], x.shape[1] * k, -1)
        return logits.log_softmax(-1), lstm_lengths * k

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
