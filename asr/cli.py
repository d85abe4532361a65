"""The ``asr`` command: ``asr train``, ``asr decode``, ``asr transcribe``, ``asr lm build|eval``.

Every subcommand exits non-zero with a one-line message naming the bad input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from asr.audio import AudioError
from asr.checkpoint import CheckpointError, load_model
from asr.config import ExperimentConfig, add_config_arguments, config_from_arguments
from asr.data import ManifestError
from asr.lm import LMError


def _device(name: str) -> str:
    return ("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name


def cmd_train(args: argparse.Namespace) -> int:
    from asr.train import train

    best = train(config_from_arguments(ExperimentConfig, args))
    print(f"best checkpoint: {best}")
    return 0


def cmd_decode(args: argparse.Namespace) -> int:
    from asr.metrics import write_results
    from asr.transcribe import recognize_manifest

    loaded = load_model(args.model, _device(args.device))
    name = args.name or args.manifest.stem
    ids, refs, hyps = recognize_manifest(loaded, args.manifest, num_workers=args.num_workers)
    out_dir = args.out_dir or args.model.parent / "decode"
    scores = write_results(out_dir, name, ids, refs, hyps)
    print(f"{name}: {scores.summary()}")
    print(f"results in {out_dir}/{{recogs,errs,wer}}-{name}.txt")
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    from asr.audio import load_audio
    from asr.transcribe import transcribe_arrays

    loaded = load_model(args.model, _device(args.device))
    failures = 0
    for path in args.files:
        try:
            audio = load_audio(path, loaded.config.features.sample_rate)
        except AudioError as e:
            print(f"error: {e}", file=sys.stderr)
            failures += 1
            continue
        text = transcribe_arrays(loaded, [audio])[0]
        print(f"{path}\t{text}" if args.with_names else text, flush=True)
    if failures:
        print(f"error: {failures} of {len(args.files)} files could not be transcribed", file=sys.stderr)
    return 1 if failures else 0


def cmd_lm_build(args: argparse.Namespace) -> int:
    from asr.lm import build_lm, read_sentences

    sentences = read_sentences(args.text)
    out = build_lm(sentences, args.out, args.order, args.prune, sources=[str(t) for t in args.text])
    info = (out / "lm.json").read_text()
    print(f"wrote {out}/lm.arpa, lm.bin, vocab.txt and lm.json from {len(sentences)} sentences")
    print(info.strip())
    return 0


def cmd_lm_eval(args: argparse.Namespace) -> int:
    from asr.lm import KenLM, evaluate, read_sentences

    result = evaluate(KenLM(args.lm), read_sentences(args.text))
    print(f"{', '.join(map(str, args.text))}: {result.summary()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="CTC/BiLSTM speech recognition")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train an acoustic model (torchrun-compatible)")
    add_config_arguments(p, ExperimentConfig)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("decode", help="decode a manifest, print WER/CER, write result files")
    p.add_argument("--model", type=Path, required=True, help="checkpoint (.pt)")
    p.add_argument("--manifest", type=Path, required=True, help="JSONL manifest with references")
    p.add_argument("--out-dir", type=Path, help="where result files go (default: MODEL_DIR/decode)")
    p.add_argument("--name", help="set name used in result file names (default: manifest stem)")
    p.add_argument("--device", default="auto")
    p.add_argument("--num-workers", type=int, default=1)
    p.set_defaults(func=cmd_decode)

    p = sub.add_parser("transcribe", help="transcribe audio files, one transcript per line")
    p.add_argument("--model", type=Path, required=True, help="checkpoint (.pt)")
    p.add_argument("files", nargs="+", help="audio files (wav/flac/ogg/mp3, any rate/channels)")
    p.add_argument("--with-names", action="store_true", help="prefix each line with the file name and a tab")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_transcribe)

    lm = sub.add_parser("lm", help="build and evaluate word n-gram language models (KenLM)")
    lm_sub = lm.add_subparsers(dest="lm_command", required=True)
    p = lm_sub.add_parser("build", help="ARPA + KenLM binary + vocabulary from text files")
    p.add_argument("--text", type=Path, nargs="+", required=True, help="text files (.gz too), one sentence a line")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--order", type=int, default=3, help="n-gram order (default 3)")
    p.add_argument("--prune", type=int, nargs="+", default=[], help="lmplz count thresholds per order, e.g. 0 0 1")
    p.set_defaults(func=cmd_lm_build)
    p = lm_sub.add_parser("eval", help="perplexity and OOV rate of an LM on text files")
    p.add_argument("--lm", type=Path, required=True, help="LM directory, .arpa or .bin file")
    p.add_argument("--text", type=Path, nargs="+", required=True, help="text files, one sentence a line")
    p.set_defaults(func=cmd_lm_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (AudioError, CheckpointError, ManifestError, LMError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
