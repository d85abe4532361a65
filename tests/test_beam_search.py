"""CTC prefix beam search: the LM changes the answer on a hand-written ARPA file, an
exhaustive oracle on a tiny vocabulary, lexicon, hotwords, n-best, word times,
incremental decoding and worker processes."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Hashable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from asr.config import DecodingConfig
from asr.decoding import BeamSearchDecoder, greedy_decode
from asr.lm import KenLM, LMError, open_lm
from asr.text import Vocabulary

ARPA = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "tiny.arpa"
VOCAB = Vocabulary()
EXACT = DecodingConfig(beam_size=100_000, beam_threshold=0.0, token_min_logp=-math.inf)


def frames(*spec: str | dict[str, float]) -> np.ndarray:
    """Log-posteriors ``(T, V)``: a string spells each character on one frame followed by a
    blank frame (p = 0.9 each); a dict gives one frame's probabilities ("_" is the blank).
    The rest of each frame's mass is spread over the other tokens."""
    rows: list[dict[str, float]] = []
    for part in spec:
        if isinstance(part, dict):
            rows.append(part)
        else:
            for ch in part:
                rows += [{ch: 0.9}, {"_": 0.9}]
    out = np.empty((len(rows), len(VOCAB)), dtype=np.float32)
    for t, row in enumerate(rows):
        probs = {VOCAB.blank if k == "_" else VOCAB.encode(k)[0]: v for k, v in row.items()}
        rest = (1.0 - sum(probs.values())) / (len(VOCAB) - len(probs))
        out[t] = np.log([probs.get(i, rest) for i in range(len(VOCAB))])
    return out


# "the ?at sat": the acoustics prefer "hat" (0.5) to "cat" (0.4); the LM prefers "the cat sat".
CAT_OR_HAT = frames("the ", {"h": 0.5, "c": 0.4}, {"_": 0.9}, "at sat")


def test_language_model_changes_the_answer() -> None:
    lm = KenLM(ARPA)
    no_lm = BeamSearchDecoder(VOCAB, DecodingConfig(beam_size=16))
    assert no_lm.decode(CAT_OR_HAT)[0].text == "the hat sat"
    with_lm = BeamSearchDecoder(VOCAB, DecodingConfig(beam_size=16, alpha=1.0, beta=0.0), lm=lm)
    assert with_lm.decode(CAT_OR_HAT)[0].text == "the cat sat"
    weak = BeamSearchDecoder(VOCAB, DecodingConfig(beam_size=16, alpha=0.02, beta=0.0), lm=lm)
    assert weak.decode(CAT_OR_HAT)[0].text == "the hat sat"


def test_without_lm_the_beam_agrees_with_greedy_on_peaked_frames() -> None:
    import torch

    x = frames("a quick test")
    greedy = greedy_decode(torch.from_numpy(x)[None], torch.tensor([len(x)]), VOCAB)[0]
    assert BeamSearchDecoder(VOCAB, DecodingConfig(beam_size=8)).decode(x)[0].text == greedy == "a quick test"


def test_lexicon_restricts_words(tmp_path: Path) -> None:
    words = tmp_path / "words.txt"
    words.write_text("the\ncat\nsat\n")
    decoder = BeamSearchDecoder(VOCAB, DecodingConfig(beam_size=16, lexicon=str(words)))
    assert decoder.decode(CAT_OR_HAT)[0].text == "the cat sat"
    lm_words = BeamSearchDecoder(VOCAB, DecodingConfig(beam_size=16, lexicon="lm", alpha=0.0), lm=KenLM(ARPA))
    assert lm_words.words == ["the", "cat", "sat", "hat"]
    assert lm_words.decode(CAT_OR_HAT)[0].text == "the hat sat"  # both words allowed, no LM weight
    # the default, auto: the LM's words when it lists them, else free
    assert BeamSearchDecoder(VOCAB, lm=KenLM(ARPA)).lexicon_mode == "lm"
    assert BeamSearchDecoder(VOCAB).lexicon_mode == "free"
    with pytest.raises(LMError, match="no such word list"):
        BeamSearchDecoder(VOCAB, DecodingConfig(lexicon=str(tmp_path / "none.txt")))


