"""Forced alignment: word times on the fixture clips, the match score of true and wrong
texts, the batch API, a manifest, and ``asr align`` with good and bad inputs."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from asr.align import AlignError, Alignment, align, align_batch, targets_of
from asr.audio import load_audio
from asr.checkpoint import LoadedModel, load_model
from asr.cli import main
from asr.decoding import greedy_hypothesis
from asr.text import Vocabulary
from asr.transcribe import posteriors_of
from tests.conftest import FIXTURES, asr_cli

TEXTS = ["hello world", "open the door", "the cat sat", "good morning"]
RATE = 16000
MARGIN = 1.0  # ln per frame between a clip's true text and another clip's (about 4 with the memorizing model)


@pytest.fixture(scope="module")
def loaded(overfit_checkpoint: Path) -> LoadedModel:
    return load_model(overfit_checkpoint)


def clips() -> list[np.ndarray]:
    return [load_audio(FIXTURES / f"utt{i}.wav") for i in range(4)]


def check_words(result: Alignment, text: str, start: float, end: float) -> None:
    """``result``'s words are ``text``'s, in order, non-overlapping, inside ``[start, end]``."""
    assert [w.word for w in result.words] == text.split()
    for w in result.words:
        assert start <= w.start < w.end <= end + 1e-6
        assert w.score <= 0
    for a, b in itertools.pairwise(result.words):
        assert a.end <= b.start


def test_targets_spell_words_with_spaces_and_count_repeats() -> None:
    vocab = Vocabulary()
    t = targets_of(vocab, "Hello, World!")
    assert t.text == "hello world"
    assert vocab.decode(t.ids) == "hello world"
    assert [(w, vocab.decode(t.ids[a:b])) for w, a, b in t.words] == [("hello", "hello"), ("world", "world")]
    assert t.min_frames == len("hello world") + 1  # the "ll" needs a blank between its l's
    with pytest.raises(AlignError, match=r"^x\.txt: no alignable characters"):
        targets_of(vocab, " ... ", "x.txt")


def test_words_of_the_true_text_are_ordered_and_inside_each_clip(loaded: LoadedModel) -> None:
    for audio, text in zip(clips(), TEXTS, strict=True):
        result = align(loaded, audio, text.upper() + ".")
        check_words(result, text, 0.0, len(audio) / RATE)
        assert result.duration == pytest.approx(len(audio) / RATE)
        assert -0.1 < result.score <= 0  # the model reads these texts by itself
        assert result.log_prob <= result.score


def test_the_true_text_scores_clearly_above_a_wrong_one(loaded: LoadedModel) -> None:
    for i, audio in enumerate(clips()):
        true = align(loaded, audio, TEXTS[i]).score
        for j, text in enumerate(TEXTS):
            if j != i:
                wrong = align(loaded, audio, text)
                assert wrong.score < true - MARGIN, (i, j, true, wrong.score)
                assert min(w.score for w in wrong.words) < -MARGIN


def test_word_times_are_the_greedy_decoders_when_the_model_reads_the_text(loaded: LoadedModel) -> None:
    # A text the model reads by itself is aligned along the best path, whose words
    # greedy_hypothesis times independently: a word spans its characters' frames.
    spf = loaded.config.seconds_per_frame
    for audio, text in zip(clips(), TEXTS, strict=True):
        result = align(loaded, audio, text)
        greedy = greedy_hypothesis(posteriors_of(loaded, [audio])[0], loaded.vocab, spf)
        assert greedy.text == text
        assert [w.word for w in result.words] == [w.word for w in greedy.words]
        times = [t for w in greedy.words for t in (w.start, min(w.end, result.duration))]
        assert [t for w in result.words for t in (w.start, w.end)] == pytest.approx(times)


@pytest.mark.parametrize(("a", "b"), [(0, 1), (2, 3), (3, 0)])
def test_words_keep_to_their_side_of_a_silence(robust_checkpoint: Path, a: int, b: int) -> None:
    # The memorizing model never heard silence; this one was trained with some around the clips.
    # These tiny models emit a word's first letter as soon as the speech before it ends (at
    # frame 0 for the first word of a clip with silence before it), so the first word of each
    # clip is checked by its end, the others by start and end.
    model = load_model(robust_checkpoint)
    first, second = clips()[a], clips()[b]
    x = np.concatenate([first, np.zeros(RATE // 2, np.float32), second])
    text = f"{TEXTS[a]} {TEXTS[b]}"
    result = align(model, x, text)
    check_words(result, text, 0.0, len(x) / RATE)
    n = len(TEXTS[a].split())
    end_first, join = len(first) / RATE, len(first) / RATE + 0.5
    assert abs(result.words[n - 1].end - end_first) < 0.15  # the first clip's words stay out of the silence
    assert all(w.end > join for w in result.words[n:])
    assert all(abs(w.start - join) < 0.15 or w.start > join for w in result.words[n + 1 :])
    assert abs(result.words[-1].end - len(x) / RATE) < 0.15


def test_batch_matches_single_alignments_and_keeps_errors_in_place(loaded: LoadedModel) -> None:
    audios = clips()
    items = [*zip(audios, TEXTS, strict=True), (audios[0][:3000], "hello world"), (audios[1], "!!")]
    results = align_batch(loaded, items, batch_seconds=2.5)  # several forward passes
    for audio, text, got in zip(audios, TEXTS, results[:4], strict=True):
        alone = align(loaded, audio, text)
        assert isinstance(got, Alignment)
        assert [w.word for w in got.words] == [w.word for w in alone.words]
        for w, v in zip(got.words, alone.words, strict=True):  # padding may move a boundary a frame at most
            assert abs(w.start - v.start) <= 0.041 and abs(w.end - v.end) <= 0.041
        assert got.score == pytest.approx(alone.score, abs=1e-2)
    assert isinstance(results[4], AlignError) and "item 4: audio too short for the text" in str(results[4])
    assert isinstance(results[5], AlignError) and "item 5: no alignable characters" in str(results[5])


def test_audio_too_short_for_the_text_is_a_clear_error(loaded: LoadedModel) -> None:
    with pytest.raises(AlignError, match=r"^short\.wav: audio too short for the text: .* need at least \d+"):
        align(loaded, clips()[0], " ".join(TEXTS * 2), "short.wav")
    with pytest.raises(AlignError, match=r"^tiny\.wav: audio too short"):
        align(loaded, np.zeros(100, np.float32), "hello", "tiny.wav")


def test_cli_prints_words_and_the_score(overfit_checkpoint: Path, tmp_path: Path) -> None:
    done = asr_cli("align", "--model", str(overfit_checkpoint), str(FIXTURES / "utt1.wav"), "Open the door!")
    assert done.returncode == 0, done.stderr
    *lines, summary = done.stdout.splitlines()
    assert [line.split()[3] for line in lines] == TEXTS[1].split()
    starts = [float(line.split()[0]) for line in lines]
    assert starts == sorted(starts)
    assert summary.startswith("# score ")

    text_file = tmp_path / "utt3.txt"
    text_file.write_text("Good morning.\n")
    argv = ["align", "--model", str(overfit_checkpoint), str(FIXTURES / "utt3.wav"), "--text-file", str(text_file)]
    done = asr_cli(*argv, "--format", "json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [w["word"] for w in result["words"]] == ["good", "morning"]
    assert result["audio"].endswith("utt3.wav") and result["score"] <= 0


def test_cli_bad_inputs_name_the_file(
    overfit_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = ["align", "--model", str(overfit_checkpoint)]
    missing = tmp_path / "nope.wav"
    assert main([*model, str(missing), "hello"]) == 1
    assert capsys.readouterr().err.startswith(f"error: {missing}: ")

    utt0 = str(FIXTURES / "utt0.wav")
    assert main([*model, utt0, " ".join(TEXTS * 2)]) == 1
    assert capsys.readouterr().err.startswith(f"error: {utt0}: audio too short for the text")

    assert main([*model, utt0, "?!"]) == 1
    assert capsys.readouterr().err.startswith(f"error: {utt0}: no alignable characters")

    assert main([*model, "--text-file", str(tmp_path / "none.txt"), utt0]) == 1
    assert f"{tmp_path / 'none.txt'}: cannot read the transcript" in capsys.readouterr().err


def test_cli_aligns_a_manifest(overfit_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"id": f"utt{i}", "audio": str(FIXTURES / f"utt{i}.wav"), "duration": 1.0, "text": t, "speaker": "s"}
            for i, t in enumerate(TEXTS)]  # fmt: skip
    rows.append({**rows[0], "id": "wrong", "text": TEXTS[2]})
    rows.append({**rows[0], "id": "missing", "audio": str(tmp_path / "gone.wav")})
    manifest, out = tmp_path / "in.jsonl", tmp_path / "out" / "aligned.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    rc = main(["align", "--model", str(overfit_checkpoint), "--manifest", str(manifest), "--out", str(out)])
    assert rc == 1  # one line's audio is missing; the others are still written
    err = capsys.readouterr().err
    assert "1 lines could not be aligned" in err and "gone.wav" in err
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [g["id"] for g in got] == [r["id"] for r in rows]
    for g, text in zip(got[:4], TEXTS, strict=True):
        assert [w["word"] for w in g["words"]] == text.split()
        assert g["align_score"] > -0.1 and g["speaker"] == "s" and Path(g["audio"]).is_file()
    assert got[4]["align_score"] < got[0]["align_score"] - MARGIN
    assert got[5]["align_score"] is None and got[5]["words"] == [] and "gone.wav" in got[5]["align_error"]
    assert not list(out.parent.glob(".*.tmp*"))
