"""CTC decoding. Greedy (best path): argmax per frame, merge repeats, drop blanks."""

from __future__ import annotations

import torch

from asr.text import Vocabulary


def greedy_ids(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> list[list[int]]:
    """Best-path token ids per utterance. ``log_probs (B, T, V)``, ``lengths (B,)`` frames."""
    best = log_probs.argmax(-1).cpu()
    out = []
    for seq, n in zip(best, lengths.cpu().tolist(), strict=True):
        seq = seq[:n]
        if n:
            keep = torch.ones(n, dtype=torch.bool)
            keep[1:] = seq[1:] != seq[:-1]
            seq = seq[keep & (seq != blank)]
        out.append(seq.tolist())
    return out


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor, vocab: Vocabulary) -> list[str]:
    """Greedy transcripts, one per utterance, with whitespace tidied."""
    return [" ".join(vocab.decode(ids).split()) for ids in greedy_ids(log_probs, lengths, vocab.blank)]
