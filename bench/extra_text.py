"""Words added at run time: WER on test utterances holding words the base LM never saw,
without and with ``--extra-text``, and what building the extra n-gram costs at load time.

Uses a trained synthetic-recipe model, its LM (built from training text only) and its tuned
weights (``make demo`` makes all three). The UQM test speakers talk about alien races, ships
and planets whose names the training text never has: the utterances with at least one word
outside the LM's vocabulary are the test. Extra texts tried: the unseen words alone (one per
line, a user's name list) and the test utterances' own sentences (a user who has the
script: the upper bound). Posteriors are computed once; beam search at ``--beam``, one thread.

    python bench/extra_text.py [--data data/synthetic-demo] [--test uqm/test400.jsonl]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from results import RESULTS, publish

from asr.checkpoint import load_model
from asr.config import DecodingConfig
from asr.decoding import BeamSearchDecoder
from asr.lm import KenLM, LanguageModel, with_extra_text
from asr.metrics import score
from asr.transcribe import manifest_posteriors

SECTION = "## Words added at run time: --extra-text"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/synthetic-demo"))
    parser.add_argument("--model", default="bilstm")
    parser.add_argument("--test", default="uqm/test400.jsonl", help="manifest, relative to --data")
    parser.add_argument("--beam", type=int, default=50)
    parser.add_argument("--weights", default="0.1,0.3,0.5", help="extra-text weights tried")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    exp, lm_dir = args.data / "exp" / args.model, args.data / "lm"
    tuned = json.loads((exp / "decode" / "tune-lm-dev-mixed.json").read_text())
    loaded = load_model(exp / "best.pt", "cpu")
    utts, posteriors, bad = manifest_posteriors(loaded, args.data / args.test)
    if bad:
        raise SystemExit("\n".join(["unusable manifest lines:", *bad]))
    base = KenLM(lm_dir)
    known = set(base.vocabulary())
    chosen = [i for i, u in enumerate(utts) if any(w not in known for w in u.text.split())]
    refs = [utts[i].text for i in chosen]
    post = [posteriors[i] for i in chosen]
    words = sum(len(r.split()) for r in refs)
    unseen = sorted({w for r in refs for w in r.split() if w not in known})
    oov_tokens = sum(w not in known for r in refs for w in r.split())
    extra_texts = {"unseen words, one per line": unseen, "the utterances' sentences": refs}
    cfg = DecodingConfig(beam_size=args.beam, alpha=float(tuned["alpha"]), beta=float(tuned["beta"]))

    def wer_with(lm: LanguageModel) -> float:
        decoder = BeamSearchDecoder(loaded.vocab, cfg, lm, seconds_per_frame=loaded.config.seconds_per_frame)
        return score(refs, [nbest[0].text for nbest in decoder.decode_batch(post)]).wer

    rows = [["base LM only", "–", "–", "–", f"{100 * wer_with(base):.1f} %"]]
    print(rows[-1], flush=True)
    for name, lines in extra_texts.items():
        for weight in map(float, args.weights.split(",")):
            start = time.perf_counter()
            mixed = with_extra_text(base, lines, weight)
            load_ms = 1000 * (time.perf_counter() - start)
            rows.append([name, str(len(lines)), f"{weight:g}", f"{load_ms:.0f}", f"{100 * wer_with(mixed):.1f} %"])
            print(rows[-1], flush=True)
    caption = (
        f"Model `{args.model}` of {args.data}, LM from training text only (α {cfg.alpha:.2f}, β {cfg.beta:.2f} "
        f"tuned on dev), beam {args.beam}: the {len(chosen)} of {len(utts)} utterances of {args.test} with a word "
        f"the LM never saw ({words} words, {oov_tokens} of them unseen: {100 * oov_tokens / words:.1f} %, "
        f"{len(unseen)} distinct). Load time: building the extra n-gram with lmplz and reading it (one thread)."
    )
    publish(SECTION, caption, ["extra text", "lines", "weight", "load ms", "WER"], rows, args.out)


if __name__ == "__main__":
    main()
