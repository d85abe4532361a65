"""bench/peer_data.py (the peers' data adapter) and the SpeechBrain model of bench/peer_training.py,
on the committed fixture clips."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import soundfile as sf
import torch

from asr.checkpoint import build
from asr.config import AugmentConfig, ExperimentConfig, TrainConfig
from asr.text import Vocabulary, normalize
from asr.train import make_loader

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import peer_data
import peer_training

BATCH_SECONDS = 2.5  # the fixtures last 0.88-1.2 s: two a batch


def fixture_rows(manifest: Path) -> dict[str, dict]:
    return {row["id"]: row for row in map(json.loads, manifest.read_text().splitlines())}


def stream_of(manifest: Path, **kw) -> peer_data.TrainStream:
    return peer_data.TrainStream(peer_data.TrainData((str(manifest),), batch_seconds=BATCH_SECONDS, **kw))


def test_batches_hold_16k_waveforms_and_vocabulary_targets(fixtures_manifest: Path) -> None:
    rows, vocab = fixture_rows(fixtures_manifest), Vocabulary()
    stream = stream_of(fixtures_manifest)
    seen = []
    for batch in first_batches(stream, len(stream.epoch_batches(0))):
        assert batch.waveforms.dtype == torch.float32 and batch.waveforms.ndim == 2
        assert batch.waveforms.shape == (len(batch.ids), int(batch.audio_lengths.max()))
        for i, utt in enumerate(batch.ids):
            audio, rate = sf.read(fixtures_manifest.parent / rows[utt]["audio"], dtype="float32")
            assert rate == peer_data.SAMPLE_RATE == 16000
            assert int(batch.audio_lengths[i]) == len(audio)
            assert torch.allclose(batch.waveforms[i, : len(audio)], torch.from_numpy(audio))
            assert not batch.waveforms[i, len(audio) :].any()  # zero padding
            expected = vocab.encode(normalize(rows[utt]["text"]))
            assert int(batch.target_lengths[i]) == len(expected)
            assert batch.targets[i, : len(expected)].tolist() == expected
            assert not batch.targets[i, len(expected) :].any()
        seen += batch.ids
    assert sorted(seen) == sorted(rows)  # one epoch: every clip once


def first_batches(stream: peer_data.TrainStream, n: int) -> list[peer_data.Batch]:
    """The stream's first ``n`` batches (it has no end)."""
    return [batch for _, batch in zip(range(n), stream, strict=False)]


def test_buckets_respect_batch_seconds_and_the_first_epoch_is_sorted(fixtures_manifest: Path) -> None:
    stream = stream_of(fixtures_manifest)
    durations = [u.duration for u in stream.dataset.utts]
    for epoch in range(3):
        plan = stream.epoch_batches(epoch)
        assert sorted(i for b in plan for i in b) == [0, 1, 2, 3]
        assert all(len(b) * max(durations[i] for i in b) <= BATCH_SECONDS for b in plan)
        assert all(len(b) == 2 for b in plan)  # and as full as it allows
    longest = durations.index(max(durations))
    assert longest in stream.epoch_batches(0)[-1]  # SortaGrad (jittered), as asr train's first epoch


def test_the_batches_and_augmentation_are_asr_trains(fixtures_manifest: Path) -> None:
    augment = AugmentConfig(band_rates="8000,11025")
    stream = stream_of(fixtures_manifest, augment=augment)
    tc = TrainConfig(batch_seconds=BATCH_SECONDS, num_workers=0)
    loader = make_loader(str(fixtures_manifest), build(ExperimentConfig(augment=augment, train=tc)), tc, train=True)
    for epoch in (0, 1):
        loader.batch_sampler.set_position(epoch)
        loader.batch_sampler.sampler.sorted_first = epoch == 0
        assert stream.epoch_batches(epoch) == [[i for i, _ in keys] for keys in loader.batch_sampler]
    loader.batch_sampler.set_position(0)
    loader.batch_sampler.sampler.sorted_first = True
    ours, theirs = next(iter(stream)), next(iter(loader))
    assert ours.ids == theirs.ids
    assert torch.equal(ours.waveforms, theirs.waveforms)  # the same band-limited audio


def test_mix_weights_and_planned_audio(fixtures_manifest: Path) -> None:
    data = peer_data.TrainData((str(fixtures_manifest),) * 2, weights=(1, 2), batch_seconds=BATCH_SECONDS)
    stream = peer_data.TrainStream(data)
    total = sum(r["duration"] for r in fixture_rows(fixtures_manifest).values())
    assert stream.epoch_seconds == pytest.approx(3 * total)
    assert sum(len(b) for b in stream.epoch_batches(0)) == 12  # 4 once + 4 twice
    n = len(stream.epoch_batches(0)) + 1  # into the second epoch
    first_batches(stream, n)
    seconds, epochs = peer_data.TrainStream(data).planned_audio(n)
    assert (stream.batches, epochs) == (n, 2)
    assert seconds == pytest.approx(stream.audio_seconds) and seconds > 3 * total
    with pytest.raises(ValueError, match="2 mix weights for 1"):
        peer_data.TrainData((str(fixtures_manifest),), weights=(1, 2)).sample_weights()


def test_eval_loader_and_relative_lengths(fixtures_manifest: Path) -> None:
    utts, loader = peer_data.eval_loader(fixtures_manifest, BATCH_SECONDS)
    assert [u.id for u in utts] == ["utt0", "utt1", "utt2", "utt3"]
    batches = list(loader)
    assert sorted(i for b in batches for i in b.ids) == [u.id for u in utts]
    rel = peer_data.relative_lengths(batches[0].audio_lengths)
    assert float(rel.max()) == 1.0 and torch.allclose(
        rel * batches[0].audio_lengths.max(), batches[0].audio_lengths.float()
    )


def test_bad_manifest_lines_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": "a", "audio": "missing.wav", "duration": 1.0, "text": "hi"}) + "\n")
    with pytest.raises(peer_data.ManifestError, match=r"bad\.jsonl:1"):
        peer_data.checked_utterances(bad, Vocabulary())


def test_fit_width_reports_an_unreachable_count() -> None:
    with pytest.raises(ValueError, match="10 %"):
        peer_training.fit_width(lambda w: torch.nn.Linear(w, 1), 10_000, 8, 64)  # at most 65 parameters
    assert peer_training.count_parameters(peer_training.fit_width(lambda w: torch.nn.Linear(w, 1), 200, 8, 512)) == 201


def test_speechbrain_model_size_and_one_ctc_step(fixtures_manifest: Path) -> None:
    pytest.importorskip("speechbrain", reason="speechbrain not installed (pip install -c constraints.txt speechbrain)")
    torch.manual_seed(0)
    target = 1_000_000
    model = peer_training.speechbrain_model(target, len(Vocabulary()))
    assert abs(peer_training.count_parameters(model) - target) <= 0.1 * target
    _, loader = peer_data.eval_loader(fixtures_manifest, 10.0)
    batch = next(iter(loader))
    assert len(batch.ids) == 4
    model.train()
    log_probs, frames = model(batch.waveforms, batch.audio_lengths, epoch=1)
    assert log_probs.shape[0] == 4 and log_probs.shape[2] == len(Vocabulary())
    assert int(frames.max()) == log_probs.shape[1] == (int(batch.audio_lengths.max()) // 160 + 1) // 4
    assert torch.allclose(log_probs.exp().sum(-1), torch.ones(log_probs.shape[:2]), atol=1e-4)
    loss = peer_training.speechbrain_loss(model, batch, epoch=1)
    loss.backward()
    assert torch.isfinite(loss) and float(loss.detach()) > 0
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
