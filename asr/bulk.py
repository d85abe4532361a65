"""Bulk transcription across processes and nodes, resumable.

``torchrun --nnodes N --nproc_per_node K -m asr.cli transcribe --manifest big.jsonl
--output-dir out/`` (or ``srun torchrun ...`` under SLURM): every rank takes every
``WORLD_SIZE``-th input, round-robin over the inputs ordered longest first when their
durations are known (a manifest), so the ranks finish close together. Outputs are written
atomically, so an output file that exists is complete: inputs whose output exists are skipped,
and a rerun after a kill (of one rank or all) does only what is left. Each rank appends one
record per input to ``OUT/.asr-status/rank-R.jsonl``; when every rank is done they meet at a
barrier (gloo) and rank 0 writes ``OUT/transcripts.jsonl``: one line per input, in input
order, with its source, output file, status (``ok``, ``failed`` or ``missing``), error,
text, audio duration, processing seconds and rank. :func:`transcribe_all` is the loop
``asr transcribe`` runs, with or without torchrun.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from asr.audio import AudioError
from asr.files import write_text
from asr.formats import EXTENSIONS, render
from asr.transcribe import Input, Transcriber

STATUS_DIR = ".asr-status"
MERGED = "transcripts.jsonl"


@dataclass(frozen=True)
class Ranks:
    """This process's ``rank`` among ``world`` (torchrun's RANK and WORLD_SIZE; 0 of 1 alone)."""

    rank: int = 0
    world: int = 1

    @classmethod
    def from_env(cls) -> Ranks:
        try:
            rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        except ValueError as e:
            raise ValueError(f"RANK and WORLD_SIZE must be integers ({e})") from None
        if not 0 <= rank < world:
            raise ValueError(f"RANK {rank} is not in [0, WORLD_SIZE {world})")
        return cls(rank, world)

    def share(self, durations: Sequence[float | None]) -> list[int]:
        """Indices of the inputs this rank takes: round-robin over them ordered longest first
        (unknown durations last, in input order)."""
        order = sorted(range(len(durations)), key=lambda i: (durations[i] is None, -(durations[i] or 0.0), i))
        return sorted(order[self.rank :: self.world])


def init_group(ranks: Ranks, timeout_hours: float = 72.0) -> None:
    """Join the job's gloo process group (only when there is more than one rank). The
    timeout bounds the final barrier: the longest a rank may wait for the slowest."""
    if ranks.world == 1:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=timedelta(hours=timeout_hours))


def barrier(ranks: Ranks) -> None:
    if ranks.world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()


class StatusLog:
    """``OUT/.asr-status/rank-R.jsonl``: one JSON record per input this rank handled, each
    line flushed and synced as it is written (a killed rank loses at most the input it was on)."""

    def __init__(self, out_dir: Path, rank: int) -> None:
        self.path = out_dir / STATUS_DIR / f"rank-{rank}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, record: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({**record, "time": time.time()}, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())


def read_records(out_dir: Path) -> dict[str, dict[str, Any]]:
    """The latest record of each source over every rank's status file (any earlier run's
    too, whatever its world size); a torn last line (a rank killed mid-write) is ignored."""
    latest: dict[str, dict[str, Any]] = {}
    for path in sorted((out_dir / STATUS_DIR).glob("rank-*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            old = latest.get(record.get("source"))
            if old is None or record.get("time", 0) >= old.get("time", 0):
                latest[record["source"]] = record
    return latest


def merge(out_dir: Path, inputs: Sequence[tuple[str, Path]]) -> tuple[Path, dict[str, int]]:
    """Write ``OUT/transcripts.jsonl`` for ``inputs`` (``(source, output path)`` pairs, in
    order) from the status records; an output with no record (its rank was killed between
    writing it and logging it) counts as ``ok``, with its text when it is a text or JSON file.
    Returns the path and the count of each status."""
    records = read_records(out_dir)
    lines, counts = [], {"ok": 0, "failed": 0, "missing": 0}
    for source, output in inputs:
        record = records.get(source)
        if output.is_file() and (record is None or record.get("status") != "ok"):
            record = {"source": source, "status": "ok", "text": _text_of(output), "rank": None}
        if record is None:
            record = {"source": source, "status": "missing", "error": "not transcribed (its rank did not get to it)"}
        record = {k: v for k, v in record.items() if k != "time"}
        record["output"] = str(output)
        counts[record["status"]] += 1
        lines.append(json.dumps(record, ensure_ascii=False))
    path = out_dir / MERGED
    write_text(path, "".join(line + "\n" for line in lines))
    return path, counts


def _text_of(output: Path) -> str | None:
    try:
        if output.suffix == ".json":
            return json.loads(output.read_text(encoding="utf-8"))["text"]
        if output.suffix == ".txt":
            return output.read_text(encoding="utf-8").strip()
    except (OSError, ValueError, KeyError):
        return None
    return None


def transcribe_all(
    transcriber: Transcriber,
    inputs: Sequence[Input],
    durations: Sequence[float] | None,
    ranks: Ranks,
    out_dir: Path | None,
    fmt: str,
    overwrite: bool = False,
    with_names: bool = False,
    confidence: tuple[float, str] = (0.0, "mark"),
) -> int:
    """Transcribe ``inputs`` into ``out_dir`` (this rank's share, skipping outputs that exist
    unless ``overwrite``; rank 0 then writes transcripts.jsonl), or all of them to stdout
    without one. A bad input is reported on stderr and the rest go on. ``confidence``:
    ``render``'s threshold and what it does. Returns the exit status: 1 when any input failed
    (or, for rank 0, is missing)."""
    init_group(ranks)
    outputs = [out_dir / (item.name + EXTENSIONS[fmt]) if out_dir else None for item in inputs]
    mine = ranks.share(durations or [None] * len(inputs)) if out_dir else range(len(inputs))
    log = StatusLog(out_dir, ranks.rank) if out_dir else None
    failures: list[str] = []
    written = skipped = 0
    for i in mine:
        item, out = inputs[i], outputs[i]
        if out is not None and out.is_file() and not overwrite:
            skipped += 1  # done by an earlier run (outputs are written atomically: complete)
            continue
        start = time.perf_counter()
        try:
            if item.problem:
                raise AudioError(item.problem)
            if item.source == "-":
                result = transcriber.transcribe(sys.stdin.buffer.read(), name="<stdin>")
            else:
                result = transcriber.transcribe(item.source)
        except AudioError as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            failures.append(str(e))
            if log is not None:
                log.write({"source": item.source, "status": "failed", "error": str(e), "rank": ranks.rank})
            continue
        text = render(result, fmt, item.source, *confidence)
        if out is not None and log is not None:
            out.parent.mkdir(parents=True, exist_ok=True)
            write_text(out, text)
            written += 1
            took, duration = round(time.perf_counter() - start, 3), round(result.duration, 3)
            log.write({"source": item.source, "status": "ok", "text": result.text, "duration": duration,
                       "seconds": took, "rank": ranks.rank})  # fmt: skip
        elif fmt == "text" and with_names:
            print(f"{item.source}\t{text}", end="", flush=True)
        else:
            print(text, end="", flush=True)
    if failures:
        print(f"error: {len(failures)} of {len(mine)} inputs could not be transcribed:", file=sys.stderr)
        for message in failures:
            print(f"  {message}", file=sys.stderr)
    if out_dir:
        where = f" (rank {ranks.rank} of {ranks.world})" if ranks.world > 1 else ""
        again = f", {skipped} already there (--overwrite redoes them)" if skipped else ""
        print(f"wrote {written} {fmt} files to {out_dir}{where}{again}", file=sys.stderr)
    barrier(ranks)
    if out_dir and ranks.rank == 0:
        path, counts = merge(out_dir, [(item.source, out) for item, out in zip(inputs, outputs, strict=True)])
        print(f"{path}: " + ", ".join(f"{n} {status}" for status, n in counts.items()), file=sys.stderr)
        return 1 if failures or counts["failed"] or counts["missing"] else 0
    return 1 if failures else 0
