"""Units from the training text (asr.units): characters and SentencePiece pieces, their
vocabulary, and a model trained on pieces that reads the fixture clips back."""

import json
import pickle
from dataclasses import replace
from pathlib import Path

import pytest

from asr.config import ConfigError, TextConfig
from asr.units import SentencePieceVocabulary, build_units, vocabulary_of

TEXTS = ["the cat sat on the mat", "the dog sat on the log", "a cat and a dog", "hello world", "open the door",
         "good morning", "the door is open", "the world is good"] * 4  # fmt: skip


def test_char_units_and_config_checks() -> None:
    assert build_units("char", ["ab c", "b'd"]) == (" 'abcd", "")
    for bad in ("bpe", "bpe:0", "words", "unigram:x"):
        with pytest.raises(ConfigError, match=r"text\.units .*vocabulary, char, bpe:N or unigram:N"):
            TextConfig(units=bad)
    assert TextConfig(units="unigram:500").units == "unigram:500"


@pytest.mark.parametrize("spec", ["bpe:40", "unigram:28"])
def test_sentencepiece_units_round_trip(spec: str) -> None:
    vocabulary, model = build_units(spec, TEXTS)
    assert vocabulary == "" and model
    assert build_units(spec, TEXTS)[1] == model  # the same pieces every time (every rank)
    vocab = vocabulary_of(vocabulary, model)
    size = int(spec.split(":")[1])
    assert isinstance(vocab, SentencePieceVocabulary) and len(vocab) == size + 1 and vocab.symbols[0] == "<blank>"
    assert any(s.startswith("\u2581") and len(s) > 2 for s in vocab.symbols)  # whole-word pieces
    ids = vocab.encode("the cat sat on the door")
    assert 0 not in ids and len(ids) < len("the cat sat on the door")
    assert vocab.decode([0, *ids, 0]) == "the cat sat on the door"
    assert vocab.unknown("the zoo") == ["z"] and vocab.unknown("the cat") == []
    with pytest.raises(ValueError, match=r"characters 'z' not in the SentencePiece units"):
        vocab.encode("the zoo")
    clone = pickle.loads(pickle.dumps(vocab))  # loader workers
    assert clone.encode("hello world") == vocab.encode("hello world")


def test_too_many_pieces_for_the_text_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="SentencePiece bpe:5000"):
        build_units("bpe:5000", ["a b", "b a"])


def test_pieces_carry_training_and_decoding(tmp_path: Path, fixtures_manifest: Path) -> None:
    """``text.units bpe:N``: the first run trains the pieces on the fixture texts, the
    checkpoint keeps them, the model memorizes the clips and greedy decoding, ``asr transcribe``
    and beam search read them back."""
    from asr.audio import load_audio
    from asr.checkpoint import load_model
    from asr.config import DecodingConfig
    from asr.data import read_manifest
    from asr.decoding import BeamSearchDecoder
    from asr.train import train
    from asr.transcribe import decode_posteriors, posteriors_of
    from tests.conftest import asr_cli, tiny_config

    cfg = tiny_config(tmp_path / "exp", fixtures_manifest, epochs=100)
    best = train(replace(cfg, text=TextConfig(units="bpe:20")))
    loaded = load_model(best)
    assert isinstance(loaded.vocab, SentencePieceVocabulary) and len(loaded.vocab) == 21
    utts = read_manifest(fixtures_manifest)
    audios = [load_audio(u.audio) for u in utts]
    assert decode_posteriors(loaded, posteriors_of(loaded, audios), None) == [u.text for u in utts]
    done = asr_cli("transcribe", "--model", str(best), "--format", "json", str(utts[1].audio))
    assert done.returncode == 0, done.stderr
    assert [w["word"] for w in json.loads(done.stdout)["words"]] == ["open", "the", "door"]  # words at ▁ pieces
    # beam search over pieces: words end where a ▁ piece starts (a virtual space in the search)
    decoder = BeamSearchDecoder(loaded.vocab, DecodingConfig(beam_size=16), hotwords=[("open the", 1.0)])
    posts = posteriors_of(loaded, audios)
    for post, utt in zip(posts, utts, strict=True):
        best = decoder.decode(post)[0]
        assert best.text == utt.text and [w.word for w in best.words] == utt.text.split()
