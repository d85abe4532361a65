"""Beam search + n-gram LM decoders on real posteriors: asr's own decoder against
pyctcdecode and torchaudio's flashlight ``ctc_decoder`` (lexicon-free and with a lexicon).

Uses a trained synthetic-recipe model and its LM (``make demo`` makes both): posteriors of
dev and test are computed once; each decoder's alpha/beta are tuned on dev (random search
at beam 10), then test is decoded at beams 10, 50 and 100, one utterance at a time on one
thread. Prints WER and decoding time per audio-second and writes the table into
bench/RESULTS.md. flashlight's lexicon-free decoder scores tokens, so it gets a character
6-gram built from the same training text (KenLM's maximum order) (its word LM would see only
unknown words).

A second table gives what hotwords cost asr's decoder: 0, 10, 100 and 1000 two-word phrases
drawn from the training text, at beam 50 and the recipe's tuned weights, the time to build
the decoder (what ``asr serve`` pays per configured connection) and to decode test
(``--only hotwords`` runs just this one: no peers to install).

    pip install flashlight-text pygtrie && pip install --no-deps pyctcdecode  # numpy<2 pin
    python bench/decoding.py [--data data/synthetic-demo] [--model bilstm] [--trials 12] [--only hotwords]
"""

from __future__ import annotations

import itertools
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from results import model_parser, publish, write_section

from asr.checkpoint import LoadedModel, load_model
from asr.config import DecodingConfig
from asr.decoding import BeamSearchDecoder, greedy_decode
from asr.lm import KenLM, build_lm, read_sentences, read_vocabulary
from asr.metrics import score
from asr.text import Vocabulary
from asr.transcribe import manifest_posteriors

SECTION = "## Decoding: beam search + n-gram LM"
HOTWORD_SECTION = "## Hotwords: decoding cost at 10, 100 and 1000 phrases"
BEAMS = (10, 50, 100)
PHRASES = (0, 10, 100, 1000)
# decode(posteriors, alpha, beta, beam) -> transcripts
Decode = Callable[[Sequence[np.ndarray], float, float, int], list[str]]


def asr_decoder(vocab: Vocabulary, lm_dir: Path, lexicon: str) -> Decode:
    lm = KenLM(lm_dir)
    cache: dict[tuple[float, float, int], BeamSearchDecoder] = {}

    def decode(posteriors: Sequence[np.ndarray], alpha: float, beta: float, beam: int) -> list[str]:
        key = (alpha, beta, beam)
        if key not in cache:
            cache.clear()
            cfg = DecodingConfig(beam_size=beam, alpha=alpha, beta=beta, lexicon=lexicon)
            cache[key] = BeamSearchDecoder(vocab, cfg, lm)
        return [cache[key].decode(x)[0].text for x in posteriors]

    return decode


def pyctcdecode_decoder(vocab: Vocabulary, lm_dir: Path) -> Decode:
    from pyctcdecode import build_ctcdecoder

    labels = ["" if i == vocab.blank else s for i, s in enumerate(vocab.symbols)]
    unigrams = read_vocabulary(lm_dir)
    cache: dict[tuple[float, float], object] = {}

    def decode(posteriors: Sequence[np.ndarray], alpha: float, beta: float, beam: int) -> list[str]:
        if (alpha, beta) not in cache:
            cache.clear()
            cache[alpha, beta] = build_ctcdecoder(
                labels, kenlm_model_path=str(lm_dir / "lm.bin"), unigrams=unigrams, alpha=alpha, beta=beta
            )
        decoder = cache[alpha, beta]
        return [" ".join(decoder.decode(x, beam_width=beam).split()) for x in posteriors]

    return decode


