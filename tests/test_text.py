import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from asr.text import ALPHABET, Vocabulary, language, normalize, spell_number, units_from_texts


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
def test_english_numbers_spelled_as_before(n: int, words: str) -> None:
    # num2words writes "one hundred and one", "ninety-nine": the English row drops the "and"
    # and splits at hyphens, so every English checkpoint's targets stay as they were
    assert spell_number(n, language("en")) == words


@pytest.mark.parametrize(
    ("raw", "lang", "expected"),
    [
        ("Die Straße, Nr. 5, 3,5 % Zinsen", "de", "die straße nr fünf drei komma fünf prozent zinsen"),
        ("Über 1.000 Bücher & Hefte", "de", "über eintausend bücher und hefte"),
        ("L'homme a 2 enfants, n'est-ce pas ?", "fr", "l'homme a deux enfants n'est ce pas"),
        ("Le 1er mai, 10 000 personnes", "fr", "le premier mai dix mille personnes"),
        ("¿Qué hora es? Son las 3 y 20, señor.", "es", "qué hora es son las tres y veinte señor"),
        ("Привет, мир! В 2024 году.", "ru", "привет мир в две тысячи двадцать четыре году"),
        ("Ёлка «ЗИМА» 21", "ru", "ёлка зима двадцать один"),
        ("北京欢迎你。", "zh", "北京欢迎你"),
        ("我们 在 北京，很好！", "zh", "我们在北京很好"),
        ("東京は1984年", "ja", "東京は千九百八十四年"),
        ("ﬁne ＡＢＣ", "pt", "fine abc"),  # NFKC: ligatures and full-width letters
    ],
)
def test_normalize_other_languages(raw: str, lang: str, expected: str) -> None:
    assert normalize(raw, lang) == expected


def test_unknown_language_keeps_digits_with_one_warning() -> None:
    with pytest.warns(UserWarning, match="cannot spell numbers in 'zh'"):
        assert normalize("第3章 共12页", "zh") == "第3章共12页"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once per language
        assert normalize("7天", "zh") == "7天"


def test_language_codes() -> None:
    assert language("pt_BR").decimal == "," and language("pt_BR").code == "pt_BR"
    assert language("sw").spaces and not language("sw").apostrophes  # generic rules
    with pytest.raises(ValueError, match="not an ISO 639 code"):
        language("English")


def test_large_numbers_fall_back_to_digit_words() -> None:
    assert normalize("1" + "0" * 400) == " ".join(["one"] + ["zero"] * 400)  # past num2words' centillions


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


def test_units_from_texts_put_space_and_apostrophe_first() -> None:
    assert units_from_texts(["ça va", "l'été"]) == " 'altvçé"
    assert units_from_texts(["北京", "京都"]) == "京北都"  # code-point order; no space in the text, none in the units
    assert Vocabulary(units_from_texts(["straße"])).encode("ß") == [6]  # after a e r s t
    with pytest.raises(ValueError, match="no characters"):
        units_from_texts(["", ""])
