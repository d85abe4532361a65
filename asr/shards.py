"""WebDataset tar shards of a manifest, training from them, and :func:`training_dataset`: the
dataset of a training manifest argument (JSONL manifests joined by commas, or a shard directory).

``asr shards train.jsonl --out DIR --shard-mb 256`` writes ``DIR/shard-000000.tar``, ...
in WebDataset's layout (per utterance ``<key>.<ext>``, the original audio bytes, and
``<key>.json`` with id, duration and text: ``webdataset.WebDataset`` reads them as they are)
and, last, ``DIR/index.jsonl``: a manifest whose rows add each audio member's byte
``offset`` and ``size`` inside its shard.

Training on ``DIR`` (or its ``index.jsonl``) as the train manifest:

* :class:`ShardBatchSampler` plans each epoch: the shards in a seeded random order, split
  across ranks (rank ``r`` of ``w`` takes every ``w``-th shard), each rank's utterances in
  shard order through a shuffle buffer of ``buffer`` utterances, bucketed by duration
  inside the buffer. A batch thus comes from one or two neighbouring shards: loader workers,
  which each read whole batches, read each shard's bytes nearly in order.
* :class:`ShardDataset` reads a member with one ``pread`` at its offset (no tar scan).

The plan is a function of (seed, epoch, rank, world), so a resumed run skips the batches
already trained without reading them (:class:`asr.data.DistributedBatchSampler`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr.audio import SAMPLE_RATE, AudioError, decode_audio
from asr.config import ConfigError
from asr.data import AudioDataset, DurationBatching, ManifestError, Utterance, bucket, read_manifest, total_hours
from asr.files import write_text
from asr.text import Vocabulary, normalize

log = logging.getLogger("asr.data")
INDEX = "index.jsonl"
PATTERN = "shard-%06d.tar"


@dataclass(frozen=True)
class ShardedUtterance:
    """Where an utterance's audio lies: ``size`` bytes at ``offset`` of ``shard``."""

    utt: Utterance  # utt.audio is the shard's path
    offset: int
    size: int
    format: str  # file extension of the audio member (wav, flac, ...)