def flashlight_decoder(vocab: Vocabulary, lm_dir: Path, char_lm: Path | None, work: Path) -> Decode:
    from torchaudio.models.decoder import ctc_decoder

    tokens = ["-" if i == vocab.blank else ("|" if s == " " else s) for i, s in enumerate(vocab.symbols)]
    lexicon = None
    if char_lm is None:
        lexicon = work / "lexicon.txt"
        words = [w for w in read_vocabulary(lm_dir) if set(w) <= set(vocab.symbols)]
        lexicon.write_text("".join(f"{w}\t{' '.join(w)} |\n" for w in words))
    else:
        (work / "char-tokens.txt").write_text("\n".join(tokens) + "\n")
    cache: dict[tuple[float, float, int], object] = {}

    def decode(posteriors: Sequence[np.ndarray], alpha: float, beta: float, beam: int) -> list[str]:
        key = (alpha, beta, beam)
        if key not in cache:
            cache.clear()
            cache[key] = ctc_decoder(
                lexicon=str(lexicon) if lexicon else None,
                tokens=tokens,
                lm=str((char_lm or lm_dir) / "lm.bin"),
                nbest=1,
                beam_size=beam,
                beam_threshold=25.0,
                lm_weight=alpha,
                word_score=beta,
                sil_token="|",
                blank_token="-",
                unk_word="<unk>",
            )
        decoder = cache[key]
        out = []
        for x in posteriors:
            hyp = decoder(torch.from_numpy(np.ascontiguousarray(x))[None])[0][0]
            words = hyp.words if lexicon else "".join(decoder.idxs_to_tokens(hyp.tokens)).replace("|", " ").split()
            text = " ".join(words)
            out.append(" ".join(text.split()))
        return out

    return decode


def char_lm(text: Path, out: Path, order: int = 6) -> Path:
    """A character n-gram over ``text`` for flashlight's lexicon-free decoder (``|`` between words)."""
    if not (out / "lm.bin").is_file():
        sentences = [" ".join(s.replace(" ", "|")) for s in read_sentences([text])]
        build_lm(sentences, out, order=order, prune=[0] * 4 + [1] * (order - 4), sources=[str(text)])
    return out


