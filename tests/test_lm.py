"""Language models: KenLM backend scores against a hand-written ARPA file, perplexity,
clear errors, and building ARPA/binary models with lmplz on a tiny corpus."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asr.cli import main as asr_main
from asr.lm import (
    LN10,
    ArpaLM,
    KenLM,
    LMError,
    build_lm,
    evaluate,
    import_arpa,
    open_lm,
    read_sentences,
    read_vocabulary,
)

ARPA = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "tiny.arpa"


def log10_of(lm: KenLM | ArpaLM, words: list[str]) -> list[float]:
    state, out = lm.begin(), []
    for word in words:
        ln_p, state = lm.score(state, word)
        out.append(ln_p / LN10)
    return [*out, lm.finish(state) / LN10]


def test_scores_follow_the_arpa_file() -> None:
    lm = KenLM(ARPA)
    assert lm.order == 2
    # bigrams present: p(the|<s>), p(cat|the), p(sat|cat), p(</s>|sat)
    assert log10_of(lm, ["the", "cat", "sat"]) == pytest.approx([-0.2, -0.3, -0.1, -0.2], abs=1e-5)
    # backoffs: p(hat|cat) = b(cat) + p(hat) = -0.2 - 1.5; p(cat|<s>) = b(<s>) + p(cat) = -0.5 - 1.2
    assert log10_of(lm, ["cat", "hat"]) == pytest.approx([-1.7, -1.7, -0.4], abs=1e-5)
    # an unknown word scores as <unk>: b(the) + p(<unk>)
    assert log10_of(lm, ["the", "dog"])[1] == pytest.approx(-1.3, abs=1e-5)
    assert "cat" in lm and "dog" not in lm


def test_perplexity_and_oov_rate() -> None:
    lm = KenLM(ARPA)
    clean = evaluate(lm, ["the cat sat"])
    assert clean.perplexity == pytest.approx(10 ** (0.8 / 4), rel=1e-4)  # 3 words + </s>
    assert clean.oov_rate == 0 and clean.words == 3
    mixed = evaluate(lm, ["the dog"])
    assert mixed.oov_rate == 0.5
    assert mixed.perplexity == pytest.approx(10 ** ((0.2 + 1.3 + 1.0) / 3), rel=1e-4)
    assert mixed.perplexity_no_oov == pytest.approx(10 ** ((0.2 + 1.0) / 2), rel=1e-4)


def test_vocabulary_of_an_arpa_file() -> None:
    assert read_vocabulary(ARPA) == ["the", "cat", "sat", "hat"]


def _write(name: str, data: bytes):
    def make(d: Path) -> Path:
        (d / name).write_bytes(data)
        return d / name

    return make


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.bin", "no such language model file"),
        (_write("empty.arpa", b""), "empty file"),
        (_write("junk.bin", b"\x00garbage" * 100), "not a readable ARPA"),
        (_write("cut.arpa", ARPA.read_bytes()[:150]), "not a readable ARPA"),
        (lambda d: d, "a directory without lm.bin or lm.arpa"),
    ],
)
def test_bad_model_files_are_named(tmp_path: Path, make, message: str) -> None:
    path = make(tmp_path)
    with pytest.raises(LMError, match=message) as err:
        KenLM(path)
    assert str(path) in str(err.value)


def test_cli_eval_and_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "t.txt"
    text.write_text("The cat sat.\nthe dog\n")
    assert asr_main(["lm", "eval", "--lm", str(ARPA), "--text", str(text)]) == 0
    assert "OOV rate 20.00% over 5 words in 2 sentences" in capsys.readouterr().out
    assert asr_main(["lm", "eval", "--lm", str(tmp_path / "nope.bin"), "--text", str(text)]) == 1
    assert "nope.bin: no such language model file" in capsys.readouterr().err
    assert asr_main(["lm", "eval", "--lm", str(ARPA), "--text", str(tmp_path / "none.txt")]) == 1
    assert "none.txt: no such text file" in capsys.readouterr().err


TEN = """the cat sat on the mat
the dog sat on the log
a cat and a dog
the cat saw the dog
the dog saw a cat on the mat
a bird sat on the dog
the bird saw the cat
a dog and a bird and a cat
the mat was red
the log was old""".splitlines()


@pytest.mark.slow
def test_build_a_trigram_from_ten_sentences(tmp_path: Path) -> None:
    out = build_lm(TEN, tmp_path / "lm", order=3)
    assert {p.name for p in out.iterdir()} == {"lm.arpa", "lm.bin", "vocab.txt", "lm.json"}
    vocab = read_vocabulary(out)
    assert set(vocab) == {w for s in TEN for w in s.split()}
    for path in (out / "lm.bin", out / "lm.arpa"):
        lm = KenLM(path)
        assert lm.order == 3
        seen = sum(ln for ln, _ in lm.sentence_scores("the cat sat on the mat"))
        shuffled = sum(ln for ln, _ in lm.sentence_scores("mat the on sat cat the"))
        assert seen > shuffled + 5  # natural-log units
    pruned = build_lm(TEN, tmp_path / "pruned", order=3, prune=[0, 1, 1])
    counts = {p: json.loads((p / "lm.json").read_text())["ngrams"] for p in (out, pruned)}
    assert counts[pruned]["3"] < counts[out]["3"] and counts[pruned]["1"] == counts[out]["1"]


@pytest.mark.slow
def test_cli_build(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "ten.txt"
    text.write_text("\n".join(s.upper() + "." for s in TEN) + "\n")  # normalized on the way in
    assert asr_main(["lm", "build", "--order", "2", "--text", str(text), "--out", str(tmp_path / "lm")]) == 0
    assert "from 10 sentences" in capsys.readouterr().out
    assert evaluate(KenLM(tmp_path / "lm"), read_sentences([text])).oov_rate == 0
    assert asr_main(["lm", "build", "--order", "1", "--text", str(text), "--out", str(tmp_path / "x")]) == 1
    assert "order 1: lmplz needs an order of at least 2" in capsys.readouterr().err


def test_import_upper_case_gzipped_arpa(tmp_path: Path) -> None:
    import gzip

    upper = ARPA.read_text().replace("<unk>", "<UNK>")
    for word in ("the", "cat", "sat", "hat"):
        upper = upper.replace(f"\t{word}", f"\t{word.upper()}").replace(f" {word}", f" {word.upper()}")
    with gzip.open(tmp_path / "4-gram.arpa.gz", "wt") as f:  # LibriSpeech's ARPA files look like this
        f.write(upper)
    assert asr_main(["lm", "import", "--arpa", str(tmp_path / "4-gram.arpa.gz"), "--out", str(tmp_path / "lm")]) == 0
    assert read_vocabulary(tmp_path / "lm") == ["the", "cat", "sat", "hat"]
    lm = KenLM(tmp_path / "lm")
    assert log10_of(lm, ["the", "cat", "sat"]) == pytest.approx([-0.2, -0.3, -0.1, -0.2], abs=1e-5)
    assert json.loads((tmp_path / "lm" / "lm.json").read_text())["ngrams"] == {"1": 7, "2": 6}
    (tmp_path / "bad.arpa").write_text("hello\n")
    with pytest.raises(LMError, match=r"bad\.arpa: not an ARPA file"):
        import_arpa(tmp_path / "bad.arpa", tmp_path / "lm2")


@pytest.mark.slow
def test_python_arpa_backend_scores_as_kenlm(tmp_path: Path) -> None:
    out = build_lm(TEN, tmp_path / "lm", order=4)
    kenlm, arpa = KenLM(out / "lm.arpa"), ArpaLM(out)
    assert arpa.order == 4 and sorted(arpa.vocabulary()) == sorted(read_vocabulary(out))
    for sentence in [*TEN, "mat the on sat cat the", "the zebra sat on a mat", "zebra", ""]:
        want, got = kenlm.sentence_scores(sentence), arpa.sentence_scores(sentence)
        assert [oov for _, oov in got] == [oov for _, oov in want], sentence
        assert [ln for ln, _ in got] == pytest.approx([ln for ln, _ in want], abs=1e-4), sentence
    assert evaluate(arpa, TEN).perplexity == pytest.approx(evaluate(kenlm, TEN).perplexity, rel=1e-5)


def test_open_lm_picks_the_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert type(open_lm(ARPA)) is KenLM and type(open_lm(f"kenlm:{ARPA}")) is KenLM
    lm = open_lm(f"arpa:{ARPA}")
    assert type(lm) is ArpaLM and lm.path == ARPA
    assert log10_of(lm, ["the", "cat", "sat"]) == pytest.approx([-0.2, -0.3, -0.1, -0.2], abs=1e-9)
    assert log10_of(lm, ["cat", "hat"]) == pytest.approx([-0.5 - 1.2, -0.2 - 1.5, -0.4], abs=1e-9)
    text = tmp_path / "t.txt"
    text.write_text("The cat sat.\nthe dog\n")
    assert asr_main(["lm", "eval", "--lm", f"arpa:{ARPA}", "--text", str(text)]) == 0
    assert "OOV rate 20.00% over 5 words in 2 sentences" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("\\data\\\nngram 1=2\n\n\\1-grams:\n-1.0\t<s>\n\\end\\\n", r"header counts \{1: 2\}, n-grams read \{1: 1\}"),
        ("\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0\ta\tb\tc\n\\end\\\n", r"bad\.arpa:5: expected log10 P, 1 words"),
        ("\\data\\\nngram 1=1\n\n\\1-grams:\nx\ta\n\\end\\\n", r"bad\.arpa:5: not a number in 'x a'"),
        ("hello\n", "not a complete ARPA file"),
    ],
)
def test_python_arpa_backend_names_bad_lines(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "bad.arpa").write_text(text)
    with pytest.raises(LMError, match=message):
        ArpaLM(tmp_path / "bad.arpa")
