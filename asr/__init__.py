"""asr: log-mel features → conv + (Bi)LSTM → CTC → decoding, on CPU or many GPUs.

``asr.load_model(path)`` gives a :class:`~asr.transcribe.Transcriber`:
``asr.load_model("best.pt").transcribe("a.wav").text``.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_API = {"load_model", "Transcriber", "Transcript"}


def __getattr__(name: str) -> Any:  # the API loads torch only when first used
    if name in _API:
        from asr import transcribe

        return getattr(transcribe, name)
    raise AttributeError(f"module 'asr' has no attribute {name!r}")
