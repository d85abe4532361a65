"""Print the synthetic recipe's results as a Markdown table (reads DATA/exp/*/decode)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from asr.checkpoint import read_checkpoint
from asr.data import read_manifest, total_hours

BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
MODELS = {"bilstm": "BiLSTM", "streaming": "streaming LSTM"}


def table(data: Path, size: str, beam: int) -> str:
    hours = total_hours(read_manifest(data / "train.jsonl"))
    voices = {
        json.loads(line).get("voice")
        for part in ("dev", "test")
        for line in (data / f"{part}.jsonl").read_text().splitlines()
    }
    lines = [
        f"## Synthetic recipe, size `{size}` ({hours:.1f} h of training speech)",
        "",
        f"Test and dev: unseen sentences, held-out voices ({', '.join(sorted(v for v in voices if v))}). "
        "Greedy CTC decoding, and beam search with the recipe's word n-gram LM (alpha, beta tuned on dev).",
        "",
        "| model | parameters | training | decoding | dev WER | dev CER | test WER | test CER |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, label in MODELS.items():
        exp = data / "exp" / name
        state = read_checkpoint(exp / "best.pt")
        params = sum(v.numel() for k, v in state["model"].items() if not k.endswith(BUFFERS))
        progress = read_checkpoint(exp / "last.pt")["progress"]
        trained = f"{progress['elapsed'] / 60:.0f} min, {progress['epoch']} epochs"
        for suffix in ("", "-lm"):
            files = {part: exp / "decode" / f"wer-{part}{suffix}.json" for part in ("dev", "test")}
            if not all(f.is_file() for f in files.values()):
                continue
            scores = {part: json.loads(f.read_text()) for part, f in files.items()}
            how = "greedy"
            if suffix:
                tuned = json.loads((exp / "decode" / "tune-lm-dev.json").read_text())
                how = f"beam {beam} + LM (α {tuned['alpha']:.2f}, β {tuned['beta']:.2f})"
            lines.append(
                f"| {label} | {params / 1e6:.1f} M | {trained} | {how} "
                f"| {100 * scores['dev']['wer']:.1f} % | {100 * scores['dev']['cer']:.1f} % "
                f"| {100 * scores['test']['wer']:.1f} % | {100 * scores['test']['cer']:.1f} % |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--size", default="demo")
    parser.add_argument("--beam", type=int, default=50, help="beam size of the LM decoding")
    args = parser.parse_args()
    print(table(args.data, args.size, args.beam))


if __name__ == "__main__":
    main()
