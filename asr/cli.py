"""The ``asr`` command: ``asr train``, ``asr decode``, ``asr tune-lm``, ``asr transcribe``,
``asr stream``, ``asr serve``, ``asr export``, ``asr average``, ``asr shards``, ``asr lm build|import|eval``,
``asr align`` (word times of a known transcript and a score saying whether it matches the audio),
``asr manifest kaldi|nemo|folder|commonvoice|check|merge`` (import a Kaldi data directory, a NeMo
manifest, a folder of audio or a Common Voice split; check or merge manifests).

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
from asr.cli_data import add_data_commands, load_checkpoint, report_bad_lines
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
from asr.text import language
from asr.vad import VADError

if TYPE_CHECKING:
    from asr.decoding import BeamSearchDecoder, Hypothesis


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
        lang = loaded.config.text.language
        lm = with_extra_text(lm, read_sentences(args.extra_text, lang), d.extra_weight, d.extra_order, lang)
    hotwords = _hotwords(args.hotwords, config.decoding.hotword_weight)
    calibration = _read_tuned(args.tuned).get("confidence") if args.tuned else None
    spf, lang = loaded.config.seconds_per_frame, loaded.config.text.language
    return BeamSearchDecoder(loaded.vocab, config.decoding, lm, hotwords, spf, calibration, lang)


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
        scores = write_results(out_dir, run_name, ids, refs, hyps, raw, language(loaded.config.text.language).spaces)
        how = "greedy" if run_decoder is None else _describe(run_decoder)
        print(f"{run_name}: {scores.summary()} ({how})")
        if run_decoder is not None:
            write_report(
                out_dir / f"confidence-{run_name}.json", run_name, refs, _words(nbests), run_decoder.calibration
            )
        print(f"results in {out_dir}/{{recogs,errs,wer}}-{run_name}.txt")
    return report_bad_lines(args.manifest, bad, len(utts))


def _words(nbests: list[list[Hypothesis]]) -> list[list[tuple[str, float]]]:
    """``(word, confidence)`` lists of the best hypotheses."""
    return [[(w.word, w.confidence) for w in nb[0].words] for nb in nbests]


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
        return report_bad_lines(args.manifest, bad, 0)
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
    return report_bad_lines(args.manifest, bad, len(refs))


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
    loaded = load_checkpoint(args.model, device, args.int8)
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
    loaded = load_checkpoint(args.model, resolve_device(args.device), args.int8)
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
    loaded = load_checkpoint(args.model, "cpu", args.int8)
    decoder = decoder_from_arguments(args, loaded, config)
    d = config.decoding

    def make(options: ConnectionOptions | None = None) -> StreamingRecognizer:
        """The server's decoder, or one for this connection's hotwords and extra text (the
        base LM shared, not reopened)."""
        if options is None or not (options.hotwords or options.extra_text):
            return StreamingRecognizer(loaded, decoder, config.stream, config.segment)
        lm = decoder.lm if decoder is not None else None
        if options.extra_text:
            lm = with_extra_text(lm, options.extra_text, d.extra_weight, d.extra_order, loaded.config.text.language)
        hotwords = list(decoder.hotwords if decoder is not None else [])
        hotwords += [(p, d.hotword_weight if w is None else w) for p, w in options.hotwords]
        own = BeamSearchDecoder(
            loaded.vocab,
            d,
            lm,
            hotwords,
            loaded.config.seconds_per_frame,
            decoder.calibration if decoder is not None else None,
            loaded.config.text.language,
        )
        return StreamingRecognizer(loaded, own, config.stream, config.segment)

    try:
        info = describe(args.model, make())
    except ValueError as e:
        raise CheckpointError(f"{args.model}: {e}") from None

    run_server(Server(make, config.serve, info, loaded.config.features.sample_rate), args.host, args.port)
    return 0


def _device_id(name: str | None) -> int | str | None:
    return int(name) if name is not None and name.isdigit() else name


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
    p.add_argument("--int8", action="store_true", help="dynamic int8 LSTMs and linear layers (CPU; ~3x faster)")
    add_inference_arguments(p, ("decoding", "segment", "stream", "serve"))
    p.set_defaults(func=cmd_serve)

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

    add_data_commands(sub)
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
