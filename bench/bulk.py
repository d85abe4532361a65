"""Bulk transcription throughput: one process against torchrun ranks on the same cores.

Uses a trained synthetic-recipe model (``make demo``). The test manifest is transcribed to
JSON with ``asr transcribe --manifest`` into a fresh output folder: one process with all
the threads, one process with one thread, and ``torchrun --nproc_per_node K`` with one
thread per rank (K = the core count by default). Times are wall clock for the whole
command (model loading and the merge into transcripts.jsonl included), so they are what a
user waits for.

    python bench/bulk.py [--data data/synthetic-demo] [--model bilstm] [--procs 2]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

from results import model_parser, publish

SECTION = "## Bulk transcription: processes under torchrun"


def run(cmd: list[str], threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode != 0 and "transcripts.jsonl:" not in done.stderr:  # 1 with a merged status: some inputs failed
        raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - start


def main() -> None:
    parser = model_parser(__doc__)
    parser.add_argument("--manifest", default="test.jsonl", help="relative to --data")
    parser.add_argument("--procs", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    manifest = args.data / args.manifest
    lines = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    audio_s = sum(float(line["duration"]) for line in lines)
    out = args.data / "bench-bulk"
    common = ["transcribe", "--model", str(args.data / "exp" / args.model / "best.pt"), "--manifest", str(manifest),
              "--format", "json", "--vad", "silero", "--device", "cpu"]  # fmt: skip
    alone = [sys.executable, "-m", "asr.cli"]
    ranks = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={args.procs}"]
    setups = {
        f"1 process, {args.procs} threads": (alone, args.procs),
        "1 process, 1 thread": (alone, 1),
        f"torchrun, {args.procs} ranks x 1 thread": ([*ranks, "-m", "asr.cli"], 1),
    }
    rows, base = [], None
    for name, (launch, threads) in setups.items():
        shutil.rmtree(out, ignore_errors=True)
        seconds = run([*launch, *common, "--output-dir", str(out), "--threads", str(threads)], threads)
        merged = (out / "transcripts.jsonl").read_text().splitlines()
        ok = sum(json.loads(line)["status"] == "ok" for line in merged)  # the rest: no speech found, or unreadable
        base = base or seconds
        rows.append(
            [name, f"{seconds:.1f}", f"{audio_s / seconds:.0f}", f"{base / seconds:.2f}×", f"{ok}/{len(lines)}"]
        )
        print(rows[-1], flush=True)
    shutil.rmtree(out, ignore_errors=True)
    caption = (
        f"Model `{args.model}` of {args.data}, greedy, `--vad silero`, {len(lines)} files of {manifest.name} "
        f"({audio_s / 60:.1f} min of audio) to JSON, on {os.cpu_count()} cores; wall time of the whole command."
    )
    publish(SECTION, caption, ["setup", "seconds", "audio-s per second", "vs the first", "files ok"], rows, args.out)


if __name__ == "__main__":
    main()
