"""Word confidence under beam search + LM: how well it tells right words from wrong (AUROC),
how far it is from a probability (ECE), raw and calibrated on dev, and what a
``--min-confidence`` threshold keeps.

Uses a trained synthetic-recipe model, its LM and tuned weights (``make demo`` makes all
three). Calibrations (isotonic and temperature, :mod:`asr.confidence`) are fitted on the words
of the mixed dev set the weights were tuned on, decoded at ``--beam`` with those weights, and
scored on each test set; raw confidence is the geometric mean of a word's character
posteriors along the alignment. Posteriors are computed once; one thread.

    python bench/confidence.py [--data data/synthetic-demo] [--tests test.jsonl,uqm/test400.jsonl]
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from results import model_parser, publish

from asr.checkpoint import LoadedModel, load_model
from asr.confidence import METHODS, Calibration, fit_calibration, labelled_words, report
from asr.config import DecodingConfig
from asr.decoding import BeamSearchDecoder
from asr.lm import KenLM
from asr.transcribe import manifest_posteriors

SECTION = "## Word confidence: calibration and thresholds"
THRESHOLDS = (0.5, 0.8)


def labelled(loaded: LoadedModel, decoder: BeamSearchDecoder, manifest: Path) -> tuple[np.ndarray, np.ndarray]:
    """Raw confidences and 0/1 labels of every word the decoder's best hypotheses hold."""
    utts, posteriors, bad = manifest_posteriors(loaded, manifest)
    if bad:
        raise SystemExit("\n".join(["unusable manifest lines:", *bad]))
    nbests = decoder.decode_batch(posteriors)
    return labelled_words([u.text for u in utts], [[(w.word, w.confidence) for w in nb[0].words] for nb in nbests])


def rows_for(name: str, confidence: np.ndarray, right: np.ndarray, calibrations: dict) -> list[list[str]]:
    """Table rows of one test set: raw, then each calibration."""
    rows = []
    for how, calibration in {"raw": None, **calibrations}.items():
        c = confidence if calibration is None else calibration.apply(confidence)
        r = report(c, right)
        kept = []
        for t in THRESHOLDS:
            keep = c >= t
            accuracy = f"{100 * right[keep].mean():.1f} %" if keep.any() else "–"
            kept.append(f"{100 * keep.mean():.0f} % ({accuracy})")
        rows.append([name, how, str(r.words), f"{100 * r.accuracy:.1f} %", f"{r.ece:.3f}", f"{r.auroc:.3f}", *kept])
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = model_parser(__doc__)
    parser.add_argument("--tests", default="test.jsonl,uqm/test400.jsonl", help="manifests, relative to --data")
    parser.add_argument("--beam", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(1)
    exp, lm_dir = args.data / "exp" / args.model, args.data / "lm"
    tuned = json.loads((exp / "decode" / "tune-lm-dev-mixed.json").read_text())
    loaded = load_model(exp / "best.pt", "cpu")
    cfg = DecodingConfig(beam_size=args.beam, alpha=float(tuned["alpha"]), beta=float(tuned["beta"]))
    decoder = BeamSearchDecoder(loaded.vocab, cfg, KenLM(lm_dir), seconds_per_frame=loaded.config.seconds_per_frame)
    dev = labelled(loaded, decoder, args.data / "dev-mixed.jsonl")
    calibrations: dict[str, Calibration] = {m: fit_calibration(*dev, m) for m in METHODS}
    rows = rows_for("dev-mixed (fitted on)", *dev, calibrations)
    for test in args.tests.split(","):
        rows += rows_for(test.removesuffix(".jsonl"), *labelled(loaded, decoder, args.data / test), calibrations)
    caption = (
        f"Model `{args.model}` of {args.data}, beam {args.beam} with the recipe's LM (α {cfg.alpha:.2f}, "
        f"β {cfg.beta:.2f}). Words: those of the best hypothesis, right when the WER alignment matches them. "
        "ECE over 10 equal-width bins; AUROC: confidence as a detector of right words. Last columns: the share "
        "of words a `--min-confidence` threshold keeps, and their accuracy."
    )
    header = ["set", "confidence", "words", "right", "ECE", "AUROC", *(f"kept at ≥ {t}" for t in THRESHOLDS)]
    publish(SECTION, caption, header, rows, args.out)


if __name__ == "__main__":
    main()
