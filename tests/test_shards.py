"""WebDataset shards: writing, reading at offsets, the shard-aware bucketing plan, errors."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asr.audio import AudioError, load_audio
from asr.config import ConfigError
from asr.data import DistributedBatchSampler, ManifestError, read_manifest
from asr.shards import ShardBatchSampler, ShardDataset, read_shard_index, training_dataset, write_shards
from asr.text import Vocabulary


@pytest.fixture
def shard_dir(tmp_path: Path, fixtures_manifest: Path) -> Path:
    write_shards(fixtures_manifest, tmp_path / "shards", shard_mb=0.05)  # ~32 KB clips: 2 per shard
    return tmp_path / "shards"


def test_shards_hold_the_manifest_and_read_back_identically(shard_dir: Path, fixtures_manifest: Path) -> None:
    utts = read_manifest(fixtures_manifest)
    sharded = read_shard_index(shard_dir)
    assert [s.utt.id for s in sharded] == [u.id for u in utts]
    assert [s.utt.text for s in sharded] == [u.text for u in utts]
    assert sorted(p.name for p in shard_dir.glob("*.tar")) == ["shard-000000.tar", "shard-000001.tar"]
    dataset = ShardDataset(sharded, Vocabulary())
    for i, u in enumerate(utts):
        np.testing.assert_array_equal(dataset.load(i), load_audio(u.audio))
    _, tokens, uid = dataset[(2, 123)]
    assert uid == "utt2" and Vocabulary().decode(tokens.tolist()) == "the cat sat"


def test_webdataset_reads_the_shards(shard_dir: Path) -> None:
    import webdataset as wds

    urls = [str(p) for p in sorted(shard_dir.glob("*.tar"))]
    samples = list(wds.WebDataset(urls, shardshuffle=False).decode())
    assert [s["json"]["text"] for s in samples] == ["hello world", "open the door", "the cat sat", "good morning"]
    assert all("wav" in s for s in samples)


def test_shard_plan_splits_shards_across_ranks_deterministically() -> None:
    durations = [1.0 + (i % 7) * 0.5 for i in range(120)]
    shard_of = [i // 10 for i in range(120)]  # 12 shards of 10 utterances
    plans = []
    for rank in range(3):
        plan = ShardBatchSampler(durations, shard_of, batch_seconds=8.0, buffer=25, seed=5)
        sampler = DistributedBatchSampler(plan, rank, 3)
        sampler.set_position(epoch=2)
        plans.append([[i for i, _ in b] for b in sampler])
    assert len({len(p) for p in plans}) == 1  # equal batch counts: collectives stay in step
    shards = [{shard_of[i] for b in p for i in b} for p in plans]
    assert all(len(s) == 4 for s in shards) and not (shards[0] & shards[1] or shards[1] & shards[2])
    for p in plans:
        for b in p:
            assert len(b) * max(durations[i] for i in b) <= 8.0
    again = DistributedBatchSampler(ShardBatchSampler(durations, shard_of, 8.0, buffer=25, seed=5), 1, 3)
    again.set_position(epoch=2, start=3)  # resume: the same plan from its 4th batch
    assert [[i for i, _ in b] for b in again] == plans[1][3:]
    again.set_position(epoch=3)
    assert [[i for i, _ in b] for b in again] != plans[1]
    with pytest.raises(ValueError, match="12 shards cannot feed 16 processes"):
        ShardBatchSampler(durations, shard_of, 8.0).batches_for(0, 16)


def test_shard_errors_name_the_file(shard_dir: Path, tmp_path: Path) -> None:
    sharded = read_shard_index(shard_dir)
    tar = shard_dir / "shard-000001.tar"
    tar.write_bytes(tar.read_bytes()[:20000])
    with pytest.raises(AudioError, match=r"shard-000001\.tar: shard is truncated \(utterance utt3"):
        ShardDataset(sharded, Vocabulary()).load(3)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match=r"empty/index\.jsonl: no shard index"):
        read_shard_index(tmp_path / "empty")


def test_cli_shards_then_train_two_processes_from_them(tmp_path: Path, fixtures_manifest: Path) -> None:
    cmd = [sys.executable, "-m", "asr.cli", "shards", str(fixtures_manifest), "--out", str(tmp_path / "shards"),
           "--shard-mb", "0.03"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "wrote 4 shards (4 utterances, 0.00 h)" in result.stdout
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "asr.cli",
           "train", "--train.train_manifest", str(tmp_path / "shards"), "--train.dev_manifest", str(fixtures_manifest),
           "--train.out_dir", str(tmp_path / "exp"), "--train.epochs", "2", "--train.batch_seconds", "1.3",
           "--train.num_workers", "1", "--model.hidden_size", "32", "--model.num_layers", "1",
           "--train.precision", "fp32"]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    log = (tmp_path / "exp" / "train.log").read_text()
    assert f"{tmp_path / 'shards'}: 4 utterances" in log
    assert "done: 2 epochs, 4 steps" in log  # each rank: 2 shards of one utterance, 1.3 s batches


def test_training_dataset_of_a_shard_directory(shard_dir: Path, fixtures_manifest: Path) -> None:
    durations = [u.duration for u in read_manifest(fixtures_manifest)]
    dataset, weights = training_dataset(str(shard_dir), Vocabulary(), max_duration=sorted(durations)[-2])
    assert isinstance(dataset, ShardDataset) and len(dataset) == 3 and weights == [1.0] * 3  # the longest dropped
    plan = dataset.batch_plan(8.0, shuffle=False, seed=0)
    assert isinstance(plan, ShardBatchSampler) and sorted(i for b in plan.batches_for(0, 1) for i in b) == [0, 1, 2]
    with pytest.raises(ConfigError, match="a shard directory is one part read in shard order: no mixing weights"):
        dataset.batch_plan(8.0, shuffle=True, seed=0, weights=[2.0] * 3)