def write_shards(manifest: str | Path, out_dir: str | Path, shard_mb: float = 256.0) -> Path:
    """Pack ``manifest``'s audio and transcripts into tar shards of about ``shard_mb``
    megabytes under ``out_dir``; returns the path of ``index.jsonl`` (written last). Each
    utterance keeps its text as the manifest wrote it (``raw_text``), so a reader normalizes
    it in its own language (:func:`read_shard_index`)."""
    import webdataset as wds

    utts = read_manifest(manifest)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("shard-*.tar"):
        old.unlink()
    (out_dir / INDEX).unlink(missing_ok=True)
    with wds.ShardWriter(str(out_dir / PATTERN), maxsize=int(shard_mb * 1e6), maxcount=10**9, verbose=0) as sink:
        for i, u in enumerate(utts):
            try:
                data = u.audio.read_bytes()
            except OSError as e:
                raise AudioError(f"{u.audio}: cannot read ({e.strerror}), listed in {manifest}") from None
            meta = {"id": u.id, "duration": u.duration, "text": u.text, "raw_text": u.raw_text or u.text}
            sink.write({"__key__": f"{i:09d}", u.audio.suffix.lstrip(".").lower() or "wav": data, "json": meta})
    rows = []
    for shard in sorted(out_dir.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar:
                key, _, ext = member.name.partition(".")
                if ext != "json":
                    meta = json.loads(tar.extractfile(f"{key}.json").read())
                    rows.append({**meta, "audio": shard.name, "offset": member.offset_data, "size": member.size,
                                 "format": ext})  # fmt: skip
    return write_text(out_dir / INDEX, "".join(json.dumps(r) + "\n" for r in rows))


def is_shard_index(path: str | Path) -> bool:
    """Whether ``path`` is a shard directory or its ``index.jsonl``."""
    path = Path(path)
    return path.is_dir() or path.name == INDEX


def read_shard_index(path: str | Path, language: str = "en") -> list[ShardedUtterance]:
    """The utterances of a shard directory (or its ``index.jsonl``), in shard order, their
    texts normalized in ``language`` (from ``raw_text``; an older index has ``text`` only)."""
    path = Path(path)
    index = path / INDEX if path.is_dir() else path
    if not index.is_file():
        raise ManifestError(f"{index}: no shard index (was `asr shards` interrupted?)")
    out = []
    with index.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            try:
                r = json.loads(line)
                raw = str(r.get("raw_text") or r["text"])
                utt = Utterance(r["id"], index.parent / r["audio"], float(r["duration"]), normalize(raw, language), raw)
                out.append(ShardedUtterance(utt, int(r["offset"]), int(r["size"]), r["format"]))
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                raise ManifestError(f"{index}:{lineno}: not a shard index row ({e})") from None
    if not out:
        raise ManifestError(f"{index}: shard index is empty")
    return out


class ShardDataset(AudioDataset):
    """:class:`~asr.data.AudioDataset` over shards: audio read at its offset in the tar."""

    def __init__(self, sharded: Sequence[ShardedUtterance], *args, **kwargs) -> None:
        super().__init__([s.utt for s in sharded], *args, **kwargs)
        self.sharded = list(sharded)
        self._fds: dict[Path, int] = {}  # opened lazily in each loader worker

    def load(self, index: int) -> np.ndarray:
        s = self.sharded[index]
        path = s.utt.audio
        try:
            if path not in self._fds:
                self._fds[path] = os.open(path, os.O_RDONLY)
            data = os.pread(self._fds[path], s.size, s.offset)
        except OSError as e:
            raise AudioError(f"{path}: cannot read shard ({e.strerror})") from None
        if len(data) != s.size:
            raise AudioError(f"{path}: shard is truncated (utterance {s.utt.id} ends past its end)")
        return decode_audio(data, f"{path}:{s.utt.id}.{s.format}", self.sample_rate)

    def __getstate__(self) -> dict:  # file descriptors do not travel to workers
        return {**self.__dict__, "_fds": {}}

    def subset(self, keep: Sequence[int]) -> ShardDataset:
        return ShardDataset([self.sharded[i] for i in keep], self.vocab, self.sample_rate, self.transform)

    def batch_plan(
        self, batch_seconds: float, shuffle: bool, seed: int, weights: Sequence[float] | None = None, buffer: int = 2000
    ) -> ShardBatchSampler:
        """Batches read shard by shard through a shuffle buffer of ``buffer`` utterances
        (mixing weights do not apply: a shard directory is one part)."""
        if weights is not None and set(weights) != {1.0}:  # train.mix_weights
            where = self.sharded[0].utt.audio.parent if self.sharded else "shards"
            raise ConfigError(f"{where}: a shard directory is one part read in shard order: no mixing weights")
        durations = [s.utt.duration for s in self.sharded]
        numbers = {name: i for i, name in enumerate(sorted({s.utt.audio.name for s in self.sharded}))}
        shard_of = [numbers[s.utt.audio.name] for s in self.sharded]
        return ShardBatchSampler(durations, shard_of, max(batch_seconds, max(durations)), buffer, shuffle, seed)


class ShardBatchSampler(DurationBatching):
    """Each epoch's batches over shards, split across ranks by shard (see the module doc).

    ``shard_of[i]`` is utterance ``i``'s shard number (utterances listed in shard order).
    ``sorted_first`` (SortaGrad) orders each buffer's batches shortest first.
    """

    def __init__(
        self,
        durations: Sequence[float],
        shard_of: Sequence[int],
        batch_seconds: float,
        buffer: int = 2000,
        shuffle: bool = True,
        seed: int = 0,
        jitter: float = 0.1,
    ) -> None:
        super().__init__(durations, batch_seconds, shuffle, seed, jitter)
        self.buffer = buffer
        self.shards: dict[int, list[int]] = {}
        for i, shard in enumerate(shard_of):
            self.shards.setdefault(shard, []).append(i)
        self._cache: dict[tuple[int, bool, int, int], list[list[int]]] = {}

    def batches_for(self, rank: int, world: int) -> list[list[int]]:
        key = (self.epoch, self.sorted_first, rank, world)
        if key not in self._cache:
            self._cache = {k: v for k, v in self._cache.items() if k[0] == self.epoch}  # this epoch's only
            self._cache[key] = self._plan(rank, world)
        return self._cache[key]

    def _plan(self, rank: int, world: int) -> list[list[int]]:
        order = sorted(self.shards)
        if self.shuffle:
            random.Random(self.seed * 100003 + self.epoch).shuffle(order)
        if len(order) < world:
            raise ValueError(f"{len(order)} shards cannot feed {world} processes: write at least one shard per process")
        rng = random.Random((self.seed * 100003 + self.epoch) * 1009 + rank)
        indices = [i for shard in order[rank::world] for i in self.shards[shard]]
        batches = []
        for start in range(0, len(indices), self.buffer):
            chunk = bucket(indices[start : start + self.buffer], self.durations, self.batch_seconds,
                           rng if self.shuffle else None, self.jitter)  # fmt: skip
            if self.shuffle and not self.sorted_first:
                rng.shuffle(chunk)
            batches += chunk
        return batches


def manifest_sources(manifest: str) -> list[str]:
    """The parts of a training ``manifest`` argument: the JSONL manifests it lists separated
    by commas, or a shard directory written by ``asr shards`` (one part)."""
    return [manifest] if is_shard_index(manifest) else [m for m in manifest.split(",") if m]


def training_dataset(
    manifest: str,
    vocab: Vocabulary,
    sample_rate: int = SAMPLE_RATE,
    read: Callable[[str], list[Utterance]] = read_manifest,
    weights: Sequence[float] | None = None,
    max_duration: float = math.inf,
    transform: Callable[[torch.Tensor, torch.Generator | None], torch.Tensor] | None = None,
    language: str = "en",
) -> tuple[AudioDataset, list[float]]:
    """The dataset of a training or dev ``manifest`` (see :func:`manifest_sources`) and each
    utterance's weight: its part's entry of ``weights`` (one per part; None: all 1).

    ``read`` reads one JSONL manifest (e.g. checking every line first); utterances longer
    than ``max_duration`` seconds are dropped; ``transform`` augments waveforms. A shard
    directory gives a :class:`ShardDataset` (texts normalized in ``language``), whose batch
    plan reads shard by shard.
    """
    sources = manifest_sources(manifest)
    weights = [1.0] * len(sources) if weights is None else list(weights)
    if len(weights) != len(sources):
        raise ValueError(f"{manifest}: {len(weights)} weights for {len(sources)} manifests")
    if is_shard_index(manifest):
        dataset: AudioDataset = ShardDataset(read_shard_index(manifest, language), vocab, sample_rate, transform)
        parts = [dataset.utts]
    else:
        parts = [read(m) for m in sources]
        dataset = AudioDataset([u for part in parts for u in part], vocab, sample_rate, transform)
    for source, part, weight in zip(sources, parts, weights, strict=True):
        log.info("%s: %d utterances, %.2f hours, weight %g", source, len(part), total_hours(part), weight)
    each = [w for part, w in zip(parts, weights, strict=True) for _ in part]
    keep = [i for i, u in enumerate(dataset.utts) if u.duration <= max_duration]
    if len(keep) < len(dataset):
        log.info("dropped %d utterances longer than %.1f s from %s", len(dataset) - len(keep), max_duration, manifest)
        dataset, each = dataset.subset(keep), [each[i] for i in keep]
    return dataset, each
