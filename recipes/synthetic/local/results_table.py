"""Print the offline recipe's results as Markdown tables (reads DATA/exp/*/decode).

One row per model and decoding (greedy; beam search + LM), one column per set: the
synthetic held-out voices and the held-out UQM speakers, dev and test, and both test sets
through an 8 kHz telephone channel. Then test WER per voice or speaker.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from asr.checkpoint import read_checkpoint
from asr.metrics import score

BUFFERS = ("running_mean", "running_var", "num_batches_tracked")
MODELS = {"bilstm": "BiLSTM", "streaming": "streaming LSTM"}  # experiment folder under DATA/exp: label


def sets(uqm_test: str) -> dict[str, tuple[str, str]]:
    """Decode name: (column title, manifest under DATA), for the UQM test manifest ``uqm_test``."""
    uqm = f"UQM {uqm_test}" if uqm_test != "test" else "UQM test"
    return {
        "dev": ("synthetic dev", "dev.jsonl"),
        "test": ("synthetic test", "test.jsonl"),
        "uqm-dev": ("UQM dev", "uqm/dev.jsonl"),
        f"uqm-{uqm_test}": (uqm, f"uqm/{uqm_test}.jsonl"),
        "test-8k": ("synthetic test 8 kHz", "test.jsonl"),
        f"uqm-{uqm_test}-8k": (f"{uqm} 8 kHz", f"uqm/{uqm_test}.jsonl"),
    }


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _hours(path: Path) -> float:
    return sum(r["duration"] for r in _rows(path)) / 3600


def _recogs(path: Path) -> dict[str, tuple[str, str]]:
    """``{id: (ref, hyp)}`` from a ``recogs-SET.txt``."""
    out = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        uid, *fields = line.split("\t")
        kv = dict(f.split("=", 1) for f in fields)
        out[uid] = (kv.get("ref", ""), kv.get("hyp", ""))
    return out


def group_wers(recogs: Path, manifest: Path) -> dict[str, float]:
    """Test WER per ``voice`` or ``speaker`` of the manifest's utterances."""
    pairs = _recogs(recogs)
    groups: dict[str, list[str]] = {}
    for r in _rows(manifest):
        groups.setdefault(r.get("voice") or r.get("speaker") or "?", []).append(r["id"])
    out = {}
    for group, ids in sorted(groups.items()):
        ids = [i for i in ids if i in pairs]
        if ids:
            out[group] = score([pairs[i][0] for i in ids], [pairs[i][1] for i in ids]).wer
    return out


def parse_models(text: str) -> dict[str, str]:
    """``--models "ft-tts=TTS only,ft-uqm=UQM only"`` as ``{folder: label}`` (empty: :data:`MODELS`)."""
    if not text:
        return dict(MODELS)
    pairs = [item.split("=", 1) for item in text.split(",") if item]
    if any(len(p) != 2 or not p[0] for p in pairs):
        raise SystemExit(f"error: --models {text!r}: want FOLDER=LABEL,...")
    return dict(pairs)


def table(data: Path, size: str, beam: int, uqm_test: str = "test", models: dict[str, str] | None = None) -> str:
    synthetic, real = _hours(data / "train.jsonl"), _hours(data / "uqm" / "train.jsonl")
    decoded = {f.name for f in data.glob("exp/*/decode/wer-*.json")}
    columns = {k: v for k, v in sets(uqm_test).items() if f"wer-{k}.json" in decoded}
    lines = [
        f"## Offline recipe, size `{size}` ({synthetic:.1f} h synthetic + {real:.1f} h recorded training speech)",
        "",
        "WER (CER) per set. Synthetic: unseen sentences, held-out TTS voices; UQM: held-out speakers "
        "(dev shofixti, supox; test syreen, spathi, yehat, thraddash; test400: 400 of its lines, evenly spaced); "
        "8 kHz: the test audio resampled to 8 kHz "
        "and back. Greedy CTC decoding, and beam search with the recipe's word n-gram LM (training text only; "
        "alpha, beta tuned on the mixed dev set).",
        "",
        "| model | parameters | training | decoding | " + " | ".join(t for t, _ in columns.values()) + " |",
        "|---" * (4 + len(columns)) + "|",
    ]
    per_group = []
    for name, label in (models or MODELS).items():
        exp = data / "exp" / name
        if not (exp / "best.pt").is_file():
            continue
        state = read_checkpoint(exp / "best.pt")
        params = sum(v.numel() for k, v in state["model"].items() if not k.endswith(BUFFERS))
        progress = read_checkpoint(exp / "last.pt")["progress"]
        trained = f"{progress['elapsed'] / 60:.0f} min, {progress['step']} steps"
        for suffix in ("", "-lm"):
            how = "greedy"
            if suffix:
                tuned_file = exp / "decode" / "tune-lm-dev-mixed.json"
                if not tuned_file.is_file():
                    continue
                tuned = json.loads(tuned_file.read_text())
                how = f"beam {beam} + LM (α {tuned['alpha']:.2f}, β {tuned['beta']:.2f})"
            cells = []
            for set_name in columns:
                f = exp / "decode" / f"wer-{set_name}{suffix}.json"
                s = json.loads(f.read_text()) if f.is_file() else None
                cells.append(f"{100 * s['wer']:.1f} ({100 * s['cer']:.1f})" if s else "–")
            if set(cells) != {"–"}:
                lines.append(f"| {label} | {params / 1e6:.1f} M | {trained} | {how} | " + " | ".join(cells) + " |")
            for set_name in ("test", f"uqm-{uqm_test}"):
                recogs = exp / "decode" / f"recogs-{set_name}{suffix}.txt"
                if set_name in columns and recogs.is_file():
                    wers = group_wers(recogs, data / columns[set_name][1])
                    groups = ", ".join(f"{g} {100 * w:.1f}" for g, w in wers.items())
                    per_group.append(f"- {label}, {how}, {columns[set_name][0]}: {groups}")
    return "\n".join([*lines, "", "Test WER (%) per voice or speaker:", "", *per_group])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--size", default="demo")
    parser.add_argument("--beam", type=int, default=50, help="beam size of the LM decoding")
    parser.add_argument("--uqm-test", default="test", help="the UQM test manifest decoded (test, or test400)")
    parser.add_argument("--models", default="", help="FOLDER=LABEL,... under DATA/exp (default: bilstm, streaming)")
    args = parser.parse_args()
    print(table(args.data, args.size, args.beam, args.uqm_test, parse_models(args.models)))


if __name__ == "__main__":
    main()
