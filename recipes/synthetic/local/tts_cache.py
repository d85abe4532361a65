"""A cache of finished TTS utterances, keyed by everything that decides their audio.

synthesize.py asks it before each TTS call: a key (:func:`cache_key`) names the engine and
its version, the voice, the text and every per-utterance draw (rate, pitch, stretch, warp,
F0), and the audio bounds an utterance must meet. A hit is the finished 16 kHz wav, linked
(or copied, across file systems) to where the run wants it, or the reason that text and
voice failed before (a festival segfault, silence, a bad rate), so a rerun neither
synthesizes nor retries it. Failures that may not happen again (a timeout on a loaded
machine, a missing program) are not stored.

Layout: ``ROOT/ab/abcdef....wav`` for an utterance, ``ROOT/ab/abcdef....fail`` (the reason)
for a failure. Writes go through a temporary name and ``os.replace``, so a killed run
leaves no half-written entry. Bump :data:`CACHE_VERSION` when synthesize.py changes what
a given key sounds like (its trimming or resampling).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

CACHE_VERSION = 1
TRANSIENT = frozenset({"timeout", "not_runnable", "not_installed", "unknown"})


def cache_key(**fields: object) -> str:
    """A hex SHA-256 of ``fields`` (JSON, keys sorted) and :data:`CACHE_VERSION`."""
    blob = json.dumps({"cache_version": CACHE_VERSION, **fields}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Hit:
    """A cached outcome: ``duration`` in seconds of the linked wav, or the failure ``reason``."""

    duration: float | None
    reason: str | None = None


def _place(src: Path, dest: Path) -> None:
    """``dest`` becomes ``src``'s content (a hard link where possible), atomically."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}")
    try:
        os.link(src, tmp)
    except OSError:  # another file system, or links not allowed
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)


class TtsCache:
    """Finished utterances and lasting failures under ``root`` (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _entry(self, key: str) -> Path:
        return self.root / key[:2] / key

    def fetch(self, key: str, dest: Path) -> Hit | None:
        """The cached outcome of ``key`` (its wav placed at ``dest``), or ``None`` on a miss."""
        entry = self._entry(key)
        wav, fail = entry.with_suffix(".wav"), entry.with_suffix(".fail")
        if wav.is_file():
            try:
                info = sf.info(str(wav))
            except RuntimeError:  # damaged entry: forget it, synthesize again
                wav.unlink(missing_ok=True)
                return None
            _place(wav, dest)
            return Hit(round(info.frames / info.samplerate, 3))
        if fail.is_file():
            return Hit(None, fail.read_text(encoding="utf-8").strip() or "unknown")
        return None

    def store(self, key: str, wav: Path | None = None, reason: str | None = None) -> bool:
        """Keep ``wav`` (a finished utterance) or a lasting failure ``reason`` under ``key``;
        whether anything was stored (transient reasons are not)."""
        entry = self._entry(key)
        if wav is not None:
            _place(wav, entry.with_suffix(".wav"))
            return True
        if reason is None or reason in TRANSIENT:
            return False
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f".{entry.name}.{uuid.uuid4().hex[:8]}")
        tmp.write_text(reason + "\n", encoding="utf-8")
        os.replace(tmp, entry.with_suffix(".fail"))
        return True