def test_a_beam_stuck_inside_an_unknown_word_keeps_its_completed_words(tmp_path: Path) -> None:
    # "the cap" over the lexicon the/cat/sat: "ca" is a lexicon prefix, "cap" no word, so a
    # narrow beam ends inside a word it can never complete; it once returned "" for the whole
    # utterance (a Spanish test set with a small LM lost 143 of 300 utterances so)
    words = tmp_path / "words.txt"
    words.write_text("the\ncat\nsat\n")
    x = frames("the ca", {"p": 0.9, "_": 0.09}, {"_": 0.9})
    narrow = BeamSearchDecoder(VOCAB, DecodingConfig(beam_size=1, lexicon=str(words)))
    assert narrow.decode(x)[0].text == "the"
    wide = BeamSearchDecoder(VOCAB, DecodingConfig(beam_size=16, lexicon=str(words)))
    assert wide.decode(x)[0].text == "the cat"  # the nearest lexicon word, where the beam holds it


def test_a_frame_whose_only_likely_token_leaves_the_lexicon_does_not_empty_the_beam(tmp_path: Path) -> None:
    # at the "q" frame no other token reaches token_min_logp, and "q" starts no lexicon word:
    # every extension is forbidden; the beam once emptied there and the utterance read ""
    words = tmp_path / "words.txt"
    words.write_text("the\ncat\nsat\n")
    x = frames("the ", {"q": 0.9999}, {"_": 0.9999}, "sat")
    decoder = BeamSearchDecoder(VOCAB, DecodingConfig(beam_size=16, lexicon=str(words)))
    assert decoder.decode(x)[0].text == "the sat"


def test_hotwords_boost_when_they_should_and_not_at_weight_zero() -> None:
    cfg = DecodingConfig(beam_size=16)
    plain = BeamSearchDecoder(VOCAB, cfg).decode(CAT_OR_HAT)[0]
    assert BeamSearchDecoder(VOCAB, cfg, hotwords=[("cat", 2.0)]).decode(CAT_OR_HAT)[0].text == "the cat sat"
    zero = BeamSearchDecoder(VOCAB, cfg, hotwords=[("cat", 0.0)]).decode(CAT_OR_HAT)[0]
    assert zero.text == plain.text and zero.score == pytest.approx(plain.score, abs=1e-4)
    # a phrase matched as whole words only: "ca" is not a prefix bonus for "cat"
    assert BeamSearchDecoder(VOCAB, cfg, hotwords=[("ca", 2.0)]).decode(CAT_OR_HAT)[0].text == "the hat sat"
    # a phrase that is never spoken changes neither text nor score
    other = BeamSearchDecoder(VOCAB, cfg, hotwords=[("dog", 5.0)]).decode(CAT_OR_HAT)[0]
    assert other.text == plain.text and other.score == pytest.approx(plain.score, abs=1e-4)
    # the whole phrase's weight is kept once it is complete (a wide beam keeps the same paths)
    wide = DecodingConfig(beam_size=256)
    plain = BeamSearchDecoder(VOCAB, wide).decode(CAT_OR_HAT)[0]
    phrase = BeamSearchDecoder(VOCAB, wide, hotwords=[("the hat", 1.5)]).decode(CAT_OR_HAT)[0]
    assert phrase.text == "the hat sat" and phrase.score == pytest.approx(plain.score + 1.5, abs=1e-3)
    with pytest.raises(ValueError, match="empty after normalization"):
        BeamSearchDecoder(VOCAB, cfg, hotwords=[("!!", 1.0)])


def test_n_best_is_distinct_and_sorted() -> None:
    decoder = BeamSearchDecoder(VOCAB, DecodingConfig(beam_size=32, n_best=4))
    results = decoder.decode(CAT_OR_HAT)
    assert len(results) == 4
    assert [r.text for r in results][:2] == ["the hat sat", "the cat sat"]
    assert len({r.text for r in results}) == 4
    scores = [r.score for r in results]
    assert scores == sorted(scores, reverse=True)
    # without an LM, "hat" vs "cat" differ only by their frame: ln(0.5 / 0.4)
    assert results[0].score - results[1].score == pytest.approx(math.log(0.5 / 0.4), abs=1e-2)


def test_word_times_are_monotonic_inside_the_audio_and_confident() -> None:
    x = frames("__", "the cat sat", "___")  # "_" frames first: speech starts at frame 2
    decoder = BeamSearchDecoder(VOCAB, DecodingConfig(beam_size=8), seconds_per_frame=0.04)
    best = decoder.decode(x)[0]
    assert [w.word for w in best.words] == ["the", "cat", "sat"]
    starts = [w.start for w in best.words]
    assert starts == sorted(starts)
    for w, nxt in itertools.pairwise(best.words):
        assert w.start < w.end <= nxt.start
    assert best.words[0].start >= 0 and best.words[-1].end <= len(x) * 0.04 + 1e-9
    assert all(0.85 < w.confidence <= 1.0 for w in best.words)
    assert best.words[1].start == pytest.approx(12 * 0.04)  # 4 blank frames, then 2 per character


