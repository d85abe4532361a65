"""Speech detection: a speech / non-speech decision for every 10 ms frame of a stream.

Long-file segmentation (:class:`asr.segment.Segmenter`) and live endpointing
(:class:`asr.streaming.StreamingRecognizer`) see speech through one interface,
:class:`FrameDetector`: ``push(samples)`` returns the decisions of the frames it can now
decide, in order (frame ``k`` covers samples ``[k * hop, (k + 1) * hop)`` of the stream), and
``flush()`` decides the rest at the end. Two detectors:

- :class:`SileroDetector` (``--vad silero``, the default): the Silero VAD network (PyPI
  ``silero-vad``, MIT; its wheel carries the 2 MB TorchScript model) scores each 32 ms window
  (512 samples at 16 kHz, 256 at 8 kHz) with a speech probability; a window is speech above
  ``vad_threshold``, and stays speech down to ``vad_threshold - 0.15`` once it is (hysteresis);
  each frame takes the decision of the window holding its midpoint. It holds up where the
  background is not quiet, but not where the background is itself speech (babble, a crowded
  room): there it scores the pauses as speech too. So when Silero has called nearly all of the
  last 10 s speech (:class:`BusyGate`), a frame must also stand ``vad_gate_db`` above the
  background by energy (0.2 s averages against their 10th percentile over those 10 s); on
  six-voice babble at 10 and 5 dB SNR this lifts segment-boundary F1 from 0.15 to 0.6–0.7
  (bench/vad.py). Decisions lag the audio by up to one window (plus 0.1 s where the gate applies).
- :class:`EnergyDetector` (``--vad energy``): frame energy against a tracked noise floor and
  speech peak (:class:`SpeechDetector`); no model, no lag, but noise above the floor margin
  reads as speech.

Settings: :class:`asr.config.SegmentConfig`.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Protocol

import numpy as np
import torch

from asr.config import SegmentConfig

FRAME_SECONDS = 0.01  # decision frame (and hop)
NOISE_RISE_DB = 0.01  # per frame: the noise floor tracker climbs 1 dB/s when no frame is lower
PEAK_FALL_DB = 0.01  # per frame: the speech peak tracker falls 1 dB/s when no frame is higher
HYSTERESIS = 0.15  # Silero: a speech window ends below threshold - this
DETECTORS = ("silero", "energy")
GATE_SMOOTH = 10  # frames each side of a frame in the busy gate's energy average (0.21 s)
GATE_HISTORY = 1000  # frames (10 s): the busy share and the background level look back this far
GATE_PERCENTILE = 10  # background level: this percentile of the averages over GATE_HISTORY
GATE_HOLD = 10  # frames the gate stays open after the energy last stood out
BUSY_SHARE = 0.9  # the gate applies when Silero called at least this share of GATE_HISTORY speech
BUSY_MIN = 500  # frames of history (5 s) before it may apply


class VADError(ValueError):
    """A speech detector that cannot run: unknown name, unsupported rate, missing package."""


class FrameDetector(Protocol):
    #: seconds of audio a segment keeps beyond its first and last speech frame when
    #: ``segment.pad`` is -1: what suits where this detector's speech starts and ends
    pad: float

    def push(self, samples: np.ndarray) -> list[bool]:
        """Feed ``samples (n,)`` float32 mono; the decisions of the frames now decided."""
        ...

    def flush(self) -> list[bool]:
        """End of the stream: the decisions of the frames not yet decided (the last partial
        frame included)."""
        ...


def frame_db(frames: np.ndarray) -> list[float]:
    """Energy in dBFS of each row of ``frames (n, samples_per_frame)``."""
    return (10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12)).tolist()


class SpeechDetector:
    """Frame-by-frame energy decision (``detector(db) -> bool``) with the thresholds of
    :class:`~asr.config.SegmentConfig`: above ``floor_db``, ``margin_db`` over a noise floor
    that follows quieter frames at once and climbs 1 dB/s, and within ``range_db`` of a
    speech peak that follows louder frames at once and falls 1 dB/s."""

    def __init__(self, cfg: SegmentConfig) -> None:
        self.cfg = cfg
        self.noise: float | None = None
        self.peak: float | None = None

    def __call__(self, db: float) -> bool:
        c = self.cfg
        # the floor starts at floor_db (a file may start mid-word) and climbs only slowly
        self.noise = min(db, (c.floor_db if self.noise is None else self.noise) + NOISE_RISE_DB)
        self.peak = db if self.peak is None else max(db, self.peak - PEAK_FALL_DB)
        return db > max(c.floor_db, self.noise + c.margin_db, self.peak - c.range_db)


class _Framer:
    """Cuts a stream into ``hop``-sample frames, keeping the incomplete last one."""

    def __init__(self, hop: int) -> None:
        self.hop, self.rest = hop, np.zeros(0, np.float32)

    def frames(self, samples: np.ndarray, final: bool = False) -> np.ndarray:
        joined = np.concatenate([self.rest, np.asarray(samples, np.float32).reshape(-1)])
        if final and len(joined) % self.hop:
            joined = np.concatenate([joined, np.zeros(self.hop - len(joined) % self.hop, np.float32)])
        n = len(joined) // self.hop
        self.rest = joined[n * self.hop :]
        return joined[: n * self.hop].reshape(n, self.hop)


class EnergyDetector:
    """:class:`FrameDetector` by frame energy (:class:`SpeechDetector`): every complete frame
    is decided as soon as it arrives. Its speech ends on the last frame above the
    thresholds (on the test fixtures, at the sound's end); segments keep 0.15 s on each side."""

    pad = 0.15

    def __init__(self, cfg: SegmentConfig | None = None, sample_rate: int = 16000) -> None:
        self.decide = SpeechDetector(cfg or SegmentConfig())
        self.framer = _Framer(round(FRAME_SECONDS * sample_rate))

    def push(self, samples: np.ndarray) -> list[bool]:
        return [self.decide(db) for db in frame_db(self.framer.frames(samples))]

    def flush(self) -> list[bool]:
        return [self.decide(db) for db in frame_db(self.framer.frames(np.zeros(0, np.float32), final=True))]


class BusyGate:
    """Energy gate for Silero's decisions in a speech-like background.

    ``push(db, speech)`` takes frame energies (dBFS) and Silero's frame decisions, in step,
    and returns the final decisions of the frames it can decide. While Silero calls at least
    ``BUSY_SHARE`` of the last ``GATE_HISTORY`` frames speech (and has seen ``BUSY_MIN``
    frames), a speech frame stays speech only within ``GATE_HOLD`` frames of one whose energy
    average (``GATE_SMOOTH`` frames each side) stands ``margin_db`` above the background
    level, so such a frame waits for ``GATE_SMOOTH`` frames of lookahead; otherwise Silero's
    decision passes at once and unchanged: files with pauses Silero can find are not touched.
    """

    def __init__(self, margin_db: float) -> None:
        self.margin = margin_db
        self.power: list[float] = []  # linear power of the frames from self.p0 on
        self.p0 = 0
        self.speech: deque[bool] = deque()  # Silero's decisions of the frames from self.k on
        self.k = 0  # next frame to decide
        self.open: deque[bool] = deque()  # whether the gate is open at frames self.k ... self.kl - 1
        self.kl = 0  # next frame whose energy average to take
        self.levels: deque[float] = deque(maxlen=GATE_HISTORY)  # energy averages (dB)
        self.recent: deque[bool] = deque(maxlen=GATE_HISTORY)  # Silero's decisions
        self.floor = 0.0
        self.quiet_run = GATE_HOLD + 1  # frames since the energy last stood out

    @property
    def busy(self) -> bool:
        """Whether Silero heard speech nearly all the time lately (the gate applies)."""
        return len(self.recent) >= BUSY_MIN and sum(self.recent) >= BUSY_SHARE * len(self.recent)

    def _levels(self, final: bool) -> None:
        """Take the energy average of every frame whose window is complete (all when ``final``)."""
        end = self.p0 + len(self.power)
        while self.kl + GATE_SMOOTH < end or (final and self.kl < end):
            lo = max(0, self.kl - GATE_SMOOTH - self.p0)
            level = 10 * float(np.log10(np.mean(self.power[lo : self.kl + GATE_SMOOTH + 1 - self.p0]) + 1e-12))
            self.levels.append(level)
            if self.kl % 10 == 0 or len(self.levels) == 1:  # the percentile, ten times a second
                self.floor = float(np.percentile(self.levels, GATE_PERCENTILE))
            self.quiet_run = 0 if level - self.floor >= self.margin else self.quiet_run + 1
            if self.kl >= self.k:
                self.open.append(self.quiet_run <= GATE_HOLD)
            self.kl += 1
        drop = self.kl - GATE_SMOOTH - self.p0
        if drop > 0:
            del self.power[:drop]
            self.p0 += drop

    def push(self, db: list[float], speech: list[bool], final: bool = False) -> list[bool]:
        self.power += (10 ** (np.asarray(db, np.float64) / 10)).tolist()
        self.speech.extend(speech)
        self._levels(final)
        out = []
        while self.speech:
            busy = self.busy
            if busy and not self.open:  # its energy average is not complete yet
                break
            decision = self.speech.popleft()
            is_open = self.open.popleft() if self.open else True
            self.recent.append(decision)
            out.append(decision and (is_open or not busy))
            self.k += 1
        return out


def load_silero() -> Any:
    """A fresh Silero VAD TorchScript model (each holds its own recurrent state). Importing
    ``silero_vad`` sets torch's thread count to 1; this puts it back."""
    threads = torch.get_num_threads()
    try:
        from silero_vad import load_silero_vad
    except ImportError as e:
        raise VADError(f"--vad silero needs the silero-vad package (pip install silero-vad): {e}") from None
    finally:
        torch.set_num_threads(threads)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load's deprecation notice
        warnings.simplefilter("ignore", DeprecationWarning)  # silero_vad's importlib.resources.path
        return load_silero_vad()


class SileroDetector:
    """:class:`FrameDetector` from Silero VAD speech probabilities (see the module docstring).
    ``probabilities`` keeps every window's probability (for inspection and benchmarks).
    Its speech ends 30–70 ms after the last sound (32 ms windows, the lower threshold to
    end), so segments keep 0.1 s on each side: on bench/vad.py's long files 0.1 s reads
    0.4–1.8 WER points better than 0.15 s on clean audio, babble and tones at 10 dB, and
    equal in white noise and tones at 5 dB (recipes/synthetic/RESULTS.md)."""

    pad = 0.1

    def __init__(self, cfg: SegmentConfig | None = None, sample_rate: int = 16000, model: Any = None) -> None:
        if sample_rate not in (8000, 16000):
            raise VADError(f"Silero VAD runs on 8 or 16 kHz audio, not {sample_rate} Hz (use --vad energy)")
        cfg = cfg or SegmentConfig()
        self.threshold, self.rate = cfg.vad_threshold, sample_rate
        self.model = model if model is not None else load_silero()
        self.model.reset_states()
        self.framer = _Framer(512 if sample_rate == 16000 else 256)
        self.hop = round(FRAME_SECONDS * sample_rate)
        self.gate = BusyGate(cfg.vad_gate_db) if cfg.vad_gate_db > 0 else None
        self.energy_framer = _Framer(self.hop)
        self.speaking = False
        self.windows: list[bool] = []  # the decision of every window so far
        self.probabilities: list[float] = []  # and its speech probability
        self.pushed = 0  # samples
        self.frames_out = 0

    @torch.no_grad()
    def _decide(self, windows: np.ndarray) -> None:
        for window in windows:
            p = float(self.model(torch.from_numpy(window), self.rate))
            self.speaking = p >= (self.threshold - HYSTERESIS if self.speaking else self.threshold)
            self.windows.append(self.speaking)
            self.probabilities.append(p)

    def _frames(self, final: bool) -> list[bool]:
        """Decisions of the complete frames whose midpoint's window is decided; when
        ``final``, of every frame left (the last partial one included)."""
        out, size = [], self.framer.hop
        while True:
            k = self.frames_out
            if not final and (
                (k + 1) * self.hop > self.pushed or (k * self.hop + self.hop // 2) // size >= len(self.windows)
            ):
                break
            if final and (k * self.hop >= self.pushed or not self.windows):
                break
            out.append(self.windows[min((k * self.hop + self.hop // 2) // size, len(self.windows) - 1)])
            self.frames_out += 1
        return out

    def _gated(self, samples: np.ndarray, speech: list[bool], final: bool) -> list[bool]:
        if self.gate is None:
            return speech
        return self.gate.push(frame_db(self.energy_framer.frames(samples, final)), speech, final)

    def push(self, samples: np.ndarray) -> list[bool]:
        samples = np.asarray(samples, np.float32).reshape(-1)
        self.pushed += len(samples)
        self._decide(self.framer.frames(samples))
        return self._gated(samples, self._frames(final=False), final=False)

    def flush(self) -> list[bool]:
        self._decide(self.framer.frames(np.zeros(0, np.float32), final=True))
        return self._gated(np.zeros(0, np.float32), self._frames(final=True), final=True)


def make_detector(cfg: SegmentConfig | None = None, sample_rate: int = 16000) -> FrameDetector:
    """The detector ``cfg.vad`` names, for a stream at ``sample_rate``."""
    cfg = cfg or SegmentConfig()
    if cfg.vad == "silero":
        return SileroDetector(cfg, sample_rate)
    if cfg.vad == "energy":
        return EnergyDetector(cfg, sample_rate)
    raise VADError(f"unknown speech detector {cfg.vad!r} (choose from {', '.join(DETECTORS)})")
