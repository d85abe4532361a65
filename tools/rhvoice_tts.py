"""RHVoice (Debian ``non-free``) as a TTS engine, without root: its C API through ctypes.

RHVoice's own command line (``RHVoice-test``) has ``/usr/share/RHVoice`` compiled in, but its
library takes the data path as an argument, so the voices can live in a *tree*: Debian
packages unpacked with ``dpkg-deb -x`` into one folder, never installed::

    python tools/apt_fetch.py --cache DIR --out DEBS libsonic0 librhvoice-core7 librhvoice5 rhvoice-russian
    for deb in DEBS/*.deb; do dpkg-deb -x "$deb" TREE; done

The C API of ``RHVoice.h`` is ``libRHVoice.so.5`` (``librhvoice5``), a thin layer over
``libRHVoice_core.so.7``, which exports none of it. A tree holds both libraries
(:data:`LIBRARY`, :data:`DEPENDENCIES`), the languages and voices (:data:`DATA`) and the
configuration folder (:data:`CONFIG`, optional); :data:`PACKAGES` lists what a language
needs. ``libsonic0`` is listed for systems without it: the tree's copy is loaded first when
there is one.

The engine is made once per process and tree, and each voice is read on its first use
(about 0.1 s); both are kept for the process's life. Calls in one process take
turns (a lock), so a process pool, not threads, gives parallel speech; let each worker make
its engine (its first call does) rather than inherit one through ``fork``.

    from tools.rhvoice_tts import synthesize, voices
    audio, rate = synthesize("привет, как дела", "anna", "/path/to/tree")  # (samples,) float32, 24000
"""

from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LIB_DIR = Path("usr/lib/x86_64-linux-gnu")  # these relative to a tree
LIBRARY = LIB_DIR / "libRHVoice.so.5"  # the C API of RHVoice.h (librhvoice5)
DEPENDENCIES = (LIB_DIR / "libsonic.so.0", LIB_DIR / "libRHVoice_core.so.7")  # what it links, in load order
DATA = Path("usr/share/RHVoice")  # languages/<Language>, voices/<voice>
CONFIG = Path("etc/RHVoice")  # RHVoice.conf, optional
CORE_PACKAGES = ("libsonic0", "librhvoice-core7", "librhvoice5")
LANGUAGES = {  # code -> the Debian package's language, rhvoice-<language>
    "ru": "russian",
    "en": "english",
    "uk": "ukrainian",
    "pl": "polish",
    "tt": "tatar",
    "ky": "kyrgyz",
    "mk": "macedonian",
    "sq": "albanian",
    "eo": "esperanto",
    "pt-BR": "brazilian-portuguese",
}
PACKAGES = {code: (*CORE_PACKAGES, f"rhvoice-{name}") for code, name in LANGUAGES.items()}
FETCH_HINT = (
    "fetch the packages with tools/apt_fetch.py --cache DIR --out DEBS {packages}, then unpack each"
    " with dpkg-deb -x DEB {tree}"
)
SAMPLE_SCALE = 32768.0  # int16 -> [-1, 1)