def test_incremental_decoding_equals_whole_utterance() -> None:
    lm = KenLM(ARPA)
    decoder = BeamSearchDecoder(VOCAB, DecodingConfig(beam_size=16, alpha=0.8, beta=0.5, n_best=3), lm=lm)
    whole = decoder.decode(CAT_OR_HAT)
    stream = decoder.stream()
    partials = []
    for start in range(0, len(CAT_OR_HAT), 3):
        stream.feed(CAT_OR_HAT[start : start + 3])
        partials.append(stream.best())
    assert stream.frames == len(CAT_OR_HAT)
    assert partials[0] == "th" and partials[-1].startswith("the cat s")
    final = stream.finalize()
    assert [(h.text, round(h.score, 4)) for h in final] == [(h.text, round(h.score, 4)) for h in whole]
    assert stream.frames == 0  # finalize starts a new utterance


def test_batch_decoding_in_worker_processes_matches_serial() -> None:
    import torch

    rng = np.random.default_rng(0)
    utts = [CAT_OR_HAT, frames("hat"), frames("the sat cat"), rng.standard_normal((30, len(VOCAB)))]
    utts[3] = torch.from_numpy(utts[3]).float().log_softmax(-1).numpy()
    decoder = BeamSearchDecoder(VOCAB, DecodingConfig(beam_size=8, alpha=0.5), lm=KenLM(ARPA))
    serial = decoder.decode_batch(utts)
    parallel = decoder.decode_batch(utts, workers=2)
    assert [h[0].text for h in serial] == [h[0].text for h in parallel]
    assert serial[0][0].text == "the cat sat"
    # a padded batch with lengths gives the same as the list
    padded = torch.full((4, max(len(u) for u in utts), len(VOCAB)), -1e4)
    for i, u in enumerate(utts):
        padded[i, : len(u)] = torch.from_numpy(u)
    lengths = torch.tensor([len(u) for u in utts])
    assert [h[0].text for h in decoder.decode_batch(padded, lengths)] == [h[0].text for h in serial]


class BigramLM:
    """A second LanguageModel backend: a dict of bigram log-probabilities (for the oracle)."""

    order = 2
    path = Path("bigram-table")

    def __init__(self, table: dict[tuple[str, str], float], floor: float = -3.0) -> None:
        self.table, self.floor = table, floor

    def begin(self) -> str:
        return "<s>"

    def score(self, state: str, word: str) -> tuple[float, str]:
        return self.table.get((state, word), self.floor), word

    def finish(self, state: str) -> float:
        return self.table.get((state, "</s>"), self.floor)

    def vocabulary(self) -> list[str]:
        raise LMError("a bigram table lists no vocabulary: lexicon-free decoding")

    def sentence_scores(self, sentence: str) -> list[tuple[float, bool]]:
        state, out = self.begin(), []
        for word in sentence.split():
            ln_p, state = self.score(state, word)
            out.append((ln_p, False))
        return [*out, (self.finish(state), False)]


TINY = Vocabulary(" ab")  # blank, space, a, b


def exhaustive(
    x: np.ndarray,
    vocab: Vocabulary,
    read: Callable[[tuple[int, ...]], tuple[Hashable, str, list[str]]],
    lm: BigramLM | None,
    alpha: float,
    beta: float,
) -> tuple[str, float]:
    """Best transcript by brute force: every alignment's probability summed per key that
    ``read`` gives a collapsed token sequence (with its text and LM words), then the LM and
    word bonus added."""
    totals: dict[Hashable, tuple[float, str, list[str]]] = {}
    for path in itertools.product(range(len(vocab)), repeat=len(x)):
        logp = float(sum(x[t, k] for t, k in enumerate(path)))
        key, text, words = read(
            tuple(k for i, k in enumerate(path) if (i == 0 or k != path[i - 1]) and k != vocab.blank)
        )
        totals[key] = (np.logaddexp(totals[key][0], logp) if key in totals else logp, text, words)
    best, best_score = "", -math.inf
    for logp, text, words in totals.values():
        score = logp + beta * len(words)
        if lm is not None:
            state = lm.begin()
            for w in words:
                s, state = lm.score(state, w)
                score += alpha * s
            score += alpha * lm.finish(state)
        if score > best_score:
            best, best_score = text, score
    return best, best_score


