import json
from pathlib import Path

import pytest
import torch

from asr.data import (
    AudioDataset,
    BucketingBatchSampler,
    ManifestError,
    Utterance,
    collate,
    padding_fraction,
    read_manifest,
    write_manifest,
)
from asr.text import Vocabulary


def test_manifest_paths_relative_to_manifest(fixtures_manifest: Path) -> None:
    utts = read_manifest(fixtures_manifest)
    assert [u.id for u in utts] == ["utt0", "utt1", "utt2", "utt3"]
    assert utts[0].audio == fixtures_manifest.parent / "utt0.wav" and utts[0].audio.is_file()
    assert utts[0].text == "hello world" and utts[0].duration == pytest.approx(0.959)


def test_manifest_round_trip(tmp_path: Path) -> None:
    audio = tmp_path / "wav" / "a.wav"
    outside = Path("/elsewhere/b.wav")
    write_manifest(tmp_path / "m.jsonl", [Utterance("a", audio, 1.23456, "hi"), Utterance("b", outside, 2, "yo")])
    rows = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert rows[0] == {"id": "a", "audio": "wav/a.wav", "duration": 1.235, "text": "hi"}
    assert rows[1]["audio"] == "/elsewhere/b.wav"
    assert read_manifest(tmp_path / "m.jsonl")[0].audio == audio


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": "a", "audio": "x.wav", "duration": 1}\n', r"m\.jsonl:1: missing keys \['text'\]"),
        ('{"id": "a", "audio": "x.wav", "duration": 1, "text": "a"}\n{oops\n', r"m\.jsonl:2: not valid JSON"),
        ("\n", r"m\.jsonl: manifest is empty"),
    ],
)
def test_bad_manifests(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "m.jsonl").write_text(content)
    with pytest.raises(ManifestError, match=message):
        read_manifest(tmp_path / "m.jsonl")
    with pytest.raises(ManifestError, match="no such manifest"):
        read_manifest(tmp_path / "missing.jsonl")


def test_dataset_and_collate(fixtures_manifest: Path) -> None:
    dataset = AudioDataset(read_manifest(fixtures_manifest), Vocabulary())
    batch = collate([dataset[0], dataset[1]])
    assert batch.ids == ["utt0", "utt1"]
    assert batch.waveforms.shape == (2, int(batch.audio_lengths.max()))
    assert abs(int(batch.audio_lengths[0]) - 0.959 * 16000) <= 8  # duration is rounded to 1 ms
    assert batch.target_lengths.tolist() == [len("hello world"), len("open the door")]
    assert Vocabulary().decode(batch.targets[1].tolist()) == "open the door"
    assert batch.waveforms[0, int(batch.audio_lengths[0]) :].abs().sum() == 0


def _durations(n: int = 500) -> list[float]:
    gen = torch.Generator().manual_seed(1)
    return (torch.rand(n, generator=gen) * 9 + 1).tolist()


def test_bucketing_respects_budget_and_covers_everything() -> None:
    durations = _durations()
    sampler = BucketingBatchSampler(durations, batch_seconds=60.0, seed=3)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(durations)))
    assert all(len(b) * max(durations[i] for i in b) <= 60.0 for b in batches)
    assert padding_fraction(batches, durations) < 0.1


def test_bucketing_shuffles_between_epochs_deterministically() -> None:
    durations = _durations()
    a = BucketingBatchSampler(durations, 60.0, seed=3)
    b = BucketingBatchSampler(durations, 60.0, seed=3)
    first = list(a)
    assert first == list(b)
    a.set_epoch(1)
    assert list(a) != first
    unshuffled = list(BucketingBatchSampler(durations, 60.0, shuffle=False))
    longest = [max(durations[i] for i in batch) for batch in unshuffled]
    assert longest == sorted(longest)


def test_bucketing_rejects_budget_below_longest() -> None:
    with pytest.raises(ValueError, match="below the longest utterance"):
        BucketingBatchSampler([1.0, 30.0], batch_seconds=10.0)


def test_mix_weights_set_how_often_each_utterance_comes() -> None:
    from collections import Counter

    from asr.data import DistributedBatchSampler

    durations = [1.0 + 0.01 * i for i in range(40)]
    weights = [1.0] * 10 + [2.0] * 10 + [0.5] * 20  # a manifest once, one twice, one in half the epochs
    sampler = BucketingBatchSampler(durations, 10.0, seed=3, weights=weights)
    halves = []
    for epoch in range(2):
        sampler.set_epoch(epoch)
        counts = Counter(i for b in sampler for i in b)
        assert all(counts[i] == 1 for i in range(10)) and all(counts[i] == 2 for i in range(10, 20))
        assert set(counts[i] for i in range(20, 40)) <= {0, 1}
        halves.append({i for i in range(20, 40) if counts[i]})
        assert 5 <= len(halves[-1]) <= 15
    assert halves[0] != halves[1]  # a different half each epoch
    seeds: dict[int, set[int]] = {}
    for batch in DistributedBatchSampler(sampler):
        for i, seed in batch:
            seeds.setdefault(i, set()).add(seed)
    assert all(len(seeds[i]) == 2 for i in range(10, 20))  # each copy augmented its own way
    with pytest.raises(ValueError, match="weights"):
        BucketingBatchSampler(durations, 10.0, weights=[1.0])
