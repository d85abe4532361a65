"""Frozen dataclass configs for every stage, and their command-line/YAML plumbing.

Each config is saved inside every checkpoint (``dataclasses.asdict``) so that a checkpoint
alone rebuilds its model, feature pipeline and vocabulary. Change one field per call with
``dataclasses.replace``.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from asr.text import ALPHABET, language
from asr.units import check_units

T = TypeVar("T")


class ConfigError(ValueError):
    """A config value, file or combination that cannot be used (names the field or file)."""


def _option(*aliases: str, help: str) -> dict[str, Any]:
    """Field metadata: short command-line aliases of ``--section.field``, and its help."""
    return {"flags": aliases, "help": help}


NORMALIZATIONS = ("utterance", "online", "global", "none")


@dataclass(frozen=True)
class FeatureConfig:
    """Log-mel front-end. Times in milliseconds; derived sizes are properties."""

    sample_rate: int = 16000
    n_mels: int = 80
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    f_min: float = 20.0
    f_max: float = 7600.0
    # "utterance" mean/variance normalization (offline models), "online" (causal: each frame by
    # its utterance's frames so far, with the global statistics as a prior of cmvn_prior_frames
    # frames; streaming), "global" (training-set statistics) or "none"
    normalize: str = "utterance"
    cmvn_prior_frames: float = 100.0

    def __post_init__(self) -> None:
        if self.normalize not in NORMALIZATIONS:
            raise ConfigError(f"features.normalize {self.normalize!r}: one of {', '.join(NORMALIZATIONS)}")
        if self.cmvn_prior_frames < 0:
            raise ConfigError(f"features.cmvn_prior_frames {self.cmvn_prior_frames:g} must not be negative")

    @property
    def win_length(self) -> int:
        return round(self.sample_rate * self.win_ms / 1000)

    @property
    def hop_length(self) -> int:
        return round(self.sample_rate * self.hop_ms / 1000)

    @property
    def frames_per_second(self) -> float:
        return self.sample_rate / self.hop_length


CELLS = ("lstm", "gru")


@dataclass(frozen=True)
class ModelConfig:
    """Conv front-end + stacked recurrent layers (LSTM or GRU, bi- or unidirectional) + CTC head.

    ``lookahead`` is the future context, in output frames, of the row convolution used by
    the unidirectional (streaming) variant; it is ignored when ``bidirectional`` is true.
    """

    conv_channels: int = 32
    conv_layers: int = 2  # each 3x3, stride 2 in frequency
    cell: str = "lstm"  # the recurrent cell: lstm or gru
    hidden_size: int = 256
    num_layers: int = 3
    bidirectional: bool = True
    lookahead: int = 0
    dropout: float = 0.1
    time_subsampling: int = 4  # the first log2(this) conv layers stride 2 in time, the others 1
    # CTC outputs per LSTM frame: the head predicts this many consecutive output frames from
    # each LSTM frame, so CTC sees time_subsampling / output_frames times the 10 ms hop
    # while the LSTMs run at the subsampled rate (dense character alignments, low cost).
    output_frames: int = 1

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise ConfigError(f"model.cell {self.cell!r}: {' or '.join(CELLS)}")
        t = self.time_subsampling
        if t < 1 or t & (t - 1) or t > 2**self.conv_layers:
            raise ConfigError(
                f"model.time_subsampling {t}: must be a power of two up to 2**conv_layers = {2**self.conv_layers}"
            )
        if not 1 <= self.output_frames <= t:
            raise ConfigError(f"model.output_frames {self.output_frames}: must be from 1 to time_subsampling ({t})")

    @property
    def output_hop(self) -> int:
        """Input (10 ms) frames per CTC output frame."""
        return self.time_subsampling // self.output_frames

    def time_strides(self) -> list[int]:
        """Time stride of each conv layer."""
        halvings = self.time_subsampling.bit_length() - 1
        return [2 if i < halvings else 1 for i in range(self.conv_layers)]


@dataclass(frozen=True)
class TextConfig:
    """How transcripts become targets: ``language`` picks the normalization rules of
    :func:`asr.text.normalize` (an ISO 639 code; ``en``: the English a-z alphabet);
    ``units`` the output symbols: ``vocabulary`` (``ExperimentConfig.vocabulary`` as given),
    ``char`` (every character of the normalized training text) or ``bpe:N`` / ``unigram:N``
    (SentencePiece pieces trained on it), built by the first training run and stored in the
    checkpoint (:mod:`asr.units`)."""

    language: str = field(default="en", metadata=_option(help="transcript language (ISO 639: en, de, fr, ru, zh...)"))
    units: str = field(
        default="vocabulary",
        metadata=_option(
            help="output symbols: vocabulary (as given), char, bpe:N or unigram:N (from the training text)"
        ),
    )

    def __post_init__(self) -> None:
        try:
            language(self.language)
        except ValueError as e:
            raise ConfigError(f"text.language: {e}") from None
        try:
            check_units(self.units)
        except ValueError as e:
            raise ConfigError(f"text.units {e}") from None


@dataclass(frozen=True)
class SpecAugmentConfig:
    freq_masks: int = 2
    freq_width: int = 15  # mel bins
    time_masks: int = 2
    time_width: float = 0.05  # fraction of the utterance, at most this per mask


@dataclass(frozen=True)
class AugmentConfig:
    """Waveform augmentation of training utterances (``asr/augment.py``); all off by default."""

    speed: float = 0.0  # 3-way speed perturbation: factors 1 - speed, 1, 1 + speed (0.1: Kaldi's)
    gain_db: float = 0.0  # random gain, uniform in +- gain_db
    noise_prob: float = 0.0  # chance of adding noise to an utterance
    snr_low: float = 10.0  # noise SNR range in dB
    snr_high: float = 30.0
    noise_manifest: str = ""  # noise clips (a JSONL manifest); generated colored noise when empty
    # channel bandwidth: each utterance resampled through one of these sample rates (picked
    # uniformly) and back, a low-pass at half the rate: "8000,11025,16000" at 16 kHz gives
    # telephone (4 kHz), 5.5 kHz and full-band audio alike; empty: off
    band_rates: str = ""

    def rates(self) -> list[int]:
        """The sample rates of ``band_rates``; raises :class:`ConfigError` on a bad list."""
        try:
            rates = [int(r) for r in self.band_rates.split(",") if r.strip()]
        except ValueError:
            raise ConfigError(f"augment.band_rates {self.band_rates!r}: not a comma-separated list of rates") from None
        if any(r < 1000 for r in rates):
            raise ConfigError(f"augment.band_rates {self.band_rates!r}: rates must be at least 1000 Hz")
        return rates


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and data-loading settings of ``asr train``."""

    train_manifest: str = ""  # a JSONL manifest, several separated by commas, or a shard directory
    mix_weights: str = ""  # per training manifest, how often its utterances come per epoch ("1,2"); empty: all 1
    dev_manifest: str = ""  # one, or several separated by commas (scored pooled, for best.pt, and each on its own)
    best_metric: str = "cer"  # the pooled greedy dev score picking best.pt: cer or wer (WER rewards deleting)
    out_dir: str = "exp/model"
    init_from: str = ""  # start from this checkpoint's weights (fine-tuning; fresh optimizer and schedule)
    init_head: bool = True  # false: init_from's output layer is not copied (it may have other units)
    epochs: int = 10
    max_minutes: float = 0.0  # stop (and run the final validation) after this wall time; 0 = off
    batch_seconds: float = 120.0  # max padded audio-seconds per batch
    max_duration: float = 20.0  # drop longer training utterances
    skip_bad_lines: bool = False  # train without manifest lines that fail asr.data.check_manifest (else refuse)
    shuffle_buffer: int = 2000  # training from shards: utterances bucketed and shuffled together
    lr: float = 2e-3
    min_lr_ratio: float = 0.02
    warmup_steps: int = 200
    weight_decay: float = 1e-2
    grad_clip: float = 5.0
    precision: str = "auto"  # fp32, bf16, fp16 (autocast, CTC loss in fp32; fp16 with loss scaling) or auto
    spec_augment: bool = True
    vtlp: float = 0.0  # vocal tract length perturbation: warp factors uniform in 1 +- this (0: off)
    sortagrad: bool = True  # first epoch from shortest to longest utterance
    seed: int = 0
    save_every: int = 0  # steps between mid-epoch checkpoints (0: at epoch ends only)
    eval_every: int = 0  # steps between mid-epoch dev validations, each then checkpointed (0: at epoch ends only)
    keep_last: int = 3  # step checkpoints kept (0: all)
    deterministic: bool = False  # torch.use_deterministic_algorithms (exact resume on GPU too)
    tensorboard: bool = True  # TensorBoard scalars under out_dir/tensorboard
    num_workers: int = 1
    threads: int = 0  # torch intra-op threads; 0 = torch default
    device: str = "auto"
    log_every: int = 20

    def __post_init__(self) -> None:
        if self.best_metric not in ("cer", "wer"):
            raise ConfigError(f"train.best_metric {self.best_metric!r}: cer or wer")


