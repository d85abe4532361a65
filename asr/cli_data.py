"""The data-management subcommands of ``asr``: ``asr export``, ``asr average``, ``asr shards``,
``asr manifest kaldi|nemo|folder|commonvoice|check|merge`` and ``asr lm build|import|eval``.

:func:`add_data_commands` adds them to the parser of :mod:`asr.cli`, which runs them and
turns their errors into one-line messages; :func:`load_checkpoint` and
:func:`report_bad_lines` serve the model commands there too.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from asr.checkpoint import LoadedModel, load_model
from asr.data import ManifestError
from asr.text import language


def load_checkpoint(path: Path, device: str, int8: bool) -> LoadedModel:
    """The checkpoint's model, dynamically quantized to int8 when asked."""
    loaded = load_model(path, device)
    if int8:
        from asr.export import quantize_int8

        loaded = quantize_int8(loaded)
    return loaded


def report_bad_lines(manifest: Path, bad: list[str], good: int) -> int:
    """Print every bad line of ``manifest`` to stderr; the exit status (1 when there are any)."""
    if not bad:
        return 0
    rest = f"the other {good} were used" if good else "nothing was left to use"
    print(f"error: {len(bad)} of {len(bad) + good} lines of {manifest} are unusable ({rest}):", file=sys.stderr)
    for line in bad:
        print(f"  {line}", file=sys.stderr)
    return 1


def cmd_export(args: argparse.Namespace) -> int:
    from asr.export import export

    loaded = load_checkpoint(args.model, "cpu", args.int8)
    out = export(loaded, args.out, args.format)
    size = out.stat().st_size / 1e6
    print(f"wrote {out} ({args.format}{', int8' if args.int8 else ''}, {size:.1f} MB): "
          "waveforms (batch, samples) float32 16 kHz + lengths (batch,) -> log_probs (batch, frames, vocab) "
          "+ out_lengths (batch,); metadata JSON under 'asr.json'")  # fmt: skip
    return 0


def cmd_average(args: argparse.Namespace) -> int:
    from asr.checkpoint import CheckpointError, average_checkpoints

    paths = args.checkpoints
    if args.last:
        if len(paths) != 1 or not paths[0].is_dir():
            raise CheckpointError("--last K takes one training directory (its step-*.pt checkpoints)")
        paths = sorted(paths[0].glob("step-*.pt"))[-args.last :]
        if len(paths) < args.last:
            raise CheckpointError(f"{args.checkpoints[0]}: only {len(paths)} step checkpoints (--last {args.last})")
    out = average_checkpoints(paths, args.out)
    print(f"wrote {out}: the average of {', '.join(p.name for p in paths)}")
    return 0


def cmd_shards(args: argparse.Namespace) -> int:
    from asr.shards import read_shard_index, write_shards

    index = write_shards(args.manifest, args.out, args.shard_mb)
    utts = read_shard_index(index)
    shards = len({s.utt.audio for s in utts})
    hours = sum(s.utt.duration for s in utts) / 3600
    print(f"wrote {shards} shards ({len(utts)} utterances, {hours:.2f} h) and {index}")
    return 0


def cmd_manifest_check(args: argparse.Namespace) -> int:
    from asr.data import check_manifest, total_hours

    vocab, language = None, args.language or "en"
    if args.model:  # the units and language a trained model writes
        from asr.checkpoint import load_model

        loaded = load_model(args.model)
        vocab, language = loaded.vocab, args.language or loaded.config.text.language
    status = 0
    for manifest in args.manifests:
        utts, bad = check_manifest(manifest, vocab, language=language)
        print(f"{manifest}: {len(utts)} good lines ({total_hours(utts):.2f} h), {len(bad)} bad")
        status = max(status, report_bad_lines(manifest, bad, len(utts)))
    return status


