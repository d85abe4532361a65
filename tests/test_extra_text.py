"""Vocabulary at run time: a small n-gram from the user's sentences interpolated with the
base LM at load time (``--extra-text``), its new words joining the lexicon."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from asr.cli import build_parser, decoder_from_arguments, inference_config
from asr.config import ConfigError, DecodingConfig
from asr.decoding import BeamSearchDecoder
from asr.lm import LN10, ArpaLM, InterpolatedLM, KenLM, LMError, with_extra_text
from asr.text import Vocabulary

ARPA = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "tiny.arpa"
VOCAB = Vocabulary()
# the extra text's model: "the bat" only (hand-written, so every probability is known)
EXTRA_ARPA = """\\data\\
ngram 1=5
ngram 2=3

\\1-grams:
-0.5\t<unk>\t0
-99\t<s>\t-0.2
-0.6\t</s>\t0
-0.6\tthe\t-0.1
-0.7\tbat\t-0.1

\\2-grams:
-0.1\t<s> the
-0.05\tthe bat
-0.1\tbat </s>

\\end\\
"""


@pytest.fixture
def mixed(tmp_path: Path) -> InterpolatedLM:
    (tmp_path / "extra.arpa").write_text(EXTRA_ARPA)
    return InterpolatedLM(KenLM(ARPA), ArpaLM(tmp_path / "extra.arpa"), weight=0.25)


def test_interpolation_mixes_probabilities_and_spreads_unk_mass_by_the_base(mixed: InterpolatedLM) -> None:
    state = mixed.begin()
    ln_the, state = mixed.score(state, "the")  # both know it: base 10^-0.2, extra 10^-0.1
    assert ln_the == pytest.approx(math.log(0.75 * 10**-0.2 + 0.25 * 10**-0.1), abs=1e-5)
    ln_bat, after_bat = mixed.score(state, "bat")  # new: base <unk> 10^-1.0 after backoff -0.3
    assert ln_bat == pytest.approx(math.log(0.75 * 10**-1.3 + 0.25 * 10**-0.05), abs=1e-5)
    ln_cat, _ = mixed.score(state, "cat")  # not in the extra text: the extra <unk> (10^-0.5 after backoff -0.1)
    assert ln_cat == pytest.approx(math.log(10**-0.3) + math.log(0.75 + 0.25 * 10**-0.6), abs=1e-5)
    assert mixed.finish(after_bat) == pytest.approx(math.log(0.75 * 10**-1.0 + 0.25 * 10**-0.1), abs=1e-5)
    assert mixed.vocabulary() == ["the", "cat", "sat", "hat", "bat"]
    scores = mixed.sentence_scores("the bat dog")
    assert [oov for _, oov in scores] == [False, False, True, False]
    assert scores[1][0] == pytest.approx(ln_bat, abs=1e-5)
    with pytest.raises(LMError, match="between 0 and 1"):
        InterpolatedLM(KenLM(ARPA), mixed.extra, weight=1.0)


def spelled(text: str) -> np.ndarray:
    """Log-posteriors ``(T, V)`` spelling ``text``: each character (p 0.9) then a blank."""
    rows = []
    for ch in text:
        for token in (VOCAB.encode(ch)[0], VOCAB.blank):
            row = np.full(len(VOCAB), 0.1 / (len(VOCAB) - 1))
            row[token] = 0.9
            rows.append(np.log(row))
    return np.asarray(rows, np.float32)


def test_new_words_join_the_lexicon_and_the_base_lm_is_untouched(mixed: InterpolatedLM) -> None:
    cfg = DecodingConfig(beam_size=32, alpha=1.0, beta=0.0)
    audio = spelled("the bat sat")
    base_only = BeamSearchDecoder(VOCAB, cfg, lm=KenLM(ARPA)).decode(audio)[0].text
    assert "bat" not in base_only.split()  # the base lexicon has no "bat"
    assert BeamSearchDecoder(VOCAB, cfg, lm=mixed).decode(audio)[0].text == "the bat sat"
    assert ARPA.read_text().count("bat") == 0


def test_with_extra_text_builds_the_ngram_with_lmplz() -> None:
    mixed = with_extra_text(KenLM(ARPA), ["the bat sat", "a bat flew"], weight=0.3)
    assert isinstance(mixed, InterpolatedLM) and mixed.order == 3
    assert {"bat", "flew", "a"} <= set(mixed.vocabulary())
    seen = sum(ln for ln, _ in mixed.sentence_scores("a bat flew"))
    base = sum(ln for ln, _ in KenLM(ARPA).sentence_scores("a bat flew"))
    assert seen > base + LN10  # the extra text makes its own sentence over 10x likelier
    alone = with_extra_text(None, ["the bat sat"])
    assert isinstance(alone, ArpaLM) and "bat" in alone.vocabulary()
    with pytest.raises(LMError, match="no extra text"):
        with_extra_text(KenLM(ARPA), [])


def test_cli_extra_text_selects_beam_search_over_the_mixture(tmp_path: Path, overfit_checkpoint: Path) -> None:
    from asr.checkpoint import load_model

    text = tmp_path / "names.txt"
    text.write_text("The Bat sat.\n\n")

    def decoder(*options: str) -> tuple[BeamSearchDecoder, DecodingConfig]:
        args = build_parser().parse_args(["decode", "--model", str(overfit_checkpoint), "--manifest", "m.jsonl",
                                          "--extra-text", str(text), *options])  # fmt: skip
        config = inference_config(args)
        return decoder_from_arguments(args, load_model(overfit_checkpoint), config), config.decoding

    mixed, decoding = decoder("--lm", str(ARPA))
    assert isinstance(mixed.lm, InterpolatedLM) and mixed.lm.weight == decoding.extra_weight == 0.3
    assert "bat" in mixed.words and str(mixed.lm.path) == f"{ARPA} + <extra text: 1 sentence>"
    alone, decoding = decoder("--extra-weight", "0.5")
    assert isinstance(alone.lm, ArpaLM) and decoding.extra_weight == 0.5  # no base LM: the extra n-gram alone


def test_transcripts_record_the_extra_text(overfit_checkpoint: Path) -> None:
    import asr

    transcriber = asr.load_model(overfit_checkpoint, device="cpu", lm=ARPA, extra_text=["Good morning!", "", "a bat"])
    settings = transcriber.settings["decoding"]
    assert settings["lm"] == f"{ARPA} + <extra text: 2 sentences>" and settings["extra_weight"] == 0.3
    assert {"good", "morning", "bat"} <= set(transcriber.decoder.words)


def test_extra_weight_bounds() -> None:
    with pytest.raises(ConfigError, match=r"extra_weight 1\.5"):
        DecodingConfig(extra_weight=1.5)