def exhaustive_best(x: np.ndarray, lm: BigramLM | None, alpha: float, beta: float) -> tuple[str, float]:
    """For :data:`TINY`: texts alike after CTC collapse and trimmed, merged spaces are one."""

    def read(tokens: tuple[int, ...]) -> tuple[str, str, list[str]]:
        text = " ".join(TINY.decode(list(tokens)).split())
        return text, text, text.split()

    return exhaustive(x, TINY, read, lm, alpha, beta)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    length=st.integers(1, 6),
    with_lm=st.booleans(),
    sharpness=st.floats(0.5, 4.0),
)
def test_exact_beam_equals_exhaustive_search(seed: int, length: int, with_lm: bool, sharpness: float) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((length, len(TINY))) * sharpness
    x = (logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)).astype(np.float32)
    lm = (
        BigramLM({("<s>", "a"): -0.5, ("a", "b"): -0.2, ("b", "</s>"): -0.1, ("ab", "</s>"): -0.3}) if with_lm else None
    )
    alpha, beta = (0.7, 0.3) if with_lm else (0.0, 0.0)
    decoder = BeamSearchDecoder(TINY, dataclasses.replace(EXACT, alpha=alpha, beta=beta), lm=lm)
    got = decoder.decode(x)[0]
    want_text, want_score = exhaustive_best(x, lm, alpha, beta)
    assert got.score == pytest.approx(want_score, abs=1e-3)
    if got.text != want_text:  # only a tie may pick another text
        assert exhaustive_best(x, lm, alpha, beta)[1] == pytest.approx(got.score, abs=1e-3)


def test_bad_log_probs_shape_is_refused() -> None:
    decoder = BeamSearchDecoder(VOCAB)
    with pytest.raises(ValueError, match=r"log_probs must have shape \(frames, 29\)"):
        decoder.decode(np.zeros((5, 7), dtype=np.float32))


def test_lexicon_free_words_outside_the_lm_vocabulary_pay_unk_offset() -> None:
    lm = KenLM(ARPA)
    x = frames("the dog")
    base = DecodingConfig(beam_size=2048, alpha=0.5, beta=0.0, unk_offset=0.0, lexicon="free")
    free = BeamSearchDecoder(VOCAB, base, lm=lm).decode(x)[0]
    penalized = BeamSearchDecoder(VOCAB, dataclasses.replace(base, unk_offset=-4.0), lm=lm).decode(x)[0]
    assert free.text == penalized.text == "the dog"  # OOV words stay possible
    assert penalized.score == pytest.approx(free.score - 0.5 * 4.0, abs=1e-3)  # once, for "dog", weighted by alpha
    # an LM-side charge: at alpha 0 the search is the acoustics' alone, whatever the offsets
    acoustic = dataclasses.replace(base, alpha=0.0, unk_offset=-4.0, unk_char_offset=-3.0)
    assert BeamSearchDecoder(VOCAB, acoustic, lm=lm).decode(x)[0].score == pytest.approx(
        BeamSearchDecoder(VOCAB, dataclasses.replace(acoustic, unk_offset=0.0, unk_char_offset=0.0), lm=lm)
        .decode(x)[0]
        .score
    )


def test_narrow_beams_spell_a_word_outside_the_lm_as_the_acoustics_do() -> None:
    # "training" is not in tiny.arpa: leaving the vocabulary at "tra" costs a lump on one frame
    # while blanking through its letters costs the acoustics frame by frame. Without the
    # acoustics' best prefix kept beside the beam, beams 1-4 read "the the sat" (the exact search:
    # "the training sat").
    lm = KenLM(ARPA)
    x = frames("the training sat")
    config = DecodingConfig(alpha=1.0, beta=0.5, lexicon="free")
    exact = BeamSearchDecoder(VOCAB, dataclasses.replace(EXACT, alpha=1.0, beta=0.5, lexicon="free"), lm=lm)
    assert exact.decode(x)[0].text == "the training sat"
    for beam in (1, 2, 4, 16):
        got = BeamSearchDecoder(VOCAB, dataclasses.replace(config, beam_size=beam), lm=lm).decode(x)[0]
        assert got.text == "the training sat", beam
    # the anchor does not outvote the LM where the acoustics are unsure: still "the cat sat"
    one = BeamSearchDecoder(VOCAB, DecodingConfig(beam_size=1, alpha=1.0, beta=0.0), lm=lm)
    assert one.decode(CAT_OR_HAT)[0].text == "the cat sat"