def cmd_manifest_merge(args: argparse.Namespace) -> int:
    from asr.data import read_manifest, total_hours, write_manifest

    utts = [u for m in args.manifests for u in read_manifest(m)]
    seen: set[str] = set()
    for u in utts:
        if u.id in seen:
            raise ManifestError(
                f"{args.out}: id {u.id!r} comes in more than one of {', '.join(map(str, args.manifests))}"
            )
        seen.add(u.id)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_manifest(args.out, utts)
    print(f"wrote {args.out}: {len(utts)} utterances, {total_hours(utts):.2f} h, from {len(args.manifests)} manifests")
    return 0


def cmd_manifest(args: argparse.Namespace) -> int:
    from asr.data import total_hours, write_manifest
    from asr.importers import IMPORTERS

    audio_dir = args.audio_dir or args.out.with_name(args.out.stem + "-audio")
    utts, bad = IMPORTERS[args.format](args.source, audio_dir, args.language)
    if utts:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_manifest(args.out, utts)
        print(f"wrote {args.out}: {len(utts)} utterances, {total_hours(utts):.2f} h, from {args.format} {args.source}")
    if bad:
        rest = f"the other {len(utts)} were written" if utts else "nothing was written"
        print(f"error: {len(bad)} utterances of {args.source} could not be imported ({rest}):", file=sys.stderr)
        for line in bad:
            print(f"  {line}", file=sys.stderr)
    elif not utts:
        raise ManifestError(f"{args.source}: no utterances found to import")
    return 1 if bad else 0


def cmd_lm_build(args: argparse.Namespace) -> int:
    from asr.lm import build_lm, read_sentences

    sentences = read_sentences(args.text, args.language)
    sources = [str(t) for t in args.text]
    out = build_lm(sentences, args.out, args.order, args.prune, sources=sources, units=args.units)
    info = (out / "lm.json").read_text()
    print(f"wrote {out}/lm.arpa, lm.bin, vocab.txt and lm.json from {len(sentences)} sentences")
    print(info.strip())
    return 0


def cmd_lm_import(args: argparse.Namespace) -> int:
    from asr.lm import import_arpa, read_vocabulary

    out = import_arpa(args.arpa, args.out, lowercase=not args.keep_case)
    print(f"wrote {out}/lm.arpa, lm.bin, vocab.txt ({len(read_vocabulary(out))} words) and lm.json from {args.arpa}")
    return 0


def cmd_lm_eval(args: argparse.Namespace) -> int:
    from asr.lm import char_tokens, evaluate, open_lm, read_sentences

    sentences = read_sentences(args.text, args.language)
    info = args.lm / "lm.json" if args.lm.is_dir() else args.lm.parent / "lm.json"
    if info.is_file() and json.loads(info.read_text()).get("units") == "char":
        sentences = [char_tokens(s) for s in sentences]  # the LM's tokens are characters
    result = evaluate(open_lm(args.lm), sentences)
    print(f"{', '.join(map(str, args.text))}: {result.summary()}")
    return 0


def _language(code: str) -> str:
    try:
        return language(code).code
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _add_language(p: argparse.ArgumentParser, what: str, default: str | None = "en") -> None:
    fallback = default or "en, or the model's"
    p.add_argument("--language", type=_language, default=default, help=f"language of the {what} (ISO 639; "
                   f"default {fallback})")  # fmt: skip


