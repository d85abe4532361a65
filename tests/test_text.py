import pytest
from hypothesis import given
from hypothesis import strategies as st

from asr.text import ALPHABET, Vocabulary, normalize, number_to_words


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Hello, World!", "hello world"),
        ("It's 3:15, Dr. Smith", "it's three fifteen dr smith"),
        ("café naïve Ünïcode", "cafe naive unicode"),
        ("the 21st century", "the twenty first century"),
        ("1,000,000 people", "one million people"),
        ("pi is 3.14", "pi is three point one four"),
        ("50% off & free", "fifty percent off and free"),
        ("don’t `quote' me", "don't quote me"),
        ("'tis rock 'n' roll", "tis rock n roll"),
        ("well-known e-mail/web", "well known e mail web"),
        ("x11 release 2", "x eleven release two"),
        ("  many   spaces\tand\nlines ", "many spaces and lines"),
        ("the 3rd and 12th and 100th", "the third and twelfth and one hundredth"),
        ("--- *** ---", ""),
    ],
)
def test_normalize_table(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("n", "words"),
    [(0, "zero"), (13, "thirteen"), (40, "forty"), (99, "ninety nine"), (101, "one hundred one"),
     (1984, "one thousand nine hundred eighty four"), (2_000_017, "two million seventeen")],
)  # fmt: skip
def test_number_to_words(n: int, words: str) -> None:
    assert number_to_words(n) == words


def test_normalized_text_stays_in_alphabet() -> None:
    text = normalize("Ŧhe Ω quick (brown) fox — 42 jumps; über ‘lazy’ dogs? #1 @ 9:00")
    assert set(text) <= set(ALPHABET)
    assert "  " not in text


@given(st.text(alphabet=" 'abz", max_size=12))
def test_already_normalized_text_takes_the_same_result(text: str) -> None:
    # upper case never takes normalize's shortcut for already-normalized text, and is
    # lower-cased before anything else looks at letters: both paths must agree
    assert normalize(text) == normalize(text.upper())
    assert normalize(normalize(text)) == normalize(text)


def test_vocabulary_round_trip_and_blank() -> None:
    vocab = Vocabulary()
    assert vocab.blank == 0 and vocab.symbols[0] == "<blank>"
    assert len(vocab) == len(ALPHABET) + 1
    ids = vocab.encode("it's a test")
    assert 0 not in ids
    assert vocab.decode(ids) == "it's a test"
    assert vocab.decode([0, *ids, 0]) == "it's a test"


def test_vocabulary_rejects_unknown_character() -> None:
    with pytest.raises(ValueError, match=r"'X' not in vocabulary"):
        Vocabulary().encode("aXb")
