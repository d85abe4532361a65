from pathlib import Path

import pytest
import torch

from asr.decoding import collapse, greedy_decode, greedy_ids, grid_side, search_2d
from asr.metrics import align, score, write_results
from asr.text import Vocabulary


def _one_hot(ids: list[int], vocab_size: int = 29) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(ids), vocab_size).float().log_softmax(-1)


def test_greedy_merges_repeats_and_drops_blanks() -> None:
    vocab = Vocabulary()
    h, e, l, o = (vocab.encode(c)[0] for c in "helo")  # noqa: E741
    frames = [0, h, h, 0, e, l, l, 0, l, o, o, 0]
    log_probs = _one_hot(frames)[None]
    assert greedy_ids(log_probs, torch.tensor([12])) == [[h, e, l, l, o]]
    assert greedy_decode(log_probs, torch.tensor([12]), vocab) == ["hello"]
    assert greedy_decode(log_probs, torch.tensor([6]), vocab) == ["hel"]  # respects lengths
    assert greedy_decode(log_probs, torch.tensor([0]), vocab) == [""]
    # a stream's chunks: the frame before a chunk merges with its repeats at the chunk's start
    ids = torch.tensor(frames)
    assert collapse(ids[:6]) + collapse(ids[6:], previous=l) == [h, e, l, l, o]
    assert collapse(ids[:5]) + collapse(ids[5:], previous=e) == [h, e, l, l, o]


def test_greedy_tidies_spaces() -> None:
    vocab = Vocabulary()
    a, sp = vocab.encode("a")[0], vocab.encode(" ")[0]
    log_probs = _one_hot([sp, a, sp, 0, sp, a, sp])[None]
    assert greedy_decode(log_probs, torch.tensor([7]), vocab) == ["a a"]


def test_scores() -> None:
    s = score(["the cat sat on the mat", "hello"], ["the hat sat the mat mat", ""])
    assert (s.words, s.utterances) == (7, 2)
    assert s.wer == pytest.approx(4 / 7)
    assert s.substitutions + s.deletions + s.insertions == 4
    assert score(["abc"], ["abc"]).wer == 0 and score(["abc"], ["abd"]).cer == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        score(["a", "b"], ["a"])


def test_alignment_marks_errors() -> None:
    aligned, errors = align("a b c d", "a x c d e")
    assert aligned == "a (b->x) c d (*->e)"
    assert errors == [("b", "x"), ("*", "e")]
    assert align("hello there", "hello") == ("hello (there->*)", [("there", "*")])


def test_result_files(tmp_path: Path) -> None:
    scores = write_results(tmp_path, "test", ["u2", "u1"], ["a b c", "d e"], ["a b c", "d x"])
    assert scores.wer == pytest.approx(1 / 5)
    recogs = (tmp_path / "recogs-test.txt").read_text().splitlines()
    assert recogs == ["u1\tref=d e\thyp=d x", "u2\tref=a b c\thyp=a b c"]
    errs = (tmp_path / "errs-test.txt").read_text()
    assert "u1:\td (e->x)" in errs and "1\te->x" in errs
    assert (tmp_path / "wer-test.txt").read_text().startswith("WER 20.00% [ 1 / 5, 0 ins, 0 del, 1 sub ]")


def _bowl(x: float, y: float) -> float:
    return (x - 0.7) ** 2 + 0.5 * (y - 1.9) ** 2 + 0.3 * (x - 0.7) * (y - 1.9)


def test_lm_weight_search_refines_the_best_random_point() -> None:
    trials = search_2d(_bowl, (0.0, 2.0), (-1.0, 3.0), trials=16, seed=0)
    assert len(trials) == 16 and len({(x, y) for x, y, _ in trials}) == 16
    assert all(0 <= x <= 2 and -1 <= y <= 3 and value == _bowl(x, y) for x, y, value in trials)
    x, y, value = min(trials, key=lambda t: t[2])
    random_best = min(value for _, _, value in trials[:8])
    assert random_best > 0.05  # the 8 seeded random points land far from (0.7, 1.9) ...
    assert abs(x - 0.7) < 0.05 and abs(y - 1.9) < 0.05 and value < 0.002  # ... the compass search does not


def test_lm_weight_grid_search() -> None:
    trials = search_2d(_bowl, (0.0, 2.0), (-1.0, 3.0), trials=9, grid=True)
    assert [(x, y) for x, y, _ in trials] == [(x, y) for x in (0.0, 1.0, 2.0) for y in (-1.0, 1.0, 3.0)]
    # about `trials` points on a square grid: 30 -> 5 x 5, the count the progress bar shows
    assert grid_side(30) == 5 and len(search_2d(_bowl, (0.0, 2.0), (-1.0, 3.0), trials=30, grid=True)) == 25