@dataclass(frozen=True)
class DecodingConfig:
    """CTC prefix beam search (``asr.decoding.BeamSearchDecoder``); scores are natural logs.

    ``lexicon``: ``"free"`` (any character string is a word; words outside the LM's
    vocabulary pay ``unk_offset``), ``"lm"`` (only the LM's vocabulary), the path of a word
    list (one word per line), or ``"auto"``: ``"lm"`` with an LM that lists its words, else
    ``"free"`` (the default: lexicon decoding won bench/decoding on the synthetic recipe).
    """

    beam_size: int = field(default=50, metadata=_option("--beam", help="beam size"))
    beam_threshold: float = field(
        default=20.0, metadata=_option("--beam-threshold", help="drop prefixes this far below the best (0: off)")
    )
    token_min_logp: float = field(
        default=-8.0, metadata=_option("--token-min-logp", help="per frame, only tokens this likely (the best always)")
    )
    max_tokens_per_frame: int = 0  # and at most this many of them; 0 = no cap
    alpha: float = field(default=0.5, metadata=_option("--alpha", help="LM weight (else from --tuned)"))
    beta: float = field(default=1.0, metadata=_option("--beta", help="word insertion bonus (else from --tuned)"))
    lexicon: str = field(default="auto", metadata=_option("--lexicon", help="auto, free, lm or a word list file"))
    unk_offset: float = -10.0  # lexicon-free: alpha times this for each word outside the LM's vocabulary
    unk_char_offset: float = -2.0  # and alpha times this for each of its characters
    n_best: int = field(default=1, metadata=_option("--n-best", help="alternatives kept (JSON output)"))
    hotword_weight: float = field(
        default=3.0, metadata=_option("--hotword-weight", help="weight of hotwords given without one")
    )
    workers: int = field(default=1, metadata=_option("--decode-workers", help="beam-search processes"))
    extra_weight: float = field(
        default=0.3, metadata=_option("--extra-weight", help="weight of the --extra-text n-gram against the LM")
    )
    extra_order: int = 3  # n-gram order of the --extra-text model

    def __post_init__(self) -> None:
        if self.beam_size < 1 or self.n_best < 1:
            raise ConfigError(f"decoding.beam_size {self.beam_size} and n_best {self.n_best} must be at least 1")
        if not 0.0 < self.extra_weight < 1.0 or self.extra_order < 2:
            raise ConfigError(
                f"decoding.extra_weight {self.extra_weight:g} must be in (0, 1) and extra_order {self.extra_order} >= 2"
            )


