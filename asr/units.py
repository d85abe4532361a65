"""Output units built from the training text: its characters, or SentencePiece pieces.

``text.units`` (:class:`~asr.config.TextConfig`) names them: ``vocabulary`` (the config's
``vocabulary`` characters as given), ``char`` (every character of the normalized training
text), ``bpe:N`` or ``unigram:N`` (a SentencePiece model of ``N`` pieces trained on that text:
character coverage 1.0, 0.9995 for Chinese and Japanese; no normalization of its own, the
text is already normalized; word starts marked ``▁``). :func:`build_units` makes them on
the first training run and the checkpoint keeps them (``vocabulary`` for characters, the
SentencePiece model itself, base64, in ``sentencepiece``), so a checkpoint alone decodes.
:class:`SentencePieceVocabulary` is the :class:`~asr.text.Vocabulary` of pieces.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Sequence

from asr.text import BLANK, Vocabulary, language, units_from_texts

UNITS = re.compile(r"vocabulary|char|(bpe|unigram):([1-9][0-9]*)")
WORD_START = "\u2581"  # SentencePiece's ▁
CJK = ("zh", "ja")


def check_units(spec: str) -> None:
    """ValueError unless ``spec`` is ``vocabulary``, ``char``, ``bpe:N`` or ``unigram:N``."""
    if not UNITS.fullmatch(spec):
        raise ValueError(f"{spec!r}: vocabulary, char, bpe:N or unigram:N (N pieces, e.g. bpe:256)")


def build_units(spec: str, texts: Sequence[str], lang: str = "en") -> tuple[str, str]:
    """``(vocabulary, sentencepiece)`` for units ``spec`` from normalized training ``texts``:
    the characters (``char``; no SentencePiece model), or ``("", base64 model)`` for
    ``bpe:N`` / ``unigram:N``. ValueError when the text cannot give them (no text; fewer
    distinct characters than ... pieces asked for SentencePiece to work with)."""
    check_units(spec)
    if spec == "char":
        return units_from_texts(texts), ""
    kind, size = spec.split(":")
    import sentencepiece as spm

    lines = [t for t in texts if t]
    if not lines:
        raise ValueError("no training text to build SentencePiece units from")
    model = io.BytesIO()
    coverage = 0.9995 if language(lang).code.split("-")[0].split("_")[0] in CJK else 1.0
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(lines),
            model_writer=model,
            model_type=kind,
            vocab_size=int(size),
            character_coverage=coverage,
            normalization_rule_name="identity",
            bos_id=-1,
            eos_id=-1,
            unk_id=0,
            num_threads=1,  # the same pieces on every run and every rank
            minloglevel=2,
        )
    except RuntimeError as e:
        raise ValueError(f"SentencePiece {spec}: {e}") from None
    return "", base64.b64encode(model.getvalue()).decode("ascii")


class SentencePieceVocabulary(Vocabulary):
    """The CTC vocabulary of a SentencePiece model: index 0 the blank, then the pieces
    (``▁`` marking a word's first piece; ``<unk>`` among them, never a target)."""

    def __init__(self, model_b64: str) -> None:
        import sentencepiece as spm

        self.model_b64 = model_b64
        self._sp = spm.SentencePieceProcessor(model_proto=base64.b64decode(model_b64))
        pieces = [self._sp.id_to_piece(i) for i in range(self._sp.get_piece_size())]
        self.symbols = [BLANK, *pieces]
        self._index = {s: i for i, s in enumerate(self.symbols)}

    def __getstate__(self) -> dict:  # loader workers get the model, not the C++ processor
        return {"model_b64": self.model_b64}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["model_b64"])

    def encode(self, text: str) -> list[int]:
        """Token ids of normalized ``text``; ValueError naming the characters no piece writes."""
        if unknown := self.unknown(text):
            chars = ", ".join(repr(c) for c in unknown)
            raise ValueError(f"characters {chars} not in the SentencePiece units (text: {text!r})")
        return [i + 1 for i in self._sp.encode(text)]

    def unknown(self, text: str) -> list[str]:
        unk = self._sp.unk_id()
        return [c for c in dict.fromkeys(text) if c != " " and unk in self._sp.encode(c)]

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids (blanks skipped, no CTC collapsing): pieces joined, ``▁`` a space."""
        return "".join(self.symbols[i] for i in ids if i != self.blank).replace(WORD_START, " ").strip()


def vocabulary_of(vocabulary: str, sentencepiece: str = "") -> Vocabulary:
    """The vocabulary a config names: its SentencePiece model when it has one, else its characters."""
    return SentencePieceVocabulary(sentencepiece) if sentencepiece else Vocabulary(vocabulary)
