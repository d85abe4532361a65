"""Streaming recognition with the unidirectional model: audio in chunks of any size,
partial results as it comes, final results at endpoints.

    rec = StreamingRecognizer(load_model("exp/streaming/best.pt"))
    for chunk in chunks:                    # float32 16 kHz mono, any length
        for final in rec.accept(chunk):     # utterances closed by trailing silence
            print(final.text, final.words)
        print(rec.partial(), end="\\r")      # everything heard so far
    last = rec.finalize()

Each step computes only new work: log-mel frames from the samples not yet framed, the conv
front-end over the few frames its receptive field needs, one LSTM step per new frame with
the state carried over, the row convolution once its lookahead frames exist. The outputs
equal the offline model's on the same audio (a test checks this for chunks of 10 ms to 1 s).
A result's ``words`` carry absolute times from the start of the stream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass
from queue import Queue
from typing import Any

import numpy as np
import torch

from asr.audio import AudioError
from asr.checkpoint import LoadedModel
from asr.config import SegmentConfig
from asr.decoding import BeamSearchDecoder, DecoderStream, Word, collapse, greedy_hypothesis
from asr.model import output_lengths
from asr.segment import FRAME_SECONDS, SpeechDetector, frame_db


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
    greedy decoding. ``endpoint_silence``: seconds of non-speech after speech that close an
    utterance (0: only :meth:`finalize` does, and all audio is decoded); speech is judged
    by :class:`asr.segment.SpeechDetector` with the thresholds of ``vad``; an utterance's
    audio starts ``pre_roll`` seconds before its first speech frame.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        decoder: BeamSearchDecoder | None = None,
        endpoint_silence: float = 0.8,
        vad: SegmentConfig | None = None,
        pre_roll: float = 0.25,
    ) -> None:
        cfg = loaded.config
        if cfg.model.bidirectional:
            raise ValueError("streaming needs a unidirectional model (model.bidirectional false); this one is a BiLSTM")
        if cfg.features.normalize == "utterance":
            raise ValueError("streaming needs global (or no) feature normalization, not per-utterance CMVN")
        self.loaded, self.decoder = loaded, decoder
        self.model, self.features = loaded.model.eval(), loaded.features.eval()
        self.device = next(self.model.parameters()).device
        # fp32 on CPU: ATen's LSTM rather than oneDNN's, which re-packs the weights on every
        # call (a few frames each here); int8 (dynamically quantized) LSTMs stay as they are.
        self._native_lstm = self.device.type == "cpu" and type(self.model.lstms[0].forward_lstm) is torch.nn.LSTM
        self.rate, self.n_fft, self.hop = cfg.features.sample_rate, cfg.features.n_fft, cfg.features.hop_length
        self.strides = cfg.model.time_strides()
        self.subsampling = int(np.prod(self.strides))
        self.lead = self._lead()
        self.lookahead = self.model.rowconv.lookahead if self.model.rowconv is not None else 0
        self.spf = loaded.config.seconds_per_frame
        self.vad_cfg = vad or SegmentConfig()
        self.vad_hop = round(FRAME_SECONDS * self.rate)
        self.endpoint_frames = round(endpoint_silence / FRAME_SECONDS)
        self.pre_roll = round(pre_roll * self.rate)
        self.received = 0  # samples accepted since the stream began
        self._stream: DecoderStream | None = decoder.stream() if decoder is not None else None
        self.reset()

    # ------------------------------------------------------------------------- public API

    def reset(self) -> None:
        """Start a new utterance (the stream's clock keeps running)."""
        self.utt_start = self.received
        self.started = self.endpoint_frames <= 0  # the model has been fed this utterance
        self.preroll = np.zeros(0, np.float32)
        self.samples = np.zeros(0, np.float32)  # not yet framed
        self.feats = torch.zeros(0, self.loaded.config.features.n_mels, device=self.device)
        self.f0 = 0  # utterance feature-frame index of feats[0]
        self.nf = 0  # feature frames computed in this utterance
        self.k = 0  # conv-output frames consumed by the LSTMs
        self.states: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(self.model.lstms)
        self.pending = torch.zeros(0, self._width(), device=self.device)  # LSTM outputs awaiting lookahead
        self.log_probs: list[torch.Tensor] = []  # final (V,)-rows of this utterance, in chunks
        self.best_path: list[int] = []  # greedy: the collapsed argmax ids of those rows
        self.vad = SpeechDetector(self.vad_cfg)
        self.vad_rest = np.zeros(0, np.float32)
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
        if self.endpoint_frames <= 0:
            self.received += len(samples)
            self._feed(samples)
            return done
        while len(samples):
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
        tail, _ = self._advance(end=True)  # argmax only over the rows since the last commit
        ids = self.best_path + (self._collapse(tail) if tail is not None else [])
        return " ".join(self.loaded.vocab.decode(ids).split())

    def finalize(self) -> StreamResult:
        """Close the utterance: decode what is left and start a new one."""
        start, end = self.utt_start / self.rate, self.received / self.rate
        if not self.started:  # silence only: nothing to decode
            self.reset()
            return StreamResult("", (), start, end)
        tail, state = self._advance(end=True)
        self._commit(tail, state)
        if self._stream is not None:
            words = self._stream.finalize()[0].words
        else:
            words = greedy_hypothesis(self._all(None), self.loaded.vocab, self.spf).words
        words = tuple(Word(w.word, w.start + start, w.end + start, w.confidence) for w in words)
        result = StreamResult(" ".join(w.word for w in words), words, start, end)
        self.reset()
        return result

    # ------------------------------------------------------------------------- internals

    def _lead(self) -> int:
        """Conv outputs at the start of a window that its left zero padding makes inexact."""
        lead = 0
        while True:
            index = lead
            for stride in reversed(self.strides):
                index = stride * index - 1
                if index < 0:
                    break
            else:
                return lead
            lead += 1

    def _needs(self, k: int) -> int:
        """The last feature frame conv output ``k`` depends on."""
        for stride in reversed(self.strides):
            k = stride * k + 1
        return k

    def _width(self) -> int:
        return self.model.head.in_features

    def _scan(self, samples: np.ndarray) -> int | None:
        """Run the speech detector over ``samples``: the index just after the frame where
        speech first starts or where ``endpoint_silence`` of non-speech follows speech
        (the rest is left for the next call), or None."""
        joined = np.concatenate([self.vad_rest, samples])
        n = len(joined) // self.vad_hop
        for i, db in enumerate(frame_db(joined[: n * self.vad_hop].reshape(n, self.vad_hop))):
            onset = False
            if self.vad(db):
                onset = not self.heard_speech
                self.heard_speech, self.silence_run = True, 0
            elif self.heard_speech:
                self.silence_run += 1
            if onset or self.silence_run >= self.endpoint_frames:
                self.vad_rest = np.zeros(0, np.float32)
                return (i + 1) * self.vad_hop - (len(joined) - len(samples))
        self.vad_rest = joined[n * self.vad_hop :]
        return None

    @torch.no_grad()
    def _feed(self, samples: np.ndarray) -> None:
        self.samples = np.concatenate([self.samples, samples])
        if len(self.samples) >= self.n_fft:
            n = 1 + (len(self.samples) - self.n_fft) // self.hop
            used = (n - 1) * self.hop + self.n_fft
            wave = torch.from_numpy(self.samples[:used]).to(self.device)[None]
            feats, _ = self.features(wave, torch.tensor([used], device=self.device))
            self.feats = torch.cat([self.feats, feats[0, :n]])
            self.nf += n
            self.samples = self.samples[n * self.hop :]
        new, state = self._advance(end=False)
        self._commit(new, state)

    @torch.no_grad()
    def _advance(self, end: bool) -> tuple[torch.Tensor | None, tuple]:
        """Log-probs of the conv outputs that are final now (or, with ``end``, all the rest
        as if the stream ended here), and the state to commit after them; nothing changes."""
        cfg = self.loaded.config.model
        if end:
            stop = int(output_lengths(torch.tensor([self.nf]), cfg)) // cfg.output_frames if self.nf else 0
        else:
            stop = self.k
            while self._needs(stop) < self.nf:
                stop += 1
        if stop <= self.k and not (end and len(self.pending)):
            return None, (self.k, self.states, self.pending)
        x = torch.zeros(0, self._width(), device=self.device)
        states = self.states
        if stop > self.k:
            w = max(0, self.subsampling * (self.k - self.lead))
            window = self.feats[w - self.f0 : self.nf - self.f0]
            conv = self.model.frontend(window[None], torch.tensor([len(window)], device=self.device))[0]
            x = conv[self.k - w // self.subsampling : stop - w // self.subsampling]
            states = []
            with _ONEDNN_OFF if self._native_lstm else nullcontext():
                for lstm, norm, state in zip(self.model.lstms, self.model.norms, self.states, strict=True):
                    out, state = lstm.forward_lstm(x[None], state)
                    x = norm(out[0])
                    states.append(state)
        pending = torch.cat([self.pending, x])
        if self.model.rowconv is not None:
            if end:
                pending = torch.cat([pending, pending.new_zeros(self.lookahead, pending.shape[1])])
            ready = len(pending) - self.lookahead
            x = self.model.rowconv.conv(pending.T[None])[0].T if ready > 0 else pending[:0]
            pending = pending[max(ready, 0) :] if not end else pending[:0]
        else:
            x, pending = pending, pending[:0]
        logits = self.model.head(x).reshape(len(x) * cfg.output_frames, len(self.loaded.vocab))
        return logits.log_softmax(-1), (stop, states, pending)

    def _commit(self, log_probs: torch.Tensor | None, state: tuple) -> None:
        self.k, self.states, self.pending = state
        keep = max(0, self.subsampling * (self.k - self.lead))
        if keep > self.f0:
            self.feats, self.f0 = self.feats[keep - self.f0 :], keep
        if log_probs is not None and len(log_probs):
            if self._stream is not None:
                self._stream.feed(log_probs)
            else:
                self.best_path += self._collapse(log_probs)
            self.log_probs.append(log_probs.float().cpu())

    def _collapse(self, log_probs: torch.Tensor) -> list[int]:
        """Best-path ids of ``log_probs (T, V)``, the rows after the committed ones."""
        previous = int(self.log_probs[-1][-1].argmax()) if self.log_probs else -1
        return collapse(log_probs.argmax(-1).cpu(), self.loaded.vocab.blank, previous)

    def _all(self, tail: torch.Tensor | None) -> torch.Tensor:
        parts = [*self.log_probs, *([tail.float().cpu()] if tail is not None else [])]
        return torch.cat(parts) if parts else torch.zeros(0, len(self.loaded.vocab))


# ----------------------------------------------------------------------------- audio sources


def file_chunks(path: str, chunk: int, realtime: bool = False, sample_rate: int = 16000) -> Iterator[np.ndarray]:
    """``chunk``-sample pieces of an audio file (any format, resampled), paced at real time
    with ``realtime`` (each piece yielded when it would have finished arriving)."""
    from asr.audio import AudioStream

    begin, sent = time.monotonic(), 0
    rest = np.zeros(0, np.float32)
    with AudioStream(path, sample_rate=sample_rate, block_seconds=1.0) as stream:
        for block in stream:
            rest = np.concatenate([rest, block])
            while len(rest) >= chunk:
                piece, rest = rest[:chunk], rest[chunk:]
                sent += len(piece)
                if realtime:
                    time.sleep(max(0.0, begin + sent / sample_rate - time.monotonic()))
                yield piece
    if len(rest):
        yield rest


class _OneDnnOff:
    """oneDNN off while any thread is inside (a process-wide switch, counted so that streams
    in several threads, as in ``asr serve``, never flip it for each other); back to what it
    was when the last one leaves. Use the one instance, :data:`_ONEDNN_OFF`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inside = 0
        self.before = True

    def __enter__(self) -> None:
        with self.lock:
            if self.inside == 0:
                self.before = torch.backends.mkldnn.enabled
                torch.backends.mkldnn.enabled = False
            self.inside += 1

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.inside -= 1
            if self.inside == 0:
                torch.backends.mkldnn.enabled = self.before


_ONEDNN_OFF = _OneDnnOff()


def microphone_chunks(chunk: int, device: int | str | None = None, sample_rate: int = 16000) -> Iterator[np.ndarray]:
    """Pieces of ``chunk`` samples from an input device (PortAudio via sounddevice), mono
    float32 at ``sample_rate``, until the caller stops iterating (e.g. on Ctrl-C)."""
    sd = _sounddevice()
    queue: Queue[np.ndarray] = Queue()

    def callback(data: np.ndarray, frames: int, when: object, status: object) -> None:
        queue.put(data[:, 0].copy())

    try:
        stream = sd.InputStream(
            samplerate=sample_rate, channels=1, dtype="float32", blocksize=chunk, device=device, callback=callback
        )
    except Exception as e:  # PortAudioError, ValueError for a bad device
        raise AudioError(f"microphone {device if device is not None else '(default)'}: cannot open: {e}") from None
    with stream:
        while True:
            yield queue.get()


def input_devices() -> str:
    """The host's audio devices as sounddevice lists them (inputs marked ``>``/``*``)."""
    return str(_sounddevice().query_devices())


def _sounddevice() -> Any:
    try:
        import sounddevice
    except (ImportError, OSError) as e:  # OSError: the PortAudio library is missing
        raise AudioError(
            f"microphone: needs the sounddevice package and PortAudio ({e}): "
            "pip install -e '.[mic]' and apt-get install libportaudio2"
        ) from None
    return sounddevice