@dataclass(frozen=True)
class SegmentConfig:
    """Splitting long audio for transcription (``asr.segment.Segmenter``), times in seconds.

    ``vad``: the speech detector (:mod:`asr.vad`). ``silero``: a 32 ms window is speech when
    Silero VAD's probability reaches ``vad_threshold`` (and, in a background Silero hears as
    speech, when its energy stands ``vad_gate_db`` above that background). ``energy``: a frame (10 ms) is speech
    when its energy is above ``floor_db`` (dBFS), ``margin_db`` above the tracked noise
    floor, and within ``range_db`` of the tracked speech peak.
    A pause of ``min_silence`` ends a segment (``pad`` of it kept at each side; -1: the
    detector's own, 0.1 s for silero, 0.15 s for energy, whose speech stops sooner); speech
    longer than ``max_seconds`` is cut at its quietest frame in the last ``search`` seconds,
    the two segments overlapping by ``overlap`` and each word kept by the one that owns
    its midpoint. Stretches with less than ``min_speech`` of speech are dropped as noise.
    """

    max_seconds: float = field(default=20.0, metadata=_option("--max-segment", help="longest segment (seconds)"))
    min_silence: float = field(default=0.4, metadata=_option("--min-silence", help="pause that ends a segment"))
    pad: float = -1.0
    overlap: float = 1.0
    search: float = 5.0
    floor_db: float = -60.0
    margin_db: float = 10.0
    range_db: float = 40.0
    min_speech: float = 0.1
    vad: str = field(default="silero", metadata=_option("--vad", help="speech detector: silero or energy"))
    # silero: speech probability that starts speech (it ends 0.15 lower); 0.35 rather than
    # Silero's 0.5: on long UQM files it misses less processed speech (bench/vad.py)
    vad_threshold: float = 0.35
    # silero: when it calls nearly everything speech (babble), frames must also stand this many
    # dB above the background by energy (asr.vad.BusyGate; 0: off)
    vad_gate_db: float = 3.0

    def __post_init__(self) -> None:
        if not 0 < self.overlap + self.search < self.max_seconds:
            raise ConfigError(
                f"segment.max_seconds {self.max_seconds} must exceed overlap + search ({self.overlap + self.search})"
            )
        if self.min_silence <= 0 or self.overlap < 0 or not (self.pad >= 0 or self.pad == -1):
            raise ConfigError(
                f"segment.min_silence {self.min_silence:g} must be positive, overlap {self.overlap:g} not negative, "
                f"pad {self.pad:g} not negative (or -1: the detector's own)"
            )
        if self.vad not in ("silero", "energy") or not 0.15 < self.vad_threshold < 1:
            raise ConfigError(
                f"segment.vad {self.vad!r} must be silero or energy, vad_threshold {self.vad_threshold:g} in (0.15, 1)"
            )
        if self.vad_gate_db < 0:
            raise ConfigError(f"segment.vad_gate_db {self.vad_gate_db:g} must not be negative (0: no gate)")