def tune(decode: Decode, dev: Sequence[np.ndarray], refs: Sequence[str], ranges: tuple, trials: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    best = (math.inf, 0.0, 0.0)
    for _ in range(trials):
        alpha, beta = round(float(rng.uniform(*ranges[0])), 3), round(float(rng.uniform(*ranges[1])), 3)
        wer = score(refs, decode(dev, alpha, beta, BEAMS[0])).wer
        best = min(best, (wer, alpha, beta))
    return best[1], best[2]


def two_word_phrases(text: Path, n: int, seed: int = 0) -> list[str]:
    """``n`` distinct two-word phrases drawn at random from the sentences of ``text``."""
    pairs = sorted({f"{a} {b}" for s in read_sentences([text]) for a, b in itertools.pairwise(s.split())})
    chosen = np.random.default_rng(seed).choice(len(pairs), size=min(n, len(pairs)), replace=False)
    return [pairs[i] for i in chosen]


def hotword_cost(
    loaded: LoadedModel, lm: KenLM, test: Sequence[np.ndarray], refs: Sequence[str], audio_s: float, tuned: Path,
    phrases: list[str], beam: int = 50, repeats: int = 3,
) -> list[list[str]]:  # fmt: skip
    """Rows ``[phrases, build ms, ms per audio-second, vs none, WER]``: the best of ``repeats``."""
    weights = json.loads(tuned.read_text())
    cfg = DecodingConfig(beam_size=beam, alpha=weights["alpha"], beta=weights["beta"], lexicon="lm")
    rows, base_ms = [], 0.0
    for n in PHRASES:
        build, decode = math.inf, math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            hotwords = [(p, cfg.hotword_weight) for p in phrases[:n]]
            decoder = BeamSearchDecoder(loaded.vocab, cfg, lm, hotwords, loaded.config.seconds_per_frame)
            built = time.perf_counter()
            hyps = [decoder.decode(x)[0].text for x in test]
            build, decode = min(build, built - start), min(decode, time.perf_counter() - built)
        ms = 1000 * decode / audio_s
        base_ms = base_ms or ms
        wer = score(refs, hyps).wer
        rows.append([str(n), f"{1000 * build:.0f}", f"{ms:.2f}", f"{ms / base_ms:.2f}×", f"{100 * wer:.1f} %"])
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parser = model_parser(__doc__)
    parser.add_argument("--trials", type=int, default=12, help="random alpha/beta points per decoder on dev")
    parser.add_argument("--only", choices=["all", "hotwords"], default="all", help="hotwords: only their cost table")
    args = parser.parse_args()
    torch.set_num_threads(1)
    exp, lm_dir = args.data / "exp" / args.model, args.data / "lm"
    loaded = load_model(exp / "best.pt", "cpu")
    dev_utts, dev, dev_bad = manifest_posteriors(loaded, args.data / "dev.jsonl")
    test_utts, test, test_bad = manifest_posteriors(loaded, args.data / "test.jsonl")
    if dev_bad or test_bad:  # a benchmark on part of a set would not compare with its table
        raise SystemExit("\n".join(["unusable manifest lines:", *dev_bad, *test_bad]))
    dev_refs, test_refs = [u.text for u in dev_utts], [u.text for u in test_utts]
    audio_s = sum(u.duration for u in test_utts)
    work = args.data / "bench-decoding"
    work.mkdir(exist_ok=True)
    vocab = loaded.vocab
    chars = work / "lm-char"
    greedy = [greedy_decode(torch.from_numpy(x)[None], torch.tensor([len(x)]), vocab)[0] for x in test]
    greedy_wer = score(test_refs, greedy).wer
    tuned = exp / "decode" / "tune-lm-dev-mixed.json"
    phrases = two_word_phrases(args.data / "text" / "train.txt", max(PHRASES))
    rows = hotword_cost(loaded, KenLM(lm_dir), test, test_refs, audio_s, tuned, phrases)
    caption = (
        f"Model `{args.model}` of {args.data}, {len(test)} test utterances ({audio_s / 60:.1f} min), asr's decoder "
        f"with the recipe's 4-gram LM and lexicon, beam 50, alpha/beta from {tuned.name}; hotwords: distinct "
        "two-word phrases drawn at random from the training text, weight 3 each; best of 3 runs, one thread. "
        "Build: constructing the decoder (LM vocabulary trie + hotword trie), what `asr serve` does for each "
        "connection that sends its own hotwords or extra text."
    )
    publish(
        HOTWORD_SECTION, caption, ["phrases", "build ms", "ms per audio-second", "vs none", "test WER"], rows, args.out
    )
    if args.only == "hotwords":
        return
    decoders: dict[str, tuple[Callable[[], Decode], tuple]] = {
        "asr, lexicon": (lambda: asr_decoder(vocab, lm_dir, "lm"), ((0.0, 2.0), (-1.0, 3.0))),
        "asr, lexicon-free": (lambda: asr_decoder(vocab, lm_dir, "free"), ((0.0, 2.0), (-1.0, 3.0))),
        "pyctcdecode": (lambda: pyctcdecode_decoder(vocab, lm_dir), ((0.0, 2.0), (-1.0, 3.0))),
        "flashlight, lexicon": (lambda: flashlight_decoder(vocab, lm_dir, None, work), ((0.0, 5.0), (-2.0, 4.0))),
        "flashlight, lexicon-free (char 6-gram)": (
            lambda: flashlight_decoder(vocab, lm_dir, char_lm(args.data / "text" / "train.txt", chars), work),
            ((0.0, 1.5), (-1.0, 2.0)),  # per-character LM scores: weights above ~1.5 only break words
        ),
    }
    rows = []  # (decoder, beam, alpha, beta, WER, ms per audio-second)
    for name, (make, ranges) in decoders.items():
        decode = make()
        alpha, beta = tune(decode, dev, dev_refs, ranges, args.trials)
        for beam in BEAMS:
            start = time.perf_counter()
            hyps = decode(test, alpha, beta, beam)
            ms = 1000 * (time.perf_counter() - start) / audio_s
            wer = score(test_refs, hyps).wer
            rows.append((name, beam, alpha, beta, wer, ms))
            print(f"{name:42s} beam {beam:3d} alpha {alpha:5.2f} beta {beta:5.2f}: WER {100 * wer:5.1f} % "
                  f"{ms:7.2f} ms per audio-second", flush=True)  # fmt: skip
    pcd = {beam: ms for name, beam, *_, ms in rows if name == "pyctcdecode"}
    lines = [
        f"Model `{args.model}` of {args.data} on its test set ({len(test)} utterances, {audio_s / 60:.1f} min; "
        f"greedy WER {100 * greedy_wer:.1f} %), word 4-gram LM of the recipe; alpha/beta tuned per decoder on "
        f"dev ({args.trials} random points at beam {BEAMS[0]}); one thread, one utterance at a time.",
        "",
        "| decoder | beam | alpha | beta | test WER | ms per audio-second | speed vs pyctcdecode |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, beam, alpha, beta, wer, ms in rows:
        lines.append(
            f"| {name} | {beam} | {alpha:.2f} | {beta:.2f} | {100 * wer:.1f} % | {ms:.2f} | {pcd[beam] / ms:.1f}× |"
        )
    table = "\n".join(lines)
    print("\n" + table)
    write_section(SECTION, table, args.out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
