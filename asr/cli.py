"""The ``asr`` command: ``asr train``, ``asr decode``, ``asr tune-lm``, ``asr transcribe``,
``asr stream``, ``asr serve``, ``asr export``, ``asr average``, ``asr shards``, ``asr lm build|import|eval``,
``asr align`` (word times of a known transcript and a score saying whether it matches the audio),
``asr manifest kaldi|nemo|folder|check|merge`` (import a Kaldi data directory, a NeMo manifest or a folder of
audio; check or merge manifests).

Every subcommand exits non-zero with a one-line message naming the bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from asr.align import AlignError
from asr.audio import AudioError
from asr.checkpoint import CheckpointError, LoadedModel, load_model, resolve_device
from asr.config import (
    ConfigError,
    ExperimentConfig,
    InferenceConfig,
    add_config_arguments,
    config_from_arguments,
    given_fields,
)
from asr.data import ManifestError
from asr.export import ExportError
from asr.files import write_text
from asr.formats import FORMATS
from asr.lm import LMError
from asr.vad import VADError

if TYPE_CHECKING:
    from asr.decoding import BeamSearchDecoder, Hypothesis


def _load(path: Path, device: str, int8: bool) -> LoadedModel:
    """The checkpoint's model, dynamically quantized to int8 when asked."""
    loaded = load_model(path, device)
    if int8:
        from asr.export import quantize_int8

        loaded = quantize_int8(loaded)
    return loaded


def cmd_train(args: argparse.Namespace) -> int:
    from asr.train import train

    best = train(config_from_arguments(ExperimentConfig, args))
    print(f"best checkpoint: {best}")
    return 0


def add_inference_arguments(p: argparse.ArgumentParser, sections: tuple[str, ...] = ("decoding",)) -> None:
    """The LM, hotword and tuned-weights inputs, and the ``--section.field`` options of
    :class:`~asr.config.InferenceConfig`'s ``sections`` (with ``--config`` YAML)."""
    g = p.add_argument_group("beam search (greedy decoding unless --lm or --beam is given)")
    g.add_argument("--lm", type=Path, help="word n-gram LM: an LM directory, .arpa or .bin (arpa:FILE: read in Python)")
    g.add_argument("--tuned", type=Path, help="JSON written by 'asr tune-lm': alpha, beta and confidence calibration")
    g.add_argument("--hotwords", nargs="+", default=[], metavar="PHRASE[:WEIGHT]", help="words to boost")
    g.add_argument(
        "--extra-text",
        nargs="+",
        type=Path,
        default=[],
        metavar="FILE",
        help="sentences or phrases (one per line) mixed into the LM at load time; their new words join the lexicon",
    )
    add_config_arguments(p.add_argument_group("settings (also from --config YAML)"), InferenceConfig, sections)


def _hotwords(items: list[str], default: float) -> list[tuple[str, float]]:
    out = []
    for item in items:
        phrase, sep, weight = item.rpartition(":")
        try:
            out.append((phrase, float(weight)) if sep else (item, default))
        except ValueError:
            out.append((item, default))
    return out


def inference_config(args: argparse.Namespace) -> InferenceConfig:
    """The command's settings: defaults, ``--config`` YAML, options; alpha and beta from
    ``--tuned`` unless given."""
    config = config_from_arguments(InferenceConfig, args)
    if not args.tuned:
        return config
    tuned = {k: v for k, v in _read_tuned(args.tuned).items() if k in ("alpha", "beta")}
    given = given_fields(InferenceConfig, args)
    tuned = {k: v for k, v in tuned.items() if f"decoding.{k}" not in given}
    return dataclasses.replace(config, decoding=dataclasses.replace(config.decoding, **tuned))


