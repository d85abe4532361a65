"""Text normalization per language and the character vocabulary.

One normalizer serves training targets, TTS prompts and scoring, so that a reference
transcript and a hypothesis are always compared in the same alphabet.

Policy, for every language (see tests/test_text.py for the tables):
- Unicode NFKC (``ﬁ`` → ``fi``, full-width digits → digits), then lower case.
- Letters of any script and their combining marks are kept (``straße``, ``noël``,
  ``привет``, ``北京``); apostrophes inside a word are kept where the language writes them
  (``don't``, ``l'homme``), quotes around words are dropped; every other character
  (punctuation, hyphens, slashes, symbols) separates words.
- Numbers are spelled out by ``num2words`` in the language (``1984`` → ``one thousand nine
  hundred eighty four``, ``mil novecientos ochenta y cuatro``), with its decimal and
  thousands separators and, where the language has them, ordinal suffixes (``21st``); where
  ``num2words`` does not know the language, digits stay digits (one warning).
- ``%``, ``&``, ``+`` ... are spoken where the language's table says how.
- Languages written without spaces (Mandarin, Japanese, Thai) lose the spaces: their text
  is a string of characters, scored by CER.

English (``en``, the default) also folds to ASCII (``café`` → ``cafe``): its text holds only
``a``–``z``, apostrophe and single spaces, the alphabet of every English checkpoint.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cache

from num2words import CONVERTER_CLASSES, num2words

BLANK = "<blank>"
ALPHABET = " 'abcdefghijklmnopqrstuvwxyz"


@dataclass(frozen=True)
class Language:
    """How one language's text is normalized (see the module docstring).

    ``apostrophes``: kept inside words. ``ascii``: folded to ``a``–``z``. ``spaces``: words
    are separated by spaces (False: spaces removed, CER is the measure). ``decimal`` and
    ``group``: the number separators. ``ordinals``: a regex of ordinal suffixes after digits.
    ``symbols``: spoken forms of symbols. ``fillers``: words ``num2words`` writes that
    speakers leave out (English "one hundred *and* five")."""

    code: str
    apostrophes: bool = False
    ascii: bool = False
    spaces: bool = True
    decimal: str = "."
    group: str = ","
    ordinals: str = ""
    symbols: tuple[tuple[str, str], ...] = ()
    fillers: tuple[str, ...] = ()

    @property
    def separator(self) -> str:
        """What stands between words in its text: a space, or nothing (Mandarin, Japanese, Thai)."""
        return " " if self.spaces else ""

    @property
    def spells_numbers(self) -> bool:
        return _num2words_code(self.code) is not None


_EN_SYMBOLS = (("%", "percent"), ("&", "and"), ("+", "plus"), ("@", "at"), ("=", "equals"))


def _says(percent: str, and_: str, plus: str) -> tuple[tuple[str, str], ...]:
    return (("%", percent), ("&", and_), ("+", plus))


LANGUAGES: dict[str, Language] = {
    lang.code: lang
    for lang in (
        Language("en", apostrophes=True, ascii=True, ordinals="st|nd|rd|th", symbols=_EN_SYMBOLS, fillers=("and",)),
        Language("es", decimal=",", group=".", symbols=_says("por ciento", "y", "más")),
        Language(
            "fr",
            apostrophes=True,
            decimal=",",
            group=" ",
            ordinals="er|re|e|ème|eme",
            symbols=_says("pour cent", "et", "plus"),
        ),
        Language("de", decimal=",", group=".", symbols=_says("prozent", "und", "plus")),
        Language("it", apostrophes=True, decimal=",", group=".", symbols=_says("per cento", "e", "più")),
        Language("pt", decimal=",", group=".", symbols=_says("por cento", "e", "mais")),
        Language("ru", decimal=",", group=" ", symbols=_says("процентов", "и", "плюс")),
        Language("zh", spaces=False),
        Language("ja", spaces=False),
        Language("th", spaces=False),
    )
}
_CODE = re.compile(r"[a-z]{2,3}(?:[_-][A-Za-z0-9]{2,8})*")  # ISO 639 with BCP 47 subtags: pt_BR, zh-CN, sr-Latn


@cache
def language(code: str) -> Language:
    """The :class:`Language` of an ISO 639 ``code`` (``en``, ``de``, ``pt_BR``, ``zh-CN``): its
    table row (a subtagged code takes its base's), or the generic rules for a language without
    one. ValueError for a malformed code."""
    if code in LANGUAGES:
        return LANGUAGES[code]
    if not _CODE.fullmatch(code):
        raise ValueError(f"language {code!r} is not an ISO 639 code such as 'en', 'de' or 'pt_BR'")
    base = LANGUAGES.get(code.split("_")[0].split("-")[0])
    return Language(code) if base is None else Language(code, **{k: v for k, v in vars(base).items() if k != "code"})


def _num2words_code(code: str) -> str | None:
    """num2words' name for ``code`` (``pt_BR`` as itself, else its base language), or None."""
    for name in (code.replace("-", "_"), code.split("_")[0].split("-")[0]):
        if name in CONVERTER_CLASSES:
            return name
    return None


@cache
def _warn_digits(code: str) -> None:
    warnings.warn(f"num2words cannot spell numbers in {code!r}: digits are kept as digits", stacklevel=3)


def spell_number(n: int | Decimal, lang: Language, ordinal: bool = False) -> str:
    """``n`` in words in ``lang`` (``spell_number(342, language("en"))`` → ``three hundred
    forty two``), lower case, without ``lang.fillers``; its digits when num2words does not
    know the language or the number is too large for it."""
    name = _num2words_code(lang.code)
    if name is None:
        _warn_digits(lang.code)
        return str(n)
    try:
        words = num2words(n, lang=name, to="ordinal" if ordinal else "cardinal")
    except (OverflowError, NotImplementedError, ValueError, TypeError):
        if ordinal:
            return spell_number(n, lang)
        return " ".join(spell_number(int(d), lang) if d.isdigit() else d for d in str(n))
    words = re.sub(r"[-‐,]", " ", words.lower())
    return " ".join(w for w in words.split() if w not in lang.fillers)


@cache
def _number_pattern(decimal: str, group: str, ordinals: str) -> re.Pattern[str]:
    dec, group = re.escape(decimal), re.escape(group)
    ordinals = f"({ordinals})?" if ordinals else "()"
    return re.compile(rf"(?<![\w{dec}])(\d+(?:{group}\d{{3}})*)(?:{dec}(\d+))?{ordinals}(?!\w)")


def _spell_numbers(text: str, lang: Language) -> str:
    if not lang.spells_numbers:
        if any(c.isdigit() for c in text):
            _warn_digits(lang.code)
        return text

    def spell(match: re.Match[str]) -> str:
        integer, fraction, suffix = match.group(1).replace(lang.group, ""), match.group(2), match.group(3)
        if fraction:
            return f" {spell_number(Decimal(f'{integer}.{fraction}'), lang)} "
        return f" {spell_number(int(integer), lang, ordinal=bool(suffix))} "

    text = _number_pattern(lang.decimal, lang.group, lang.ordinals).sub(spell, text)
    return re.sub(r"\d+", lambda m: f" {spell_number(int(m.group()), lang)} ", text)


_APOSTROPHES = str.maketrans({c: "'" for c in "`\u2018\u2019\u02bc"})
_NOT_ASCII_ALLOWED = re.compile(r"[^a-z' ]+")
_NORMALIZED = re.compile(r"[a-z]+(?:'[a-z]+)*(?: [a-z]+(?:'[a-z]+)*)*")  # English text normalize() returns unchanged


def _kept(c: str, lang: Language) -> bool:
    """Whether character ``c`` survives (letters, marks, digits left unspelled, apostrophes)."""
    if c == "'":
        return lang.apostrophes
    return c.isspace() or unicodedata.category(c)[0] in "LM" or (c.isdigit() and not lang.spells_numbers)


def _inner_apostrophes(text: str) -> str:
    """Apostrophes kept only between two letters (``don't``; not ``'tis``, ``rock 'n' roll``)."""
    chars = list(text)
    for i, c in enumerate(chars):
        if c == "'" and not (0 < i < len(chars) - 1 and chars[i - 1].isalpha() and chars[i + 1].isalpha()):
            chars[i] = " "
    return "".join(chars)


def normalize(text: str, lang: str | Language = "en") -> str:
    """Map raw text in language ``lang`` (a code or a :class:`Language`) to the model's
    characters (see the module docstring).

    >>> normalize("It's 3:15, Dr. Smith—café & co.")
    "it's three fifteen dr smith cafe and co"
    >>> normalize("Die Straße Nr. 5", "de")
    'die straße nr fünf'
    """
    lang = lang if isinstance(lang, Language) else language(lang)
    if lang.code == "en" and _NORMALIZED.fullmatch(text):
        return text  # already normalized: the common case (manifest texts are normalized on every read)
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES)
    if lang.ascii:
        decomposed = unicodedata.normalize("NFKD", text)
        text = "".join(c if c.isascii() else ("" if unicodedata.combining(c) else " ") for c in decomposed)
    for symbol, word in lang.symbols:
        text = text.replace(symbol, f" {word} ")
    text = _spell_numbers(text, lang).lower()
    kept = (c if _kept(c, lang) else " " for c in text)
    text = _NOT_ASCII_ALLOWED.sub(" ", text) if lang.ascii else "".join(kept)
    if "'" in text:
        text = _inner_apostrophes(text)
    return " ".join(text.split()) if lang.spaces else "".join(text.split())


def units_from_texts(texts: Iterable[str]) -> str:
    """The characters of normalized ``texts`` as a vocabulary string: space and apostrophe
    first where they occur, then the others in code-point order. ValueError when empty."""
    chars = set().union(*map(set, texts))
    if not chars:
        raise ValueError("no characters in the training text to make units of")
    first = [c for c in " '" if c in chars]
    return "".join(first + sorted(chars - set(first)))


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

    def unknown(self, text: str) -> list[str]:
        """The characters of ``text`` outside the vocabulary, each once, in order of appearance."""
        return list(dict.fromkeys(c for c in text if c not in self._index))

    def decode(self, ids: Sequence[int]) -> str:
        """Text of token ids, skipping blanks (no CTC collapsing here)."""
        return "".join(self.symbols[i] for i in ids if i != self.blank)
