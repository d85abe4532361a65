"""Text normalization and the character vocabulary.

One normalizer serves training targets, TTS prompts and scoring, so that a reference
transcript and a hypothesis are always compared in the same alphabet.

Policy (see tests/test_text.py for the table):
- Unicode is folded to ASCII (``café`` → ``cafe``); text is lower-cased.
- Numbers are spelled out: integers (``1984`` → ``one thousand nine hundred eighty four``),
  decimals (``3.5`` → ``three point five``), ordinals (``21st`` → ``twenty first``),
  ``%`` → ``percent``, ``&`` → ``and``, ``+`` → ``plus``, ``@`` → ``at``.
- Hyphens, slashes and other punctuation separate words; apostrophes inside a word are kept
  (``don't``), quotes around words are dropped.
- The result holds only ``a``–``z``, apostrophe and single spaces.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

BLANK = "<blank>"
ALPHABET = " 'abcdefghijklmnopqrstuvwxyz"

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ((10**12, "trillion"), (10**9, "billion"), (10**6, "million"), (1000, "thousand"))
_ORDINAL_WORDS = {
    "one": "first", "two": "second", "three": "third", "five": "fifth",
    "eight": "eighth", "nine": "ninth", "twelve": "twelfth",
}  # fmt: skip
_SYMBOLS = {"%": " percent ", "&": " and ", "+": " plus ", "@": " at ", "=": " equals "}

_APOSTROPHES = str.maketrans({c: "'" for c in "`\u2018\u2019\u02bc"})
_NUMBER = re.compile(r"(?<![\w.])(\d+(?:,\d{3})*)(?:\.(\d+))?(st|nd|rd|th)?(?![\w])")
_DIGITS = re.compile(r"\d+")
_NOT_ALLOWED = re.compile(r"[^a-z' ]+")
_EDGE_APOSTROPHES = re.compile(r"(?<![a-z])'+|'+(?![a-z])")
_NORMALIZED = re.compile(r"[a-z]+(?:'[a-z]+)*(?: [a-z]+(?:'[a-z]+)*)*")  # text normalize() returns unchanged


def number_to_words(n: int) -> str:
    """Spell out a non-negative integer: ``number_to_words(342)`` → ``three hundred forty two``."""
    if n < 0:
        raise ValueError(f"negative number {n}")
    if n < 20:
        return _ONES[n]
    if n < 100:
        tens, ones = divmod(n, 10)
        return _TENS[tens] + (f" {_ONES[ones]}" if ones else "")
    if n < 1000:
        hundreds, rest = divmod(n, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {number_to_words(rest)}" if rest else "")
    for scale, name in _SCALES:
        if n >= scale:
            head, rest = divmod(n, scale)
            return f"{number_to_words(head)} {name}" + (f" {number_to_words(rest)}" if rest else "")
    raise AssertionError("unreachable")


def _ordinal(words: str) -> str:
    *head, last = words.split()
    if last in _ORDINAL_WORDS:
        last = _ORDINAL_WORDS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return " ".join([*head, last])


def _spell_number(match: re.Match[str]) -> str:
    integer, fraction, suffix = match.group(1), match.group(2), match.group(3)
    words = number_to_words(int(integer.replace(",", "")))
    if suffix and not fraction:
        words = _ordinal(words)
    if fraction:
        words += " point " + " ".join(_ONES[int(d)] for d in fraction)
    return f" {words} "


def normalize(text: str) -> str:
    """Map raw English text to the model's alphabet (``a``–``z``, ``'``, space).

    >>> normalize("It's 3:15, Dr. Smith—café & co.")
    "it's three fifteen dr smith cafe and co"
    """
    if _NORMALIZED.fullmatch(text):
        return text  # already normalized: the common case (manifest texts are normalized on every read)
    text = text.translate(_APOSTROPHES)
    text = "".join(
        c if c.isascii() else ("" if unicodedata.combining(c) else " ") for c in unicodedata.normalize("NFKD", text)
    )
    for symbol, word in _SYMBOLS.items():
        text = text.replace(symbol, word)
    text = _NUMBER.sub(_spell_number, text)
    text = _DIGITS.sub(lambda m: f" {number_to_words(int(m.group()))} ", text)
    text = _NOT_ALLOWED.sub(" ", text.lower())
    text = _EDGE_APOSTROPHES.sub(" ", text)
    return " ".join(text.split())


class Vocabulary:
    """Character vocabulary for CTC: index 0 is the blank, then :data:`ALPHABET`."""

    def __init__(self, symbols: Sequence[str] = tuple(ALPHABET)) -> None:
        if len(set(symbols)) != len(symbols):
            raise ValueError("vocabulary symbols must be unique")
        self.symbols: list[str] = [BLANK, *symbols]
        self._index = {s: i for i, s in enumerate(self.symbols)}

    @property
    def blank(self) -> int:
        return 0

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, text: str) -> list[int]:
        """Token ids of already-normalized ``text``; raises on a character outside the vocabulary."""
        try:
            return [self._index[c] for c in text]
        except KeyError as e:
            raise ValueError(f"character {e.args[0]!r} not in vocabulary (text: {text!r})") from None

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids, skipping blanks (no CTC collapsing here)."""
        return "".join(self.symbols[i] for i in ids if i != self.blank)