@dataclass(frozen=True)
class StreamConfig:
    """Live recognition (``asr stream``, ``asr serve``: :class:`asr.streaming.StreamingRecognizer`).

    ``endpoint_silence``: seconds of non-speech after speech that close an utterance (0:
    only the end of the stream does, and all audio is decoded); speech is judged with the
    ``segment`` thresholds. An utterance's audio starts ``pre_roll`` seconds before its
    first speech frame. ``chunk_ms``: audio per step when reading a file or a microphone.
    """

    chunk_ms: float = field(default=100.0, metadata=_option("--chunk-ms", help="audio per step (ms)"))
    endpoint_silence: float = field(
        default=0.8, metadata=_option("--endpoint", help="seconds of trailing silence that end an utterance")
    )
    pre_roll: float = 0.25

    def __post_init__(self) -> None:
        if self.chunk_ms <= 0 or self.endpoint_silence < 0 or self.pre_roll < 0:
            raise ConfigError("stream.chunk_ms must be positive, endpoint_silence and pre_roll not negative")


@dataclass(frozen=True)
class ServeConfig:
    """What ``asr serve`` lets a client make it hold (:mod:`asr.serve`). Sizes in bytes, times
    in seconds; 0 turns a time limit off."""

    max_streams: int = field(
        default=16, metadata=_option("--max-streams", help="concurrent streams; more are refused (close 1013)")
    )
    max_message: int = field(
        default=64000, metadata=_option("--max-message", help="largest audio message in bytes (close 1009)")
    )
    max_config: int = field(
        default=262144, metadata=_option("--max-config", help="largest config message in bytes (close 1009)")
    )
    max_hotwords: int = field(default=200, metadata=_option(help="hotwords one config message may give"))
    max_extra_text: int = field(default=2000, metadata=_option(help="extra_text sentences one config may give"))
    workers: int = field(default=2, metadata=_option("--workers", help="recognition threads"))
    config_timeout: float = field(
        default=10.0, metadata=_option("--config-timeout", help="seconds from the upgrade to the first message")
    )
    idle_timeout: float = field(
        default=30.0, metadata=_option("--idle-timeout", help="seconds without a message, or a client not reading")
    )
    heartbeat: float = field(
        default=20.0, metadata=_option("--heartbeat", help="seconds between pings; a missed pong drops the peer")
    )
    max_backlog: float = field(
        default=4.0, metadata=_option(help="seconds of audio a stream may queue before the server stops reading it")
    )
    max_wait: float = field(
        default=0.5, metadata=_option(help="recognition queueing delay (s) past which new streams are refused")
    )
    drain_timeout: float = field(
        default=10.0, metadata=_option("--drain-timeout", help="SIGTERM: seconds to deliver the open streams' finals")
    )

    def __post_init__(self) -> None:
        if min(self.max_streams, self.max_message, self.max_config, self.workers) < 1:
            raise ConfigError("serve.max_streams, max_message, max_config and workers must be at least 1")
        if min(self.max_hotwords, self.max_extra_text) < 0:
            raise ConfigError("serve.max_hotwords and max_extra_text must not be negative")
        times = (self.config_timeout, self.idle_timeout, self.heartbeat, self.max_wait, self.drain_timeout)
        if min(times) < 0 or self.max_backlog <= 0:
            raise ConfigError("serve timeouts, heartbeat and max_wait must not be negative, max_backlog positive")


