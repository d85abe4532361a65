"""RESULTS.md of the LibriSpeech recipe: WER/CER per evaluation set for each model and
decoding, with the config, checkpoint, commit and decode settings that produced them.

    python local/results.py --data DATA --beam 500 > DATA/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from asr.checkpoint import read_checkpoint

SETS = ["dev-clean", "dev-other", "test-clean", "test-other"]


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=10)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def model_rows(exp: Path, beam: int) -> list[str]:
    ckpt = exp / "avg.pt"
    state = read_checkpoint(ckpt)
    m = state["config"]["model"]
    shape = f"{m['num_layers']}x{m['hidden_size']} {'BiLSTM' if m['bidirectional'] else 'LSTM'}"
    rows = []
    for suffix, how in (("", "greedy"), ("-lm", f"beam {beam} + LM")):
        files = {s: exp / "decode" / f"wer-{s}{suffix}.json" for s in SETS}
        if not all(f.is_file() for f in files.values()):
            continue
        scores = {s: json.loads(f.read_text()) for s, f in files.items()}
        if suffix:
            tuned = json.loads((exp / "decode" / "tune-lm-dev-clean.json").read_text())
            how += f" (α {tuned['alpha']:.2f}, β {tuned['beta']:.2f})"
        cells = " | ".join(f"{100 * scores[s]['wer']:.2f}" for s in SETS)
        rows.append(f"| {exp.name} ({shape}) | {how} | {cells} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--beam", type=int, default=500)
    parser.add_argument("--models", nargs="+", default=["bilstm", "streaming"])
    args = parser.parse_args()
    lm = json.loads((args.data / "lm" / "lm.json").read_text())
    lines = ["# LibriSpeech results", "", f"WER (%) per set; commit `{commit()}`; LM: {', '.join(lm['sources'])} "
             f"(order {lm['order']}).", "", f"| model | decoding | {' | '.join(SETS)} |",
             "|---|---|" + "---:|" * len(SETS)]  # fmt: skip
    details = []
    for name in args.models:
        exp = args.data / "exp" / name
        if not (exp / "avg.pt").is_file():
            continue
        lines += model_rows(exp, args.beam)
        state = read_checkpoint(exp / "avg.pt")
        details.append(f"- `{name}`: checkpoint `{exp / 'avg.pt'}` (average of "
                       f"{', '.join(Path(p).name for p in state.get('averaged_from', []))}), config "
                       f"`{exp / 'config.yaml'}`")  # fmt: skip
    print("\n".join([*lines, "", *details]))


if __name__ == "__main__":
    main()
