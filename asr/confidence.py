"""Word confidence: how well it tells right words from wrong ones, and its calibration.

Each word of a decoded hypothesis carries a raw confidence: the geometric mean of its
characters' posteriors along the CTC alignment (:mod:`asr.decoding`). Raw, it ranks words
usefully but is not a probability: a peaked model calls most of its wrong words 0.9. Here
words are labelled right or wrong against references (the WER alignment), the raw scores
are measured by expected calibration error (ECE: the gap between confidence and accuracy,
over equal-width bins, weighted by words) and AUROC (the chance that a random right word
scores above a random wrong one), and a monotone map to calibrated confidence is fitted on
dev: isotonic regression (pool adjacent violators, interpolated between blocks) or
temperature scaling (Platt: ``sigmoid(a logit(p) + b)``). ``asr tune-lm`` stores the fitted
:class:`Calibration` next to the LM weights; every command given ``--tuned`` applies it.
A monotone map leaves AUROC as it was (up to ties) and fixes ECE.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jiwer
import numpy as np

from asr.files import write_text

METHODS = ("isotonic", "temperature")
_EPS = 1e-4  # calibrated confidences stay in [_EPS, 1 - _EPS]: a log loss stays finite


def word_labels(ref: str, hyp: Sequence[str]) -> list[bool]:
    """For each word of ``hyp``: whether the WER alignment against ``ref`` matches it to the
    same reference word (substitutions and insertions are wrong)."""
    if not hyp:
        return []
    out = jiwer.process_words(ref if ref.strip() else " ", " ".join(hyp))
    right = [False] * len(hyp)
    for chunk in out.alignments[0]:
        if chunk.type == "equal":
            right[chunk.hyp_start_idx : chunk.hyp_end_idx] = [True] * (chunk.hyp_end_idx - chunk.hyp_start_idx)
    return right


def expected_calibration_error(confidence: np.ndarray, right: np.ndarray, bins: int = 10) -> float:
    """ECE of ``confidence (N,)`` against 0/1 ``right (N,)``: sum over ``bins`` equal-width
    bins of (words in bin / N) * |accuracy - mean confidence|."""
    confidence, right = np.asarray(confidence, float), np.asarray(right, float)
    if len(confidence) == 0:
        return math.nan
    which = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            total += mask.sum() * abs(right[mask].mean() - confidence[mask].mean())
    return float(total / len(confidence))


def auroc(confidence: np.ndarray, right: np.ndarray) -> float:
    """Area under the ROC curve of ``confidence`` as a detector of right words (ties count
    half); NaN when every word is right or every word wrong."""
    confidence, right = np.asarray(confidence, float), np.asarray(right, bool)
    n_right, n_wrong = int(right.sum()), int((~right).sum())
    if n_right == 0 or n_wrong == 0:
        return math.nan
    order = np.argsort(confidence, kind="mergesort")
    ranks = np.empty(len(confidence))
    sorted_conf = confidence[order]
    start = 0
    while start < len(sorted_conf):  # average ranks over ties
        end = start
        while end + 1 < len(sorted_conf) and sorted_conf[end + 1] == sorted_conf[start]:
            end += 1
        ranks[order[start : end + 1]] = (start + end) / 2 + 1
        start = end + 1
    return float((ranks[right].sum() - n_right * (n_right + 1) / 2) / (n_right * n_wrong))


@dataclass(frozen=True)
class Calibration:
    """A monotone map from raw to calibrated word confidence. ``isotonic``: piecewise linear
    through the points ``(x, y)`` (flat outside them); ``temperature``:
    ``sigmoid(a * logit(p) + b)``."""

    method: str
    x: tuple[float, ...] = ()
    y: tuple[float, ...] = ()
    a: float = 1.0
    b: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"confidence calibration method {self.method!r} is not one of {', '.join(METHODS)}")
        if self.method == "isotonic" and (len(self.x) != len(self.y) or not self.x):
            raise ValueError("isotonic confidence calibration needs as many x as y points, at least one")

    def apply(self, confidence: np.ndarray | float) -> np.ndarray:
        """Calibrated confidences, same shape as ``confidence``."""
        p = np.clip(np.asarray(confidence, float), _EPS, 1 - _EPS)
        if self.method == "isotonic":
            out = np.interp(p, self.x, self.y)
        else:
            out = 1 / (1 + np.exp(-(self.a * np.log(p / (1 - p)) + self.b)))
        return np.clip(out, _EPS, 1 - _EPS)

    def to_dict(self) -> dict[str, Any]:
        if self.method == "isotonic":
            return {"method": self.method, "x": [round(v, 5) for v in self.x], "y": [round(v, 5) for v in self.y]}
        return {"method": self.method, "a": self.a, "b": self.b}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        """Inverse of :meth:`to_dict`; ValueError on anything else."""
        try:
            return cls(
                str(data["method"]),
                tuple(map(float, data.get("x", ()))),
                tuple(map(float, data.get("y", ()))),
                float(data.get("a", 1.0)),
                float(data.get("b", 0.0)),
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"not a confidence calibration ({e!r})") from None


def fit_calibration(confidence: np.ndarray, right: np.ndarray, method: str = "isotonic") -> Calibration:
    """The ``method`` map fitted to raw ``confidence (N,)`` and 0/1 ``right (N,)`` (dev words)."""
    p = np.clip(np.asarray(confidence, float), _EPS, 1 - _EPS)
    y = np.asarray(right, float)
    if len(p) < 2:
        raise ValueError(f"calibrating word confidence needs at least 2 words, got {len(p)}")
    if method == "isotonic":
        return _isotonic(p, y)
    if method == "temperature":
        return _platt(p, y)
    raise ValueError(f"confidence calibration method {method!r} is not one of {', '.join(METHODS)}")


def _isotonic(p: np.ndarray, y: np.ndarray) -> Calibration:
    """Pool adjacent violators over words sorted by confidence; each block becomes the point
    (its mean confidence, its accuracy)."""
    order = np.argsort(p, kind="mergesort")
    blocks: list[list[float]] = []  # [sum of y, sum of p, count]
    for i in order:
        blocks.append([y[i], p[i], 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][2] >= blocks[-1][0] / blocks[-1][2]:
            last = blocks.pop()
            blocks[-1] = [blocks[-1][k] + last[k] for k in range(3)]
    xs = tuple(float(b[1] / b[2]) for b in blocks)
    ys = tuple(float(np.clip(b[0] / b[2], _EPS, 1 - _EPS)) for b in blocks)
    return Calibration("isotonic", xs, ys)


def _platt(p: np.ndarray, y: np.ndarray, steps: int = 50) -> Calibration:
    """Logistic regression of ``y`` on ``logit(p)`` by Newton's method (a tiny ridge keeps
    separable data finite)."""
    z = np.log(p / (1 - p))
    features = np.stack([z, np.ones_like(z)], axis=1)
    w = np.array([1.0, 0.0])
    for _ in range(steps):
        q = 1 / (1 + np.exp(-(features @ w)))
        grad = features.T @ (q - y) + 1e-3 * w
        hess = (features * (q * (1 - q))[:, None]).T @ features + 1e-3 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return Calibration("temperature", a=float(w[0]), b=float(w[1]))


@dataclass(frozen=True)
class ConfidenceReport:
    """ECE and AUROC of word confidences over ``words`` decoded words (``accuracy`` of them right)."""

    ece: float
    auroc: float
    words: int
    accuracy: float

    def summary(self) -> str:
        return f"ECE {self.ece:.3f}, AUROC {self.auroc:.3f} over {self.words} words ({100 * self.accuracy:.1f} % right)"


def report(confidence: np.ndarray, right: np.ndarray) -> ConfidenceReport:
    """:class:`ConfidenceReport` of ``confidence (N,)`` against 0/1 ``right (N,)``."""
    right = np.asarray(right, float)
    accuracy = float(right.mean()) if len(right) else math.nan
    return ConfidenceReport(
        expected_calibration_error(confidence, right), auroc(confidence, right), len(right), accuracy
    )


def labelled_words(refs: Sequence[str], hyps: Sequence[Sequence[tuple[str, float]]]) -> tuple[np.ndarray, np.ndarray]:
    """Raw confidences ``(N,)`` and 0/1 labels ``(N,)`` of every word of ``hyps`` (each a list of
    ``(word, confidence)``) against ``refs``."""
    confidence, right = [], []
    for ref, words in zip(refs, hyps, strict=True):
        confidence += [c for _, c in words]
        right += word_labels(ref, [w for w, _ in words])
    return np.asarray(confidence, float), np.asarray(right, float)


def write_report(
    out: Path,
    name: str,
    refs: Sequence[str],
    hyps: Sequence[Sequence[tuple[str, float]]],
    calibration: Calibration | None,
) -> dict[str, Any]:
    """Print, and write to ``out`` as JSON, the :class:`ConfidenceReport` of the raw word
    confidences of ``hyps`` against ``refs`` and, given ``calibration``, of the calibrated ones."""
    confidence, right = labelled_words(refs, hyps)
    reports = {"raw": report(confidence, right)}
    if calibration is not None:
        reports["calibrated"] = report(calibration.apply(confidence), right)
    print(f"{name} word confidence: " + "; ".join(f"{k} {r.summary()}" for k, r in reports.items()))
    result = {k: dataclasses.asdict(r) for k, r in reports.items()}
    write_text(out, json.dumps(result, indent=1) + "\n")
    return result