def test_python_arpa_backend_decodes_as_kenlm() -> None:
    import torch

    rng = np.random.default_rng(1)
    noise = torch.from_numpy(rng.standard_normal((30, len(VOCAB)))).float().log_softmax(-1).numpy()
    utts = [CAT_OR_HAT, frames("hat"), frames("the sat cat"), noise]
    config = DecodingConfig(beam_size=8, alpha=0.5)
    kenlm = BeamSearchDecoder(VOCAB, config, lm=KenLM(ARPA)).decode_batch(utts)
    arpa = BeamSearchDecoder(VOCAB, config, lm=open_lm(f"arpa:{ARPA}"))
    assert arpa.lexicon_mode == "lm"  # it lists its words, as KenLM does
    for got in (arpa.decode_batch(utts), arpa.decode_batch(utts, workers=2)):  # it pickles
        assert [(h[0].text, round(h[0].score, 4)) for h in got] == [(h[0].text, round(h[0].score, 4)) for h in kenlm]


PIECES = Vocabulary(["\u2581a", "\u2581b", "b"])  # blank, "▁a", "▁b", "b": SentencePiece-style units, no space


def exhaustive_best_pieces(x: np.ndarray, lm: BigramLM | None, alpha: float, beta: float) -> tuple[str, float]:
    """For :data:`PIECES`: one key per piece sequence (two may read alike: ``▁b`` and ``b`` at
    the start), its text the pieces joined, each ``▁`` a space (``▁a b ▁b`` reads "ab b")."""

    def read(tokens: tuple[int, ...]) -> tuple[tuple[int, ...], str, list[str]]:
        text = " ".join(PIECES.decode(list(tokens)).replace("\u2581", " ").split())
        return tokens, text, text.split()

    return exhaustive(x, PIECES, read, lm, alpha, beta)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), length=st.integers(1, 6), with_lm=st.booleans())
def test_exact_beam_over_pieces_equals_exhaustive_search(seed: int, length: int, with_lm: bool) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((length, len(PIECES))) * 2.0
    x = (logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)).astype(np.float32)
    lm = (
        BigramLM({("<s>", "ab"): -0.4, ("ab", "b"): -0.2, ("b", "</s>"): -0.1, ("a", "</s>"): -0.3})
        if with_lm
        else None
    )
    alpha, beta = (0.7, 0.3) if with_lm else (0.0, 0.0)
    decoder = BeamSearchDecoder(PIECES, dataclasses.replace(EXACT, alpha=alpha, beta=beta), lm=lm)
    got = decoder.decode(x)[0]
    want_text, want_score = exhaustive_best_pieces(x, lm, alpha, beta)
    assert got.score == pytest.approx(want_score, abs=1e-3)
    if got.text != want_text:  # only a tie may pick another text
        assert want_score == pytest.approx(got.score, abs=1e-3)
    assert [w.word for w in got.words] == got.text.split()  # words split where a ▁ piece starts


UNSPACED = Vocabulary("ab")  # blank, a, b: a language written without spaces, each character a word


def exhaustive_best_unspaced(x: np.ndarray, lm: BigramLM | None, alpha: float, beta: float) -> tuple[str, float]:
    """For :data:`UNSPACED`: the text has no spaces and each of its characters is a word."""

    def read(tokens: tuple[int, ...]) -> tuple[str, str, list[str]]:
        text = UNSPACED.decode(list(tokens))
        return text, text, list(text)

    return exhaustive(x, UNSPACED, read, lm, alpha, beta)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), length=st.integers(1, 6), with_lm=st.booleans())
def test_exact_beam_over_unspaced_characters_equals_exhaustive_search(seed: int, length: int, with_lm: bool) -> None:
    rng = np.random.default_rng(seed)
    logits = rng.standard_normal((length, len(UNSPACED))) * 2.0
    x = (logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)).astype(np.float32)
    lm = BigramLM({("<s>", "a"): -0.3, ("a", "b"): -0.2, ("b", "a"): -0.4, ("b", "</s>"): -0.1}) if with_lm else None
    alpha, beta = (0.7, 0.3) if with_lm else (0.0, 0.0)
    decoder = BeamSearchDecoder(UNSPACED, dataclasses.replace(EXACT, alpha=alpha, beta=beta), lm=lm)
    got = decoder.decode(x)[0]
    want_text, want_score = exhaustive_best_unspaced(x, lm, alpha, beta)
    assert got.score == pytest.approx(want_score, abs=1e-3)
    if got.text != want_text:
        assert want_score == pytest.approx(got.score, abs=1e-3)
    assert " " not in got.text and [w.word for w in got.words] == list(got.text)
