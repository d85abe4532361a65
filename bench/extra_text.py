"""Words added at run time: WER on test utterances holding words the base LM never saw,
without and with ``--extra-text``, and what building the extra n-gram costs at load time.

Uses a trained synthetic-recipe model, its LM (built from training text only) and its tuned
weights (``make demo`` makes all three). The UQM test speakers talk about alien races, ships
and planets whose names the training text never has: the utterances with at least one word
outside the LM's vocabulary are the test. Extra texts tried: the unseen words alone (one per
line, a user's name list) and the test utterances' own sentences (a user who has the
script: the upper bound). Posteriors are computed once; beam search at ``--beam``, one thread.

    python bench/extra_text.py [--data data/synthetic-demo] [--tests uqm/test400.jsonl,test.jsonl]
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from results import model_parser, publish

from asr.checkpoint import LoadedModel, load_model
from asr.config import DecodingConfig
from asr.decoding import BeamSearchDecoder
from asr.lm import KenLM, LanguageModel, with_extra_text
from asr.metrics import score
from asr.transcribe import manifest_posteriors

SECTION = "## Words added at run time: --extra-text"


def bench_set(loaded: LoadedModel, base: KenLM, cfg: DecodingConfig, manifest: Path, weights: list[float]) -> tuple:
    """Rows ``[set, extra text, lines, weight, load ms, WER]`` for one test manifest, and its
    description."""
    utts, posteriors, bad = manifest_posteriors(loaded, manifest)
    if bad:
        raise SystemExit("\n".join(["unusable manifest lines:", *bad]))
    known = set(base.vocabulary())
    chosen = [i for i, u in enumerate(utts) if any(w not in known for w in u.text.split())]
    refs = [utts[i].text for i in chosen]
    post = [posteriors[i] for i in chosen]
    words = sum(len(r.split()) for r in refs)
    unseen = sorted({w for r in refs for w in r.split() if w not in known})
    oov_tokens = sum(w not in known for r in refs for w in r.split())

    def wer_with(lm: LanguageModel) -> float:
        decoder = BeamSearchDecoder(loaded.vocab, cfg, lm, seconds_per_frame=loaded.config.seconds_per_frame)
        return score(refs, [nbest[0].text for nbest in decoder.decode_batch(post)]).wer

    name = manifest.name
    rows = [[name, "base LM only", "–", "–", "–", f"{100 * wer_with(base):.1f} %"]]
    print(rows[-1], flush=True)
    for what, lines in {"unseen words, one per line": unseen, "the utterances' sentences": refs}.items():
        for weight in weights:
            start = time.perf_counter()
            mixed = with_extra_text(base, lines, weight)
            load_ms = 1000 * (time.perf_counter() - start)
            rows.append(
                [name, what, str(len(lines)), f"{weight:g}", f"{load_ms:.0f}", f"{100 * wer_with(mixed):.1f} %"]
            )
            print(rows[-1], flush=True)
    about = (
        f"{name}: {len(chosen)} of {len(utts)} utterances, {words} words, {oov_tokens} unseen "
        f"({100 * oov_tokens / words:.1f} %, {len(unseen)} distinct)"
    )
    return rows, about


def main() -> None:
    parser = model_parser(__doc__)
    parser.add_argument("--tests", default="uqm/test400.jsonl,test.jsonl", help="manifests, relative to --data")
    parser.add_argument("--beam", type=int, default=50)
    parser.add_argument("--weights", default="0.1,0.3,0.5", help="extra-text weights tried")
    args = parser.parse_args()
    torch.set_num_threads(1)
    exp, lm_dir = args.data / "exp" / args.model, args.data / "lm"
    tuned = json.loads((exp / "decode" / "tune-lm-dev-mixed.json").read_text())
    loaded = load_model(exp / "best.pt", "cpu")
    base = KenLM(lm_dir)
    cfg = DecodingConfig(beam_size=args.beam, alpha=float(tuned["alpha"]), beta=float(tuned["beta"]))
    weights = [float(w) for w in args.weights.split(",")]
    rows, about = [], []
    for test in args.tests.split(","):
        set_rows, set_about = bench_set(loaded, base, cfg, args.data / test, weights)
        rows += set_rows
        about.append(set_about)
    caption = (
        f"Model `{args.model}` of {args.data}, LM from training text only (α {cfg.alpha:.2f}, β {cfg.beta:.2f} "
        f"tuned on dev), beam {args.beam}, on the test utterances holding a word the LM never saw: "
        f"{'; '.join(about)}. Load ms: building the extra n-gram with lmplz and reading it (one thread)."
    )
    header = ["test set", "extra text", "lines", "weight", "load ms", "WER"]
    publish(SECTION, caption, header, rows, args.out)


if __name__ == "__main__":
    main()