def add_data_commands(sub: Any) -> None:
    """Add export, average, shards, manifest and lm to the ``asr`` subcommands ``sub``."""
    p = sub.add_parser("export", help="features + acoustic model as one TorchScript or ONNX graph")
    p.add_argument("--model", type=Path, required=True, help="checkpoint (.pt)")
    p.add_argument("--format", choices=("torchscript", "onnx"), default="torchscript")
    p.add_argument("--out", type=Path, required=True, help="output file (.pt for TorchScript, .onnx)")
    p.add_argument("--int8", action="store_true", help="dynamic int8 LSTMs and linear layers (TorchScript only)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("average", help="average the weights of checkpoints (e.g. the last epochs) into one")
    p.add_argument("checkpoints", type=Path, nargs="+", help="checkpoints of one training config (or, with --last, "
                   "its training directory)")  # fmt: skip
    p.add_argument("--last", type=int, default=0, help="average the newest K step-*.pt of the directory given")
    p.add_argument("--out", type=Path, required=True, help="the averaged checkpoint")
    p.set_defaults(func=cmd_average)

    p = sub.add_parser("shards", help="pack a manifest into WebDataset tar shards for training")
    p.add_argument("manifest", type=Path, help="JSONL manifest")
    p.add_argument("--out", type=Path, required=True, help="output directory (shard-*.tar, index.jsonl)")
    p.add_argument("--shard-mb", type=float, default=256.0, help="target shard size in MB (default 256)")
    p.set_defaults(func=cmd_shards)

    manifest = sub.add_parser(
        "manifest", help="import (Kaldi, NeMo, a folder of audio, Common Voice), check or merge manifests"
    )
    manifest_sub = manifest.add_subparsers(dest="manifest_command", required=True)
    sources = {
        "kaldi": "a Kaldi data directory: wav.scp and text (segments, utt2spk where there)",
        "nemo": "a NeMo manifest: JSON lines with audio_filepath, duration, text (offset, speaker)",
        "folder": "a folder of audio files with same-named .txt transcripts, searched recursively",
        "commonvoice": "a Common Voice split: train.tsv, dev.tsv, test.tsv or validated.tsv, clips/ beside it",
    }
    for name, source in sources.items():
        p = manifest_sub.add_parser(name, help=f"a manifest from {source}")
        p.add_argument("source", type=Path, help=source)
        p.add_argument("--out", type=Path, required=True, help="the manifest to write (JSONL)")
        _add_language(p, "transcripts")
        p.add_argument("--audio-dir", type=Path, help="where cut segments go as 16 kHz wav (default: OUT_STEM-audio/ "
                       "next to --out)")  # fmt: skip
        p.set_defaults(func=cmd_manifest, format=name)
    p = manifest_sub.add_parser("check", help="check every line (audio opens, duration, text); list the bad ones")
    p.add_argument("manifests", type=Path, nargs="+")
    _add_language(p, "transcripts", default=None)
    p.add_argument("--model", type=Path, help="check the text against this checkpoint's units (and language); "
                   "without it English is checked against a-z, ' and space, other languages not at all")  # fmt: skip
    p.set_defaults(func=cmd_manifest_check)
    p = manifest_sub.add_parser("merge", help="one manifest from several (audio paths kept valid, ids unique)")
    p.add_argument("manifests", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_manifest_merge)

    lm = sub.add_parser("lm", help="build and evaluate word n-gram language models (KenLM)")
    lm_sub = lm.add_subparsers(dest="lm_command", required=True)
    p = lm_sub.add_parser("build", help="ARPA + KenLM binary + vocabulary from text files")
    p.add_argument("--text", type=Path, nargs="+", required=True, help="text files (.gz too), one sentence a line")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    _add_language(p, "text")
    p.add_argument("--order", type=int, default=3, help="n-gram order (default 3)")
    p.add_argument("--prune", type=int, nargs="+", default=[], help="lmplz count thresholds per order, e.g. 0 0 1")
    p.add_argument("--units", choices=("word", "char"), default="word",
                   help="n-grams of words, or of characters (languages written without spaces)")  # fmt: skip
    p.set_defaults(func=cmd_lm_build)
    p = lm_sub.add_parser("import", help="an existing ARPA file (.arpa or .arpa.gz) as an LM directory")
    p.add_argument("--arpa", type=Path, required=True, help="ARPA file, e.g. LibriSpeech's 4-gram.arpa.gz")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--keep-case", action="store_true", help="do not lower-case the words")
    p.set_defaults(func=cmd_lm_import)
    p = lm_sub.add_parser("eval", help="perplexity and OOV rate of an LM on text files")
    p.add_argument("--lm", type=Path, required=True, help="LM directory, .arpa or .bin (arpa:FILE: in Python)")
    p.add_argument("--text", type=Path, nargs="+", required=True, help="text files, one sentence a line")
    _add_language(p, "text")
    p.set_defaults(func=cmd_lm_eval)