class RHVoiceError(ValueError):
    """Text RHVoice did not speak; ``reason`` is a short tag for failure counts
    (``message_failed``, ``speak_failed``, ``no_output``)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class RHVoiceUnavailable(ImportError):
    """No RHVoice tree at the path given, or its library or data cannot be loaded."""


# --------------------------------------------------------------------------- the C API (RHVoice.h, 1.8.0)

SetSampleRate = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p)  # (rate, user_data)
PlaySpeech = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_void_p)  # (short*, count, ud)
ProcessMark = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
TextSpan = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p)  # (position, length, ud)
PlayAudio = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p)
Done = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class Callbacks(ctypes.Structure):
    """``RHVoice_callbacks``; unset (NULL) pointers are the optional ones we do not use."""

    _fields_ = (
        ("set_sample_rate", SetSampleRate),
        ("play_speech", PlaySpeech),
        ("process_mark", ProcessMark),
        ("word_starts", TextSpan),
        ("word_ends", TextSpan),
        ("sentence_starts", TextSpan),
        ("sentence_ends", TextSpan),
        ("play_audio", PlayAudio),
        ("done", Done),
    )


class InitParams(ctypes.Structure):
    """``RHVoice_init_params``: UTF-8 paths, a NULL-ended ``resource_paths`` array (or NULL)."""

    _fields_ = (
        ("data_path", ctypes.c_char_p),
        ("config_path", ctypes.c_char_p),
        ("resource_paths", ctypes.POINTER(ctypes.c_char_p)),
        ("callbacks", Callbacks),
        ("options", ctypes.c_uint),  # RHVoice_init_options; 1 = RHVoice_preload_voices
    )


class VoiceInfo(ctypes.Structure):
    """``RHVoice_voice_info``."""

    _fields_ = (
        ("language", ctypes.c_char_p),  # a language code, "ru"
        ("name", ctypes.c_char_p),  # as voice.info spells it, "Aleksandr"
        ("gender", ctypes.c_int),  # RHVoice_voice_gender: 0 unknown, 1 male, 2 female
        ("country", ctypes.c_char_p),
    )


class SynthParams(ctypes.Structure):
    """``RHVoice_synth_params``: absolute values in [-1, 1] (0 = the configured default),
    relative ones factors (1 = unchanged)."""

    _fields_ = (
        ("voice_profile", ctypes.c_char_p),
        ("absolute_rate", ctypes.c_double),
        ("absolute_pitch", ctypes.c_double),
        ("absolute_volume", ctypes.c_double),
        ("relative_rate", ctypes.c_double),
        ("relative_pitch", ctypes.c_double),
        ("relative_volume", ctypes.c_double),
        ("punctuation_mode", ctypes.c_int),  # RHVoice_punctuation_mode; 0 = default
        ("punctuation_list", ctypes.c_char_p),
        ("capitals_mode", ctypes.c_int),  # RHVoice_capitals_mode; 0 = default
        ("flags", ctypes.c_int),  # RHVoice_synth_flag; 0 = defaults
    )


MESSAGE_TEXT = 0  # RHVoice_message_text


def _declare(lib: ctypes.CDLL) -> None:
    """Argument and result types: pointers must not pass as C ints (64-bit truncation)."""
    lib.RHVoice_get_version.argtypes = ()
    lib.RHVoice_get_version.restype = ctypes.c_char_p
    lib.RHVoice_new_tts_engine.argtypes = (ctypes.POINTER(InitParams),)
    lib.RHVoice_new_tts_engine.restype = ctypes.c_void_p
    lib.RHVoice_get_number_of_voices.argtypes = (ctypes.c_void_p,)
    lib.RHVoice_get_number_of_voices.restype = ctypes.c_uint
    lib.RHVoice_get_voices.argtypes = (ctypes.c_void_p,)
    lib.RHVoice_get_voices.restype = ctypes.POINTER(VoiceInfo)
    lib.RHVoice_new_message.argtypes = (
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.POINTER(SynthParams),
        ctypes.c_void_p,
    )
    lib.RHVoice_new_message.restype = ctypes.c_void_p
    lib.RHVoice_speak.argtypes = (ctypes.c_void_p,)
    lib.RHVoice_speak.restype = ctypes.c_int
    lib.RHVoice_delete_message.argtypes = (ctypes.c_void_p,)
    lib.RHVoice_delete_message.restype = None


# --------------------------------------------------------------------------- the engine


@dataclass(frozen=True)
class Voice:
    """A voice of the engine: ``name`` as RHVoice spells it, ``language`` its code."""

    name: str
    language: str
    gender: str  # "male", "female" or "unknown"


@dataclass(eq=False)
class Engine:
    """A loaded RHVoice engine and the buffer its callbacks fill during :meth:`speak`."""

    tree: Path
    lib: ctypes.CDLL
    handle: int
    voices: dict[str, Voice]  # lower-cased name -> voice
    callbacks: Callbacks  # keeps the ctypes function objects alive as long as the engine
    lock: threading.Lock = field(default_factory=threading.Lock)
    chunks: list[bytes] = field(default_factory=list)
    rate: int = 0

    def _set_sample_rate(self, rate: int, _user_data: int | None) -> int:
        self.rate = rate
        return 1

    def _play_speech(self, samples: int | None, count: int, _user_data: int | None) -> int:
        if samples and count:
            self.chunks.append(ctypes.string_at(samples, count * ctypes.sizeof(ctypes.c_short)))
        return 1

    def speak(self, text: str, params: SynthParams) -> tuple[np.ndarray, int]:
        """``text`` spoken with ``params``: ``(samples,)`` int16 and the sample rate."""
        data = text.encode("utf-8")
        with self.lock:
            self.chunks, self.rate = [], 0
            message = self.lib.RHVoice_new_message(self.handle, data, len(data), MESSAGE_TEXT, params, None)
            if not message:
                raise RHVoiceError(f"{text!r}: RHVoice refused the message", "message_failed")
            try:
                spoke = self.lib.RHVoice_speak(message)
            finally:
                self.lib.RHVoice_delete_message(message)
            audio, rate = np.frombuffer(b"".join(self.chunks), dtype=np.int16), self.rate
            self.chunks = []
        if not spoke:
            raise RHVoiceError(f"{text!r}: RHVoice failed while speaking", "speak_failed")
        return audio, rate


_engines: dict[Path, Engine] = {}
_engines_lock = threading.Lock()
GENDERS = ("unknown", "male", "female")


def _unavailable(tree: Path, what: str) -> RHVoiceUnavailable:
    packages = " ".join((*CORE_PACKAGES, "rhvoice-<language>"))
    return RHVoiceUnavailable(f"{what}: {FETCH_HINT.format(packages=packages, tree=tree)}")


def _load_library(tree: Path) -> ctypes.CDLL:
    path = tree / LIBRARY
    if not path.is_file():
        raise _unavailable(tree, f"no RHVoice library {path}")
    try:
        for dependency in DEPENDENCIES:  # loaded first, so the loader finds them by soname
            if (tree / dependency).is_file():  # else the system's copy, if there is one
                ctypes.CDLL(str(tree / dependency), mode=ctypes.RTLD_GLOBAL)
        lib = ctypes.CDLL(str(path))
    except OSError as e:
        raise _unavailable(tree, f"{path}: cannot load ({e})") from None
    _declare(lib)
    return lib


def engine(tree: str | Path) -> Engine:
    """The engine of ``tree`` (a folder of unpacked packages), loaded on the first call in
    this process. Raises :class:`RHVoiceUnavailable` naming what is missing."""
    tree = Path(tree).resolve()
    with _engines_lock:
        if tree not in _engines:
            _engines[tree] = _new_engine(tree)
        return _engines[tree]


def _new_engine(tree: Path) -> Engine:
    lib = _load_library(tree)
    if not (tree / DATA / "voices").is_dir():
        raise _unavailable(tree, f"no RHVoice voices in {tree / DATA / 'voices'}")
    callbacks = Callbacks()
    eng = Engine(tree, lib, 0, {}, callbacks)
    callbacks.set_sample_rate = SetSampleRate(eng._set_sample_rate)
    callbacks.play_speech = PlaySpeech(eng._play_speech)
    params = InitParams(str(tree / DATA).encode(), str(tree / CONFIG).encode(), None, callbacks, 0)
    handle = lib.RHVoice_new_tts_engine(ctypes.byref(params))
    if not handle:
        raise _unavailable(tree, f"RHVoice could not start on {tree / DATA} (no language or voice data?)")
    eng.handle = handle
    infos = lib.RHVoice_get_voices(handle)
    for i in range(lib.RHVoice_get_number_of_voices(handle)):
        info = infos[i]
        name = info.name.decode()
        gender = GENDERS[info.gender] if 0 <= info.gender < len(GENDERS) else "unknown"
        eng.voices[name.lower()] = Voice(name, info.language.decode(), gender)
    return eng


def voices(tree: str | Path, language: str | None = None) -> list[str]:
    """The voices of ``tree``, lower-cased as Debian's folders are (``aleksandr``), sorted;
    only those of ``language`` (a code of :data:`PACKAGES`, ``ru``) when it is given."""
    found = engine(tree).voices
    return sorted(k for k, v in found.items() if language is None or v.language == language)


def version(tree: str | Path) -> str:
    """The RHVoice library's version (``1.8.0``) and the tree's voices: part of a TTS cache key."""
    eng = engine(tree)
    return f"RHVoice {eng.lib.RHVoice_get_version().decode()} voices {' '.join(sorted(eng.voices))}"


# --------------------------------------------------------------------------- speech


def synthesize(
    text: str, voice: str, tree: str | Path, rate: float = 1.0, pitch: float = 1.0
) -> tuple[np.ndarray, int]:
    """Speak ``text`` with ``voice`` (a name of :func:`voices`, any case): ``(samples,)``
    float32 in [-1, 1) and the sample rate RHVoice reports (Hz).

    ``rate`` and ``pitch`` are factors on the voice's defaults (1.0 = unchanged, 1.5 = half
    as fast again); RHVoice clips them to the range its configuration allows (rate 0.5 to 2
    by default). Raises ``ValueError`` for a voice the tree lacks, :class:`RHVoiceError`
    (``reason``) for text it does not speak, :class:`RHVoiceUnavailable` without the tree.
    """
    eng = engine(tree)
    found = eng.voices.get(voice.lower())
    if found is None:
        raise ValueError(f"no RHVoice voice {voice!r} in {eng.tree} (have {', '.join(sorted(eng.voices))})")
    params = SynthParams(
        voice_profile=found.name.encode(),
        relative_rate=rate,
        relative_pitch=pitch,
        relative_volume=1.0,
    )  # absolute values 0 (defaults), punctuation and capitals modes default, no flags
    if not text.strip():  # RHVoice refuses an empty message; no samples either way
        raise RHVoiceError(f"{text!r}: nothing to speak", "no_output")
    audio, sample_rate = eng.speak(text, params)
    if not audio.size or not sample_rate:
        raise RHVoiceError(f"{text!r}: RHVoice voice {found.name} gave no audio", "no_output")
    return audio.astype(np.float32) / SAMPLE_SCALE, sample_rate
