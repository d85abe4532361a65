"""Streaming recognition with the unidirectional model: audio in chunks of any size,
partial results as it comes, final results at endpoints.

    rec = StreamingRecognizer(load_model("exp/streaming/best.pt"))
    for chunk in chunks:                    # float32 16 kHz mono, any length
        for final in rec.accept(chunk):     # utterances closed by trailing silence
            print(final.text, final.words)
        print(rec.partial(), end="\\r")      # everything heard so far
    last = rec.finalize()

Each chunk computes only new work: log-mel frames from the samples not yet framed, then the
model's own :meth:`~asr.model.AcousticModel.step` over them (conv window, recurrent states
and row-conv lookahead carried in its state). The outputs equal the offline model's on the
same audio (a test checks this for chunks of 10 ms to 1 s).
A result's ``words`` carry absolute times from the start of the stream.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import torch

from asr.checkpoint import LoadedModel
from asr.config import SegmentConfig, StreamConfig
from asr.decoding import BeamSearchDecoder, DecoderStream, Word, collapse, greedy_hypothesis
from asr.text import language
from asr.vad import FRAME_SECONDS, make_detector


@dataclass(frozen=True)
class StreamResult:
    """A finished utterance: its text, words (absolute seconds) and span."""

    text: str
    words: tuple[Word, ...]
    start: float
    end: float


class StreamingRecognizer:
    """Incremental recognizer over one audio stream (see the module docstring).

    ``decoder``: beam search (with LM, hotwords) through its incremental API, or None for
    greedy decoding. ``config``: endpointing (``endpoint_silence`` 0: only :meth:`finalize`
    closes an utterance, and all audio is decoded) and pre-roll; speech is judged by the
    detector ``vad.vad`` names (:mod:`asr.vad`), one for the whole stream: its decisions
    can lag the audio by a window (32 ms for Silero), and an endpoint or onset found late
    takes effect where the audio has got to.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        decoder: BeamSearchDecoder | None = None,
        config: StreamConfig | None = None,
        vad: SegmentConfig | None = None,
    ) -> None:
        cfg = loaded.config
        self.model, self.features = loaded.model.eval(), loaded.features.eval()
        self.model.initial_state()  # refuses a bidirectional model
        if cfg.features.normalize == "utterance":
            raise ValueError("streaming needs online, global or no feature normalization, not per-utterance CMVN")
        self.loaded, self.decoder = loaded, decoder
        self.device = next(self.model.parameters()).device
        self._no_frames = torch.zeros(0, cfg.features.n_mels, device=self.device)
        self.rate, self.n_fft, self.hop = cfg.features.sample_rate, cfg.features.n_fft, cfg.features.hop_length
        self.spf = loaded.config.seconds_per_frame
        self.vad_cfg = vad or SegmentConfig()
        self.vad_hop = round(FRAME_SECONDS * self.rate)
        config = config or StreamConfig()
        self.endpoint_frames = round(config.endpoint_silence / FRAME_SECONDS)
        self.pre_roll = round(config.pre_roll * self.rate)
        self.received = 0  # samples accepted since the stream began
        self._stream: DecoderStream | None = decoder.stream() if decoder is not None else None
        self.vad = make_detector(self.vad_cfg, self.rate) if self.endpoint_frames > 0 else None
        self.decisions: deque[bool] = deque()  # detector decisions not yet used
        self.decided = 0  # frames of the stream whose decision has been used
        self.reset()

    # ------------------------------------------------------------------------- public API

    def reset(self) -> None:
        """Start a new utterance (the stream's clock keeps running)."""
        self.utt_start = self.received
        self.started = self.endpoint_frames <= 0  # the model has been fed this utterance
        self.preroll = np.zeros(0, np.float32)
        self.samples = np.zeros(0, np.float32)  # not yet framed
        self.state = self.model.initial_state()
        self.cmvn = self.features.initial_cmvn()  # online CMVN starts again with each utterance
        self.log_probs: list[torch.Tensor] = []  # final (V,)-rows of this utterance, in chunks
        self.best_path: list[int] = []  # greedy: the collapsed argmax ids of those rows
        self.heard_speech, self.silence_run = False, 0
        if self._stream is not None:
            self._stream.reset()

    def accept(self, samples: np.ndarray) -> list[StreamResult]:
        """Feed ``samples (n,)`` (float32, 16 kHz mono); returns the utterances that
        endpointing closed inside them (usually none).

        With endpointing on, audio before an utterance's first speech is not decoded: the
        last ``pre_roll`` seconds of it are fed when speech starts."""
        samples = np.asarray(samples, np.float32).reshape(-1)
        done: list[StreamResult] = []
        if self.vad is None:
            self.received += len(samples)
            self._feed(samples)
            return done
        self.decisions.extend(self.vad.push(samples))
        while len(samples) or self.decisions:
            cut = self._scan(samples)
            head, samples = (samples, samples[:0]) if cut is None else (samples[:cut], samples[cut:])
            self.received += len(head)
            if self.started:
                self._feed(head)
                if self.silence_run >= self.endpoint_frames:
                    done.append(self.finalize())
                continue
            self.preroll = np.concatenate([self.preroll, head])[-self.pre_roll :]
            if self.heard_speech:  # speech began in head
                self.started, self.utt_start = True, self.received - len(self.preroll)
                self._feed(self.preroll)
                self.preroll = self.preroll[:0]
        return done

    def partial(self) -> str:
        """The current best text of the open utterance, all audio fed so far included
        (greedy: the frames still waiting for context are decoded as if the stream ended
        here; beam search: the frames decoded so far)."""
        if not self.started:
            return ""
        if self._stream is not None:
            return self._stream.best()
        tail, _ = self.model.step(self._no_frames, self.state, final=True)  # the state stays
        ids = self.best_path + self._collapse(tail)
        return " ".join(self.loaded.vocab.decode(ids).split())

    def finalize(self) -> StreamResult:
        """Close the utterance: decode what is left and start a new one."""
        start, end = self.utt_start / self.rate, self.received / self.rate
        if not self.started:  # silence only: nothing to decode
            self.reset()
            return StreamResult("", (), start, end)
        self._flush()
        if self._stream is not None:
            words = self._stream.finalize()[0].words
        else:
            words = greedy_hypothesis(self._all(), self.loaded.vocab, self.spf).words
        words = tuple(Word(w.word, w.start + start, w.end + start, w.confidence) for w in words)
        result = StreamResult(
            language(self.loaded.config.text.language).separator.join(w.word for w in words), words, start, end
        )
        self.reset()
        return result

    # ------------------------------------------------------------------------- internals

    def _scan(self, samples: np.ndarray) -> int | None:
        """Use the detector's pending decisions over ``samples`` (which start at sample
        ``received`` of the stream): the index just after the frame where speech first
        starts or where ``endpoint_silence`` of non-speech follows speech (0 when that
        frame's audio has already been taken), or None when no decision left does either."""
        while self.decisions:
            speech = self.decisions.popleft()
            self.decided += 1
            onset = False
            if speech:
                onset = not self.heard_speech
                self.heard_speech, self.silence_run = True, 0
            elif self.heard_speech:
                self.silence_run += 1
            if onset or self.silence_run >= self.endpoint_frames:
                return min(len(samples), max(0, self.decided * self.vad_hop - self.received))
        return None

    @torch.no_grad()
    def _feed(self, samples: np.ndarray) -> None:
        self.samples = np.concatenate([self.samples, samples])
        if len(self.samples) < self.n_fft:
            return
        n = 1 + (len(self.samples) - self.n_fft) // self.hop
        used = (n - 1) * self.hop + self.n_fft
        wave = torch.from_numpy(self.samples[:used]).to(self.device)[None]
        raw, _ = self.features.logmel(wave, torch.tensor([used], device=self.device))
        feats, self.cmvn = self.features.normalize_chunk(raw[0, :n], self.cmvn)
        self.samples = self.samples[n * self.hop :]
        log_probs, self.state = self.model.step(feats, self.state)
        self._commit(log_probs)

    def _flush(self) -> None:
        """Decode the frames still waiting for context, as the end of the utterance."""
        log_probs, self.state = self.model.step(self._no_frames, self.state, final=True)
        self._commit(log_probs)

    def _commit(self, log_probs: torch.Tensor) -> None:
        if len(log_probs):
            if self._stream is not None:
                self._stream.feed(log_probs)
            else:
                self.best_path += self._collapse(log_probs)
            self.log_probs.append(log_probs.float().cpu())

    def _collapse(self, log_probs: torch.Tensor) -> list[int]:
        """Best-path ids of ``log_probs (T, V)``, the rows after the committed ones."""
        previous = int(self.log_probs[-1][-1].argmax()) if self.log_probs else -1
        return collapse(log_probs.argmax(-1).cpu(), self.loaded.vocab.blank, previous)

    def _all(self) -> torch.Tensor:
        """The committed log-probs of the open utterance ``(T, V)``."""
        return torch.cat(self.log_probs) if self.log_probs else torch.zeros(0, len(self.loaded.vocab))
