"""Bulk transcription (asr.bulk): shares per rank, resuming, the merged transcripts.jsonl,
and two gloo processes under torchrun with one killed mid-run and the job relaunched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from asr.bulk import Ranks, StatusLog, merge

TEXTS = {"utt0": "hello world", "utt1": "open the door", "utt2": "the cat sat", "utt3": "good morning"}


def test_shares_cover_every_input_once_longest_first() -> None:
    durations = [5.0, 1.0, 3.0, 2.0, 4.0, None]
    shares = [Ranks(r, 2).share(durations) for r in range(2)]
    assert shares == [[0, 1, 2], [3, 4, 5]]  # longest first: 0, 4, 2, 3, 1, then the unknown 5
    assert sorted(shares[0] + shares[1]) == list(range(6))
    assert Ranks().share(durations) == list(range(6))


def test_merge_takes_the_latest_record_and_outputs_without_one(tmp_path: Path) -> None:
    outputs = {name: tmp_path / f"{name}.txt" for name in "abcd"}
    first, second = StatusLog(tmp_path, 0), StatusLog(tmp_path, 1)
    first.write({"source": "a.wav", "status": "failed", "error": "a.wav: truncated", "rank": 0})
    outputs["a"].write_text("retried fine\n")
    second.write({"source": "a.wav", "status": "ok", "text": "retried fine", "rank": 1})  # a later run's
    second.write({"source": "b.wav", "status": "failed", "error": "b.wav: not an audio file", "rank": 1})
    outputs["c"].write_text("killed before logging\n")  # written, then its rank died
    with (tmp_path / ".asr-status" / "rank-1.jsonl").open("a") as f:
        f.write('{"source": "d.wav", "sta')  # a torn last line
    path, counts = merge(tmp_path, [(f"{n}.wav", outputs[n]) for n in "abcd"])
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert counts == {"ok": 2, "failed": 1, "missing": 1}
    assert [(r["source"], r["status"]) for r in lines] == [("a.wav", "ok"), ("b.wav", "failed"), ("c.wav", "ok"),
                                                           ("d.wav", "missing")]  # fmt: skip
    assert lines[0]["text"] == "retried fine" and lines[2]["text"] == "killed before logging"
    assert lines[1]["error"] == "b.wav: not an audio file" and lines[3]["output"] == str(outputs["d"])


def _manifest(tmp_path: Path, fixtures_manifest: Path, copies: int) -> Path:
    lines = []
    for k in range(copies):
        for utt, text in TEXTS.items():
            audio = fixtures_manifest.parent / f"{utt}.wav"
            lines.append({"id": f"{utt}-{k:02d}", "audio": str(audio), "duration": 1.0, "text": text})
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio")
    lines.append({"id": "bad", "audio": str(bad), "duration": 0.5, "text": "x"})
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_torchrun_two_processes_killed_and_relaunched(
    tmp_path: Path, fixtures_manifest: Path, overfit_checkpoint: Path
) -> None:
    manifest, out = _manifest(tmp_path, fixtures_manifest, copies=20), tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           "-m", "asr.cli", "transcribe", "--model", str(overfit_checkpoint), "--manifest", str(manifest),
           "--output-dir", str(out), "--format", "json", "--vad", "energy", "--threads", "1"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None and len(list(out.glob("*.json"))) < 6:
        time.sleep(0.01)
    os.kill(_children(proc.pid)[1], signal.SIGKILL)  # rank 1, mid-run
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0, output[-2000:]
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}
    assert 6 <= len(before) < 80, output[-2000:]
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert again.returncode == 1, again.stdout[-3000:] + again.stderr[-3000:]  # the bad line fails, the rest is done
    assert "already there (--overwrite redoes them)" in again.stderr
    assert f"{out / 'transcripts.jsonl'}: 80 ok, 1 failed, 0 missing" in again.stderr
    records = [json.loads(line) for line in (out / "transcripts.jsonl").read_text().splitlines()]
    assert [r["output"] for r in records[:2]] == [str(out / "utt0-00.json"), str(out / "utt1-00.json")]  # input order
    for r in records[:-1]:
        assert r["status"] == "ok" and r["text"] == TEXTS[Path(r["output"]).stem[:4]], r
    assert records[-1]["status"] == "failed" and "notes.wav" in records[-1]["error"]
    assert {r["rank"] for r in records[:-1]} >= {0, 1}
    assert all(out.joinpath(name).stat().st_mtime_ns == t for name, t in before.items())  # not redone
    assert len(list(out.glob("*.json"))) == 80