def _read_tuned(path: Path) -> dict[str, Any]:
    """A tune-lm result: ``alpha``, ``beta`` and, when it was fitted, ``confidence`` (a
    :class:`~asr.confidence.Calibration`); LMError naming the file otherwise."""
    import json

    from asr.confidence import Calibration

    try:
        tuned = json.loads(path.read_text())
        out: dict[str, Any] = {"alpha": float(tuned["alpha"]), "beta": float(tuned["beta"])}
        if tuned.get("confidence"):
            out["confidence"] = Calibration.from_dict(tuned["confidence"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise LMError(f"{path}: not a usable tune-lm result ({e})") from e
    return out


def decoder_from_arguments(
    args: argparse.Namespace, loaded: LoadedModel, config: InferenceConfig, force: bool = False
) -> BeamSearchDecoder | None:
    """A :class:`~asr.decoding.BeamSearchDecoder` for the options, or None for greedy decoding
    (no ``--lm``, hotwords or ``--extra-text``, no beam size given, one best)."""
    from asr.decoding import BeamSearchDecoder
    from asr.lm import open_lm, read_sentences, with_extra_text

    beam = "decoding.beam_size" in given_fields(InferenceConfig, args)
    if not (force or args.lm or args.hotwords or args.extra_text or beam or config.decoding.n_best > 1):
        return None
    lm = open_lm(args.lm) if args.lm else None
    if args.extra_text:
        d = config.decoding
        lm = with_extra_text(lm, read_sentences(args.extra_text), d.extra_weight, d.extra_order)
    hotwords = _hotwords(args.hotwords, config.decoding.hotword_weight)
    calibration = _read_tuned(args.tuned).get("confidence") if args.tuned else None
    return BeamSearchDecoder(loaded.vocab, config.decoding, lm, hotwords, loaded.config.seconds_per_frame, calibration)


def cmd_decode(args: argparse.Namespace) -> int:
    from asr.confidence import write_report
    from asr.metrics import write_results
    from asr.transcribe import decode_posteriors, manifest_posteriors

    config = inference_config(args)
    loaded = load_model(args.model, resolve_device(args.device))
    decoder = decoder_from_arguments(args, loaded, config)
    name = args.name or args.manifest.stem
    utts, posteriors, bad = manifest_posteriors(loaded, args.manifest, num_workers=args.num_workers)
    out_dir = args.out_dir or args.model.parent / "decode"
    runs = [(name, decoder)]
    if args.greedy_name and decoder is not None:
        runs.insert(0, (args.greedy_name, None))
    for run_name, run_decoder in runs if utts else []:
        ids, refs, raw = [u.id for u in utts], [u.text for u in utts], [u.raw_text for u in utts]
        if run_decoder is None:
            hyps = decode_posteriors(loaded, posteriors, None)
        else:
            nbests = run_decoder.calibrated(None).decode_batch(list(posteriors), workers=config.decoding.workers)
            hyps = [nbest[0].text for nbest in nbests]
        scores = write_results(out_dir, run_name, ids, refs, hyps, raw)
        how = "greedy" if run_decoder is None else _describe(run_decoder)
        print(f"{run_name}: {scores.summary()} ({how})")
        if run_decoder is not None:
            write_report(
                out_dir / f"confidence-{run_name}.json", run_name, refs, _words(nbests), run_decoder.calibration
            )
        print(f"results in {out_dir}/{{recogs,errs,wer}}-{run_name}.txt")
    return _report_bad_lines(args.manifest, bad, len(utts))


def _words(nbests: list[list[Hypothesis]]) -> list[list[tuple[str, float]]]:
    """``(word, confidence)`` lists of the best hypotheses."""
    return [[(w.word, w.confidence) for w in nb[0].words] for nb in nbests]


def _report_bad_lines(manifest: Path, bad: list[str], good: int) -> int:
    """Print every bad line of ``manifest`` to stderr; the exit status (1 when there are any)."""
    if not bad:
        return 0
    rest = f"the other {good} were used" if good else "nothing was left to use"
    print(f"error: {len(bad)} of {len(bad) + good} lines of {manifest} are unusable ({rest}):", file=sys.stderr)
    for line in bad:
        print(f"  {line}", file=sys.stderr)
    return 1


def _describe(decoder: BeamSearchDecoder) -> str:
    c = decoder.config
    lm = f"LM {decoder.lm.path}, alpha {c.alpha}, beta {c.beta}, " if decoder.lm is not None else ""
    return f"beam {c.beam_size}, {lm}lexicon {decoder.lexicon_mode}"


def cmd_align(args: argparse.Namespace) -> int:
    import json

    from asr.align import align, align_manifest
    from asr.audio import load_audio

    if args.manifest is not None:
        if args.audio is not None or args.text_file is not None or args.out is None:
            raise AlignError("--manifest takes no AUDIO, TRANSCRIPT or --text-file, and needs --out")
        loaded = load_model(args.model, resolve_device(args.device))
        total, failed = align_manifest(loaded, args.manifest, args.out, args.batch_seconds)
        print(f"wrote {args.out}: {total - len(failed)} of {total} lines aligned")
        if failed:
            print(f"error: {len(failed)} lines could not be aligned (kept with align_error):", file=sys.stderr)
            for message in failed:
                print(f"  {message}", file=sys.stderr)
        return 1 if failed else 0
    if args.audio is None or (args.transcript is None) == (args.text_file is None):
        raise AlignError("give AUDIO and the TRANSCRIPT (or --text-file FILE), or --manifest M --out OUT")
    text = args.transcript
    if args.text_file is not None:
        try:
            text = args.text_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise AlignError(f"{args.text_file}: cannot read the transcript ({e})") from None
    loaded = load_model(args.model, resolve_device(args.device))
    audio = load_audio(args.audio, loaded.config.features.sample_rate)
    result = align(loaded, audio, text, str(args.audio))
    if args.format == "json":
        print(json.dumps({"audio": str(args.audio), **result.to_dict()}))
    else:
        print(result.to_text(), end="")
    return 0


def cmd_tune_lm(args: argparse.Namespace) -> int:
    import json

    from asr.confidence import fit_calibration, labelled_words, write_report
    from asr.decoding import tune_lm
    from asr.transcribe import cached_posteriors

    config = inference_config(args)
    loaded = load_model(args.model, resolve_device(args.device))
    decoder = decoder_from_arguments(args, loaded, config, force=True)
    if decoder.lm is None:
        raise LMError("tune-lm needs --lm")
    name = args.name or args.manifest.stem
    out_dir = args.out_dir or args.model.parent / "decode"
    cache = out_dir / f"posteriors-{name}.pt"
    refs, posteriors, bad = cached_posteriors(loaded, args.model, args.manifest, cache, args.num_workers)
    if not refs:
        return _report_bad_lines(args.manifest, bad, 0)
    result = tune_lm(
        decoder,
        posteriors,
        refs,
        tuple(args.alphas),
        tuple(args.betas),
        args.trials,
        args.grid,
        config.decoding.workers,
        args.seed,
    )
    out = args.out or out_dir / f"tune-lm-{name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    best = {"alpha": result.alpha, "beta": result.beta, "wer": result.wer, "beam": decoder.config.beam_size}
    wer = f"WER {100 * result.wer:.2f}%"
    print(f"{name}: best alpha {result.alpha} beta {result.beta}: {wer} ({len(result.trials)} trials)")
    if args.calibration != "none":  # word confidences at the best weights: fit their calibration on this set
        tuned = decoder.with_options(alpha=result.alpha, beta=result.beta)
        nbests = tuned.decode_batch(list(posteriors), workers=config.decoding.workers)
        try:
            calibration = fit_calibration(*labelled_words(refs, _words(nbests)), args.calibration)
        except ValueError as e:  # an untrained model's empty hypotheses: the weights still stand
            print(f"warning: word confidence left uncalibrated on {args.manifest}: {e}", file=sys.stderr)
        else:
            write_report(out_dir / f"confidence-{name}.json", name, refs, _words(nbests), calibration)
            best["confidence"] = calibration.to_dict()
    write_text(out, json.dumps({**best, "lm": str(args.lm), "manifest": str(args.manifest), "trials": result.trials}))
    print(f"wrote {out}")
    return _report_bad_lines(args.manifest, bad, len(refs))


def cmd_transcribe(args: argparse.Namespace) -> int:
    import os

    from asr.bulk import Ranks, transcribe_all
    from asr.transcribe import Transcriber, collect_inputs, manifest_inputs

    if bool(args.inputs) == (args.manifest is not None):
        raise AudioError("give the audio to transcribe as INPUTS or as --manifest M, one of them")
    inputs, durations = manifest_inputs(args.manifest) if args.manifest else (collect_inputs(args.inputs), None)
    try:
        ranks = Ranks.from_env()
    except ValueError as e:
        raise ConfigError(f"torchrun environment: {e}") from None
    if ranks.world > 1 and not args.output_dir:
        raise AudioError(f"{ranks.world} processes (torchrun) need --output-dir: each writes its share of the files")
    if args.format in ("srt", "vtt") and len(inputs) > 1 and not args.output_dir:
        raise AudioError(f"--format {args.format} with {len(inputs)} inputs needs --output-dir (one file each)")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if device == "cuda" and ranks.world > 1:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
    config = inference_config(args)
    loaded = _load(args.model, device, args.int8)
    decoder = decoder_from_arguments(args, loaded, config)
    settings = {"model": str(args.model), "device": device, "int8": args.int8}
    transcriber = Transcriber(loaded, decoder, config.segment, args.batch_size, settings)
    return transcribe_all(transcriber, inputs, durations, ranks, args.output_dir, args.format, args.overwrite,
                          args.with_names, (args.min_confidence, args.low_confidence))  # fmt: skip


def cmd_stream(args: argparse.Namespace) -> int:
    from asr.audio import file_chunks, input_devices, microphone_chunks
    from asr.streaming import StreamingRecognizer

    if args.list_devices:
        print(input_devices())
        return 0
    if (args.file is None) == (not args.mic):
        raise AudioError("give one source: --file PATH or --mic")
    if args.threads:
        torch.set_num_threads(args.threads)
    config = inference_config(args)
    loaded = _load(args.model, resolve_device(args.device), args.int8)
    decoder = decoder_from_arguments(args, loaded, config)
    try:
        recognizer = StreamingRecognizer(loaded, decoder, config.stream, config.segment)
    except ValueError as e:
        raise CheckpointError(f"{args.model}: {e}") from None
    rate = loaded.config.features.sample_rate
    chunk = round(config.stream.chunk_ms * rate / 1000)
    if args.mic:
        # Ctrl-C ends the session even where SIGINT came in ignored (a job started with & from
        # a script): Python installs its KeyboardInterrupt handler only over the default.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        source = microphone_chunks(chunk, _device_id(args.input_device), rate)
    else:
        source = file_chunks(args.file, chunk, args.realtime, rate)
    live = sys.stdout.isatty()

    def show(final: str | None = None, partial: str = "") -> None:
        if final is not None:
            print(("\r\033[K" if live else "") + final, flush=True)
        elif live:
            print("\r\033[K" + partial[-150:], end="", flush=True)

    try:
        for piece in source:
            for result in recognizer.accept(piece):
                if result.text:
                    show(result.text)
            show(partial=recognizer.partial())
    except KeyboardInterrupt:
        pass  # Ctrl-C: close the utterance that is open
    last = recognizer.finalize()
    if last.text or live:
        show(last.text)
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from asr.decoding import BeamSearchDecoder
    from asr.lm import with_extra_text
    from asr.serve import ConnectionOptions, Server, describe, run_server
    from asr.streaming import StreamingRecognizer

    torch.set_num_threads(1)
    config = inference_config(args)
    loaded = _load(args.model, "cpu", args.int8)
    decoder = decoder_from_arguments(args, loaded, config)
    d = config.decoding

    def make(options: ConnectionOptions | None = None) -> StreamingRecognizer:
        """The server's decoder, or one for this connection's hotwords and extra text (the
        base LM shared, not reopened)."""
        if options is None or not (options.hotwords or options.extra_text):
            return StreamingRecognizer(loaded, decoder, config.stream, config.segment)
        lm = decoder.lm if decoder is not None else None
        if options.extra_text:
            lm = with_extra_text(lm, options.extra_text, d.extra_weight, d.extra_order)
        hotwords = list(decoder.hotwords if decoder is not None else [])
        hotwords += [(p, d.hotword_weight if w is None else w) for p, w in options.hotwords]
        own = BeamSearchDecoder(
            loaded.vocab,
            d,
            lm,
            hotwords,
            loaded.config.seconds_per_frame,
            decoder.calibration if decoder is not None else None,
        )
        return StreamingRecognizer(loaded, own, config.stream, config.segment)

    try:
        info = describe(args.model, make())
    except ValueError as e:
        raise CheckpointError(f"{args.model}: {e}") from None

    run_server(Server(make, args.max_streams, args.max_message, args.workers, info), args.host, args.port)
    return 0


def _device_id(name: str | None) -> int | str | None:
    return int(name) if name is not None and name.isdigit() else name


def cmd_export(args: argparse.Namespace) -> int:
    from asr.export import export

    loaded = _load(args.model, "cpu", args.int8)
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

    status = 0
    for manifest in args.manifests:
        utts, bad = check_manifest(manifest)
        print(f"{manifest}: {len(utts)} good lines ({total_hours(utts):.2f} h), {len(bad)} bad")
        status = max(status, _report_bad_lines(manifest, bad, len(utts)))
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
    utts, bad = IMPORTERS[args.format](args.source, audio_dir)
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

    sentences = read_sentences(args.text)
    out = build_lm(sentences, args.out, args.order, args.prune, sources=[str(t) for t in args.text])
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
    from asr.lm import evaluate, open_lm, read_sentences

    result = evaluate(open_lm(args.lm), read_sentences(args.text))
    print(f"{', '.join(map(str, args.text))}: {result.summary()}")
    return 0


def _manifest_command(sub: Any, name: str, help: str, func: Callable[[argparse.Namespace], int]) -> Any:
    """A subcommand over a model and a manifest with references (``decode``, ``tune-lm``)."""
    p = sub.add_parser(name, help=help)
    p.add_argument("--model", type=Path, required=True, help="checkpoint (.pt)")
    p.add_argument("--manifest", type=Path, required=True, help="JSONL manifest with references")
    p.add_argument("--out-dir", type=Path, help="result files and the posterior cache (default: MODEL_DIR/decode)")
    p.add_argument("--name", help="set name used in result file names (default: manifest stem)")
    p.add_argument("--device", default="auto")
    p.add_argument("--num-workers", type=int, default=1, help="audio loading processes")
    add_inference_arguments(p)
    p.set_defaults(func=func)
    return p


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="CTC/BiLSTM speech recognition")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train an acoustic model (torchrun-compatible)")
    add_config_arguments(p, ExperimentConfig)
    p.set_defaults(func=cmd_train)

    p = _manifest_command(sub, "decode", "decode a manifest, print WER/CER, write result files", cmd_decode)
    p.add_argument("--greedy-name", help="with --lm or --beam: also write greedy results of the same posteriors "
                   "under this set name (one forward pass for both)")  # fmt: skip

    help = "search LM weight alpha and word bonus beta on a dev manifest"
    p = _manifest_command(sub, "tune-lm", help, cmd_tune_lm)
    p.add_argument("--alphas", type=float, nargs=2, default=[0.0, 2.0], metavar=("LOW", "HIGH"))
    p.add_argument("--betas", type=float, nargs=2, default=[-1.0, 3.0], metavar=("LOW", "HIGH"))
    p.add_argument("--trials", type=int, default=30, help="decodes: half at random points, the rest refining the "
                   "best by compass search (or about this many on a --grid)")  # fmt: skip
    p.add_argument("--grid", action="store_true", help="a square grid instead of random points")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="result JSON (default: OUT_DIR/tune-lm-NAME.json)")
    p.add_argument("--calibration", choices=("isotonic", "temperature", "none"), default="isotonic",
                   help="word-confidence calibration fitted on this set at the best weights")  # fmt: skip

    p = sub.add_parser("transcribe", help="transcribe audio files of any length (text, JSON, SRT, VTT)")
    p.add_argument("--model", type=Path, required=True, help="checkpoint (.pt)")
    p.add_argument("inputs", nargs="*", help="audio files (wav/flac/ogg/mp3, any rate/channels), directories "
                   "(searched recursively), glob patterns, or - for stdin")  # fmt: skip
    p.add_argument("--manifest", type=Path, help="transcribe a JSONL manifest's audio instead (outputs named by id)")
    p.add_argument("--overwrite", action="store_true", help="with --output-dir: redo files whose output exists")
    p.add_argument("--format", choices=FORMATS, default="text", help="output format")
    p.add_argument("--output-dir", "-o", type=Path, help="one result file per input here (default: stdout)")
    p.add_argument("--with-names", action="store_true", help="text on stdout: input, a tab, the text")
    p.add_argument("--min-confidence", type=float, default=0.0, metavar="P",
                   help="words below confidence P: marked (JSON, SRT, VTT) or dropped")  # fmt: skip
    p.add_argument("--low-confidence", choices=("mark", "drop"), default="mark", help="what --min-confidence does")
    p.add_argument("--batch-size", type=int, default=8, help="segments per forward pass")
    p.add_argument("--int8", action="store_true", help="dynamic int8 quantization of LSTMs and linear layers (CPU)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    p.add_argument("--device", default="auto")
    add_inference_arguments(p, ("decoding", "segment"))
    p.set_defaults(func=cmd_transcribe)

    p = sub.add_parser("stream", help="live recognition with a unidirectional model: microphone or file")
    p.add_argument("--model", type=Path, required=True, help="unidirectional (streaming) checkpoint (.pt)")
    p.add_argument("--file", help="feed this audio file through the streaming path")
    p.add_argument("--realtime", action="store_true", help="with --file: at real-time pace, as a microphone would")
    p.add_argument("--mic", action="store_true", help="capture the default input device (sounddevice/PortAudio)")
    p.add_argument("--input-device", help="input device number or name (see --list-devices)")
    p.add_argument("--list-devices", action="store_true", help="list audio devices and exit")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--int8", action="store_true", help="dynamic int8 LSTMs and linear layers (CPU; ~3x faster)")
    p.add_argument("--device", default="cpu")
    add_inference_arguments(p, ("decoding", "segment", "stream"))
    p.set_defaults(func=cmd_stream)

    p = sub.add_parser("serve", help="a web page streaming the microphone to the recognizer (WebSocket)")
    p.add_argument("--model", type=Path, required=True, help="unidirectional (streaming) checkpoint (.pt)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-streams", type=int, default=16, help="concurrent streams; more are refused (close 1013)")
    p.add_argument("--max-message", type=int, default=64000, help="largest audio message in bytes (close 1009)")
    p.add_argument("--workers", type=int, default=2, help="recognition threads")
    p.add_argument("--int8", action="store_true", help="dynamic int8 LSTMs and linear layers (CPU; ~3x faster)")
    add_inference_arguments(p, ("decoding", "segment", "stream"))
    p.set_defaults(func=cmd_serve)

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

    p = sub.add_parser("align", help="word times of a known transcript (CTC forced alignment) and a match score")
    p.add_argument("--model", type=Path, required=True, help="checkpoint (.pt)")
    p.add_argument("audio", type=Path, nargs="?", help="audio file (any format, rate, channels)")
    p.add_argument("transcript", nargs="?", help="its transcript (raw text; normalized before aligning)")
    p.add_argument("--text-file", type=Path, help="read the transcript from this file instead")
    p.add_argument("--manifest", type=Path, help="align every line of this JSONL manifest instead (needs --out)")
    p.add_argument("--out", type=Path, help="with --manifest: the manifest written with words and align_score")
    p.add_argument("--format", choices=("text", "json"), default="text", help="text: 'start end score word' lines")
    p.add_argument("--batch-seconds", type=float, default=200.0, help="padded audio per forward pass (--manifest)")
    p.add_argument("--device", default="auto")
    p.set_defaults(func=cmd_align)

    manifest = sub.add_parser("manifest", help="import (Kaldi, NeMo, a folder of audio), check or merge manifests")
    manifest_sub = manifest.add_subparsers(dest="manifest_command", required=True)
    sources = {
        "kaldi": "a Kaldi data directory: wav.scp and text (segments, utt2spk where there)",
        "nemo": "a NeMo manifest: JSON lines with audio_filepath, duration, text (offset, speaker)",
        "folder": "a folder of audio files with same-named .txt transcripts, searched recursively",
    }
    for name, source in sources.items():
        p = manifest_sub.add_parser(name, help=f"a manifest from {source}")
        p.add_argument("source", type=Path, help=source)
        p.add_argument("--out", type=Path, required=True, help="the manifest to write (JSONL)")
        p.add_argument("--audio-dir", type=Path, help="where cut segments go as 16 kHz wav (default: OUT_STEM-audio/ "
                       "next to --out)")  # fmt: skip
        p.set_defaults(func=cmd_manifest, format=name)
    p = manifest_sub.add_parser("check", help="check every line (audio opens, duration, text); list the bad ones")
    p.add_argument("manifests", type=Path, nargs="+")
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
    p.add_argument("--order", type=int, default=3, help="n-gram order (default 3)")
    p.add_argument("--prune", type=int, nargs="+", default=[], help="lmplz count thresholds per order, e.g. 0 0 1")
    p.set_defaults(func=cmd_lm_build)
    p = lm_sub.add_parser("import", help="an existing ARPA file (.arpa or .arpa.gz) as an LM directory")
    p.add_argument("--arpa", type=Path, required=True, help="ARPA file, e.g. LibriSpeech's 4-gram.arpa.gz")
    p.add_argument("--out", type=Path, required=True, help="output directory")
    p.add_argument("--keep-case", action="store_true", help="do not lower-case the words")
    p.set_defaults(func=cmd_lm_import)
    p = lm_sub.add_parser("eval", help="perplexity and OOV rate of an LM on text files")
    p.add_argument("--lm", type=Path, required=True, help="LM directory, .arpa or .bin (arpa:FILE: in Python)")
    p.add_argument("--text", type=Path, nargs="+", required=True, help="text files, one sentence a line")
    p.set_defaults(func=cmd_lm_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (AudioError, AlignError, CheckpointError, ConfigError, ManifestError, LMError, ExportError, VADError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
