"""Word confidence: right/wrong labels, ECE and AUROC, calibration maps, and thresholds in
the output formats."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from asr.confidence import (
    Calibration,
    auroc,
    expected_calibration_error,
    fit_calibration,
    labelled_words,
    report,
    word_labels,
)
from asr.decoding import Word
from asr.formats import render
from asr.transcribe import SegmentResult, Transcript


def test_word_labels_follow_the_wer_alignment() -> None:
    assert word_labels("the cat sat", ["the", "bat", "sat", "down"]) == [True, False, True, False]
    assert word_labels("the cat sat", ["cat", "sat"]) == [True, True]  # a deletion costs no hypothesis word
    assert word_labels("", ["noise"]) == [False] and word_labels("the cat", []) == []
    confidence, right = labelled_words(["a b", "c"], [[("a", 0.9), ("x", 0.4)], [("c", 0.7)]])
    assert confidence.tolist() == [0.9, 0.4, 0.7] and right.tolist() == [1.0, 0.0, 1.0]


def test_ece_and_auroc_by_hand() -> None:
    # bin 0.9: half right (gap 0.4, half the words); bin 0.1: none right (gap 0.1, half)
    assert expected_calibration_error(np.array([0.9, 0.9, 0.1, 0.1]), np.array([1, 0, 0, 0])) == pytest.approx(0.25)
    assert expected_calibration_error(np.array([1.0, 0.0]), np.array([1, 0])) == 0.0  # 1.0 falls in the top bin
    # right {0.9, 0.3} against wrong {0.8, 0.1}: 3 of the 4 pairs ordered right
    assert auroc(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0])) == pytest.approx(0.75)
    assert auroc(np.array([0.5, 0.5]), np.array([1, 0])) == 0.5  # a tie counts half
    assert math.isnan(auroc(np.array([0.2, 0.9]), np.array([1, 1])))
    r = report(np.array([0.9, 0.8, 0.3, 0.1]), np.array([1, 0, 1, 0]))
    assert r.words == 4 and r.accuracy == 0.5 and "AUROC 0.750 over 4 words (50.0 % right)" in r.summary()


def overconfident(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Raw scores of a model that is right with probability raw**3 (so raw is too high)."""
    rng = np.random.default_rng(seed)
    raw = rng.uniform(0.0, 1.0, n)
    return raw, (rng.uniform(0.0, 1.0, n) < raw**3).astype(float)


@pytest.mark.parametrize("method", ["isotonic", "temperature"])
def test_calibration_fitted_on_dev_fixes_ece_on_test_and_keeps_auroc(method: str) -> None:
    dev, test = overconfident(4000, 0), overconfident(4000, 1)
    calibration = fit_calibration(*dev, method)
    before, after = report(*test), report(calibration.apply(test[0]), test[1])
    assert before.ece > 0.2 and after.ece < 0.03
    assert abs(after.auroc - before.auroc) < 0.01  # a monotone map (ties aside) keeps the ranking
    grid = calibration.apply(np.linspace(0, 1, 101))
    assert np.all(np.diff(grid) >= 0) and grid.min() > 0 and grid.max() < 1
    again = Calibration.from_dict(json.loads(json.dumps(calibration.to_dict())))
    np.testing.assert_allclose(again.apply(test[0]), calibration.apply(test[0]), atol=1e-4)


def test_bad_calibrations_are_refused() -> None:
    with pytest.raises(ValueError, match="'platt' is not one of isotonic, temperature"):
        Calibration.from_dict({"method": "platt"})
    with pytest.raises(ValueError, match="needs as many x as y"):
        Calibration.from_dict({"method": "isotonic", "x": [0.1, 0.2], "y": [0.5]})
    with pytest.raises(ValueError, match="not a confidence calibration"):
        Calibration.from_dict({"x": []})
    with pytest.raises(ValueError, match="at least 2 words"):
        fit_calibration(np.array([0.5]), np.array([1.0]))


def transcript() -> Transcript:
    words = (Word("good", 0.1, 0.4, 0.95), Word("mourning", 0.5, 0.9, 0.42), Word("all", 1.0, 1.2, 0.8))
    return Transcript("good mourning all", words, (SegmentResult(0.0, 1.5, "good mourning all", words),), 1.5)


def test_min_confidence_marks_or_drops_words_in_every_format() -> None:
    marked = json.loads(render(transcript(), "json", "a.wav", min_confidence=0.5))
    assert [w.get("low_confidence", False) for w in marked["words"]] == [False, True, False]
    assert marked["text"] == "good mourning all"
    assert "good <i>mourning</i> all" in render(transcript(), "srt", "a.wav", 0.5)
    assert "good <i>mourning</i> all" in render(transcript(), "vtt", "a.wav", 0.5)
    assert render(transcript(), "text", "a.wav", 0.5) == "good mourning all\n"  # plain text keeps them
    dropped = json.loads(render(transcript(), "json", "a.wav", 0.5, "drop"))
    assert dropped["text"] == "good all" and [w["word"] for w in dropped["words"]] == ["good", "all"]
    assert dropped["segments"][0]["text"] == "good all"
    assert "good all" in render(transcript(), "vtt", "a.wav", 0.5, "drop") and "<i>" not in render(
        transcript(), "srt", "a.wav", 0.5, "drop"
    )
    assert render(transcript(), "text", "a.wav", 0.9, "drop") == "good\n"
    assert "<i>" not in render(transcript(), "srt", "a.wav")  # no threshold: nothing marked