@dataclass(frozen=True)
class InferenceConfig:
    """The settings of ``asr decode``, ``tune-lm``, ``transcribe``, ``stream`` and ``serve``.

    Each command offers the sections it uses as ``--section.field`` options (some with a
    short alias, e.g. ``--alpha`` for ``--decoding.alpha``) and as sections of a YAML
    ``--config`` file, exactly as ``asr train`` does with :class:`ExperimentConfig`.
    """

    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    segment: SegmentConfig = field(default_factory=SegmentConfig)
    stream: StreamConfig = field(default_factory=StreamConfig)
    serve: ServeConfig = field(default_factory=ServeConfig)


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything ``asr train`` needs; stored whole in each checkpoint."""

    features: FeatureConfig = field(default_factory=FeatureConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    text: TextConfig = field(default_factory=TextConfig)
    spec_augment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    vocabulary: str = ALPHABET
    sentencepiece: str = ""  # text.units bpe:N / unigram:N: the SentencePiece model (base64), set by training

    @property
    def seconds_per_frame(self) -> float:
        """Duration of one output (CTC) frame of the model, in seconds."""
        return self.model.output_hop * self.features.hop_ms / 1000


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a (nested) config dataclass from ``dataclasses.asdict`` output.

    Unknown keys raise :class:`ConfigError` naming them, so a foreign config is not silently used.
    """
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ConfigError(f"unknown {cls.__name__} fields: {sorted(unknown)}")
    kwargs = {}
    for key, value in data.items():
        kind = hints[key]
        kwargs[key] = from_dict(kind, value) if dataclasses.is_dataclass(kind) else value
    return cls(**kwargs)


def given_fields(cls: type, args: argparse.Namespace) -> set[str]:
    """The ``section.field`` names that ``--config`` YAML or an option set (not defaults)."""

    def names(node: dict[str, Any], prefix: str) -> set[str]:
        out = set()
        for key, value in node.items():
            out |= names(value, f"{prefix}{key}.") if isinstance(value, dict) else {prefix + key}
        return out

    return names(_given(cls, args), "")


def _given(cls: type, args: argparse.Namespace) -> dict[str, Any]:
    """The nested dict of values from ``--config`` YAML, overridden by explicit options."""
    data: dict[str, Any] = {}
    if args.config is not None:
        try:
            data = yaml.safe_load(args.config.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{args.config}: cannot read config: {e}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{args.config}: bad config: not a mapping of sections")
    for name, _, _ in _leaf_fields(cls):
        value = getattr(args, name, None)
        if value is None:
            continue
        node = data
        *parents, leaf = name.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return data


def _leaf_fields(cls: type, prefix: str = "") -> list[tuple[str, Any, Any]]:
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if dataclasses.is_dataclass(kind):
            out += _leaf_fields(kind, f"{prefix}{f.name}.")
        else:
            out.append((prefix + f.name, kind, f))
    return out


def _parse_bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected a boolean, got {text!r}")


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, sections: tuple[str, ...] | None = None) -> None:
    """Add ``--section.field VALUE`` options (and the field's aliases) for every leaf field
    of config ``cls``, or of its ``sections`` only, plus ``--config FILE.yaml`` whose values
    the options override. Every option's default is None: the dataclass holds the default."""
    parser.add_argument("--config", type=Path, help="YAML file with config values")
    for name, kind, f in _leaf_fields(cls):
        if sections is not None and name.split(".")[0] not in sections:
            continue
        if isinstance(kind, types.UnionType | typing._UnionGenericAlias):  # type: ignore[attr-defined]
            raise TypeError(f"union-typed config field {name} is not supported")
        parse = _parse_bool if kind is bool else kind
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        flags, about = (f"--{name}", *f.metadata.get("flags", ())), f.metadata.get("help", "")
        metavar = {bool: "BOOL", int: "N", float: "X"}.get(kind, "TEXT")
        help = f"{about} (default: {default!r})".strip()
        parser.add_argument(*flags, dest=name, type=parse, default=None, metavar=metavar, help=help)


def config_from_arguments(cls: type[T], args: argparse.Namespace) -> T:
    """Build ``cls`` from defaults, then ``--config`` YAML, then explicit options."""
    data = _given(cls, args)
    try:
        return from_dict(cls, data)
    except (ValueError, TypeError) as e:
        where = f"{args.config}: " if args.config is not None else ""
        raise ConfigError(f"{where}bad config: {e}") from None
