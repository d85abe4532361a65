"""WER/CER with jiwer, and the per-set result files written by decoding.

For a set named ``NAME`` in ``out_dir``:
- ``recogs-NAME.txt``: ``id<TAB>ref=...<TAB>hyp=...`` per utterance, then ``<TAB>raw=...``
  (the reference as the manifest wrote it) where that differs from the normalized ``ref``;
- ``errs-NAME.txt``: per-utterance alignment, ``(ref->hyp)`` marking substitutions,
  ``(*->w)`` insertions and ``(w->*)`` deletions, then the most frequent errors;
- ``wer-NAME.txt``: the summary (WER, CER, error counts, words, utterances), and the same
  numbers as JSON in ``wer-NAME.json``.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import jiwer


@dataclass(frozen=True)
class Scores:
    wer: float  # fraction, not percent
    cer: float
    substitutions: int
    deletions: int
    insertions: int
    words: int
    utterances: int
    spaces: bool = True  # False: a language written without spaces (asr.text), scored by CER

    @property
    def headline(self) -> float:
        """The rate a language is measured by: WER, or CER where words are not spaced."""
        return self.wer if self.spaces else self.cer

    def summary(self) -> str:
        if not self.spaces:
            return f"CER {100 * self.cer:.2f}% (written without spaces) over {self.utterances} utterances"
        return (
            f"WER {100 * self.wer:.2f}% [ {self.substitutions + self.deletions + self.insertions} / "
            f"{self.words}, {self.insertions} ins, {self.deletions} del, {self.substitutions} sub ] "
            f"CER {100 * self.cer:.2f}% over {self.utterances} utterances"
        )


def _nonempty(texts: Sequence[str]) -> list[str]:
    # jiwer rejects empty references and hypotheses; a lone space is an empty word list to it
    return [t if t.strip() else " " for t in texts]


def score(refs: Sequence[str], hyps: Sequence[str], spaces: bool = True) -> Scores:
    """Corpus-level WER and CER of ``hyps`` against ``refs`` (already normalized); without
    ``spaces`` (Mandarin, Japanese, Thai) CER is computed with every space removed."""
    if len(refs) != len(hyps):
        raise ValueError(f"{len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        raise ValueError("nothing to score")
    words = jiwer.process_words(_nonempty(refs), _nonempty(hyps))
    if not spaces:
        refs, hyps = ["".join(t.split()) for t in refs], ["".join(t.split()) for t in hyps]
    chars = jiwer.process_characters(_nonempty(refs), _nonempty(hyps))
    return Scores(
        wer=words.wer,
        cer=chars.cer,
        substitutions=words.substitutions,
        deletions=words.deletions,
        insertions=words.insertions,
        words=words.hits + words.substitutions + words.deletions,
        utterances=len(refs),
        spaces=spaces,
    )


def align(ref: str, hyp: str) -> tuple[str, list[tuple[str, str]]]:
    """Aligned text of one utterance and its errors as ``(ref_word, hyp_word)`` pairs
    (``*`` for a missing word)."""
    out = jiwer.process_words(ref if ref.strip() else " ", hyp if hyp.strip() else " ")
    r, h = out.references[0], out.hypotheses[0]
    parts, errors = [], []
    for chunk in out.alignments[0]:
        rw = r[chunk.ref_start_idx : chunk.ref_end_idx]
        hw = h[chunk.hyp_start_idx : chunk.hyp_end_idx]
        if chunk.type == "equal":
            parts += rw
            continue
        rw = rw or ["*"] * len(hw)
        hw = hw or ["*"] * len(rw)
        for a, b in zip(rw, hw, strict=True):
            parts.append(f"({a}->{b})")
            errors.append((a, b))
    return " ".join(parts), errors


def write_results(
    out_dir: str | Path,
    name: str,
    ids: Sequence[str],
    refs: Sequence[str],
    hyps: Sequence[str],
    raw_refs: Sequence[str] | None = None,
    spaces: bool = True,
) -> Scores:
    """Write ``recogs-``, ``errs-`` and ``wer-`` files for one set; returns its scores.
    ``raw_refs``: the references before normalization, shown in ``recogs-`` where they differ;
    ``spaces``: see :func:`score`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    scores = score(refs, hyps, spaces)
    order = sorted(range(len(ids)), key=ids.__getitem__)
    counts: Counter[tuple[str, str]] = Counter()
    recogs_path, errs_path = out_dir / f"recogs-{name}.txt", out_dir / f"errs-{name}.txt"
    with recogs_path.open("w", encoding="utf-8") as recogs, errs_path.open("w", encoding="utf-8") as errs:
        errs.write(f"{scores.summary()}\n\nPer utterance: (ref->hyp), * marks a missing word\n")
        for i in order:
            raw = " ".join(raw_refs[i].split()) if raw_refs else ""  # tabs or newlines would break the line
            raw = f"\traw={raw}" if raw and raw != refs[i] else ""
            recogs.write(f"{ids[i]}\tref={refs[i]}\thyp={hyps[i]}{raw}\n")
            aligned, errors = align(refs[i], hyps[i])
            counts.update(errors)
            errs.write(f"{ids[i]}:\t{aligned}\n")
        errs.write("\nMost frequent errors (count ref->hyp):\n")
        for (a, b), n in counts.most_common(50):
            errs.write(f"{n}\t{a}->{b}\n")
    (out_dir / f"wer-{name}.txt").write_text(scores.summary() + "\n")
    (out_dir / f"wer-{name}.json").write_text(json.dumps(dataclasses.asdict(scores), indent=1) + "\n")
    return scores
