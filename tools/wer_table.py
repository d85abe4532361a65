"""A recipe's RESULTS.md: WER and CER per evaluation set for each model and decoding (CER
alone for a language written without spaces), with each model's step, units and config and
the LM (the Common Voice and multilingual recipes' stage that writes it).

    python tools/wer_table.py --title "Common Voice (de)" --language de --beam 200 \
        --sets dev test --exp DATA/exp/bilstm DATA/exp/streaming [--lm DATA/lm] > DATA/RESULTS.md

reads ``EXP/decode/wer-SET.json`` (greedy) and ``wer-SET-lm.json`` (beam search + LM, with
the weights of ``tune-lm-dev.json`` where it is there) and ``EXP/best.pt``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from asr.checkpoint import read_checkpoint
from asr.text import language

LABELS = {"bilstm": "BiLSTM", "streaming": "streaming LSTM"}


def rows(exp: Path, sets: list[str], spaces: bool, beam: int) -> list[str]:
    """The table rows of one model: greedy, then beam search + LM where every set has it."""
    out = []
    for suffix, how in (("", "greedy"), ("-lm", f"beam {beam} + LM")):
        files = {s: exp / "decode" / f"wer-{s}{suffix}.json" for s in sets}
        if not all(f.is_file() for f in files.values()):
            continue
        scores = {s: json.loads(f.read_text()) for s, f in files.items()}
        if suffix and (tuned := exp / "decode" / "tune-lm-dev.json").is_file():
            t = json.loads(tuned.read_text())
            how += f" (α {t['alpha']:.2f}, β {t['beta']:.2f})"
        cells = [f"{100 * scores[s]['wer']:.1f} | " * spaces + f"{100 * scores[s]['cer']:.1f}" for s in sets]
        out.append(f"| {LABELS.get(exp.name, exp.name)} | {how} | {' | '.join(cells)} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--title", required=True)
    parser.add_argument("--language", required=True)
    parser.add_argument("--beam", type=int, required=True)
    parser.add_argument("--sets", nargs="+", required=True)
    parser.add_argument("--exp", type=Path, nargs="+", required=True, help="training folders (best.pt, decode/)")
    parser.add_argument("--lm", type=Path, help="the LM folder (its lm.json)")
    args = parser.parse_args()
    spaces = language(args.language).spaces
    columns = [f"{s} WER | {s} CER" if spaces else f"{s} CER" for s in args.sets]
    lines = [f"# {args.title} results", "", f"Error rates (%){'' if spaces else ' (written without spaces: CER)'}.", ""]
    lines += [f"| model | decoding | {' | '.join(columns)} |", "|---|---|" + "---:|" * (len(args.sets) * (1 + spaces))]
    details = []
    for exp in args.exp:
        if not (exp / "best.pt").is_file():
            continue
        lines += rows(exp, args.sets, spaces, args.beam)
        state = read_checkpoint(exp / "best.pt")
        step, units = state.get("progress", {}).get("step", "?"), state["config"]["vocabulary"]
        details.append(f"- {LABELS.get(exp.name, exp.name)}: `{exp / 'best.pt'}`, step {step}, {len(units)} units, "
                       f"config `{exp / 'config.yaml'}`")  # fmt: skip
    if args.lm and (args.lm / "lm.json").is_file():
        info = json.loads((args.lm / "lm.json").read_text())
        details.append(f"- LM: order {info['order']} from {', '.join(info['sources'])}")
    print("\n".join([*lines, "", *details]))


if __name__ == "__main__":
    main()
