"""Atomic file writes: every file asr writes (checkpoints, manifests, audio, exports,
metrics, transcripts) is written beside its final name and moved there with ``os.replace``,
so a crash or a full disk never leaves a half-written file under the final name. And the
format marker asr's own file kinds (checkpoints, exports) carry, checked on reading."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path to write ``path``'s new content to: hidden, in the same folder, unique
    to this process and ending in ``path``'s suffix (soundfile and matplotlib choose the
    format by it). On a clean exit it replaces ``path``; on an exception it is removed and
    ``path`` keeps what it held."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def marker_problem(data: Any, path: str | Path, fmt: str, version: int, kind: str) -> str | None:
    """Why ``data``, read from ``path``, is not a ``{"format": fmt, "version": version, ...}``
    mapping (an asr ``kind``, e.g. "checkpoint"), or None when it is."""
    if not isinstance(data, dict) or data.get("format") != fmt:
        return f"{path}: not an asr {kind} (no '{fmt}' format marker)"
    if data.get("version") != version:
        return f"{path}: {kind} version {data.get('version')}, expected {version}"
    return None
