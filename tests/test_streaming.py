"""Streaming recognition: chunked outputs equal offline ones, partial results, endpointing,
and ``asr stream --file``."""

from __future__ import annotations

import itertools
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.checkpoint import build, load_model
from asr.config import ExperimentConfig, FeatureConfig, ModelConfig, SegmentConfig, StreamConfig
from asr.decoding import greedy_hypothesis
from asr.model import _ONEDNN_OFF
from asr.streaming import StreamingRecognizer
from asr.transcribe import log_probs_of
from tests.test_model import random_rowconv
from tests.test_transcribe import TEXTS, clips, concatenate

CHUNKS = (160, 480, 1600, 4000, 16000)  # 10 ms to 1 s


def offline(loaded, audio: np.ndarray) -> torch.Tensor:
    log_probs, n = log_probs_of(loaded, torch.from_numpy(audio)[None], torch.tensor([len(audio)]))
    return log_probs[0, : int(n)]


@pytest.mark.parametrize(
    ("model", "normalize"),
    [
        (ModelConfig(hidden_size=48, num_layers=2, bidirectional=False, lookahead=3, dropout=0.0), "global"),
        (ModelConfig(hidden_size=48, num_layers=2, bidirectional=False, lookahead=3, dropout=0.0), "online"),
        (
            ModelConfig(
                hidden_size=48,
                num_layers=2,
                bidirectional=False,
                lookahead=0,
                dropout=0.0,
                conv_layers=3,
                output_frames=2,
            ),
            "global",
        ),
    ],
    ids=["lookahead-global", "lookahead-online", "3conv-2out-global"],
)
def test_chunked_log_probs_equal_offline(model: ModelConfig, normalize: str) -> None:
    torch.manual_seed(0)
    loaded = build(ExperimentConfig(features=FeatureConfig(normalize=normalize), model=model))
    random_rowconv(loaded.model).eval()
    loaded.features.mean.uniform_(-8, 0)
    loaded.features.std.uniform_(1, 3)
    audio = concatenate(clips(), gap=0.3)
    want = offline(loaded, audio)
    for chunk in CHUNKS:
        rec = StreamingRecognizer(loaded, config=StreamConfig(endpoint_silence=0))
        for i in range(0, len(audio), chunk):
            rec.accept(audio[i : i + chunk])
        rec._flush()
        got = rec._all()
        assert got.shape == want.shape, chunk
        torch.testing.assert_close(got, want, atol=1e-4, rtol=0)


def test_greedy_streaming_equals_offline_word_for_word(streaming_checkpoint: Path) -> None:
    loaded = load_model(streaming_checkpoint)
    spf = loaded.config.seconds_per_frame
    audios = [*clips(), concatenate(clips(), gap=0.5)]  # (the model learnt one clip at a time)
    for n, audio in enumerate(audios):
        want = greedy_hypothesis(offline(loaded, audio), loaded.vocab, spf)
        if n < 4:
            assert want.text == TEXTS[n]
        for chunk in CHUNKS:
            rec = StreamingRecognizer(loaded, config=StreamConfig(endpoint_silence=0))
            for i in range(0, len(audio), chunk):
                rec.accept(audio[i : i + chunk])
            got = rec.finalize()
            assert got.text == want.text, (n, chunk)
            assert [(w.word, round(w.start, 3)) for w in got.words] == [(w.word, round(w.start, 3)) for w in want.words]


def test_partial_includes_all_audio_fed(streaming_checkpoint: Path) -> None:
    loaded = load_model(streaming_checkpoint)
    first, second = clips()[0], clips()[1]
    rec = StreamingRecognizer(loaded, config=StreamConfig(endpoint_silence=0))
    partials = []
    for i in range(0, len(first), 800):
        rec.accept(first[i : i + 800])
        partials.append(rec.partial())
        tail, _ = rec.model.step(rec._no_frames, rec.state, final=True)  # every row so far, decoded whole
        whole = torch.cat([rec._all(), tail])
        assert partials[-1] == greedy_hypothesis(whole, loaded.vocab, loaded.config.seconds_per_frame).text
    assert partials[-1] == "hello world"  # the last word too, before any finalize
    assert partials[0] != partials[-1]
    assert rec.finalize().text == "hello world"
    assert rec.partial() == ""  # a new utterance
    rec.accept(second)
    assert rec.partial() == "open the door"
    result = rec.finalize()
    assert result.text == "open the door" and result.start == pytest.approx(len(first) / 16000)


@pytest.mark.parametrize("vad", ["silero", "energy"])
def test_endpointing_splits_utterances_with_absolute_times(streaming_checkpoint: Path, vad: str) -> None:
    loaded = load_model(streaming_checkpoint)
    audio = concatenate(clips()[:3], gap=1.5)
    rec = StreamingRecognizer(loaded, config=StreamConfig(endpoint_silence=0.6), vad=SegmentConfig(vad=vad))
    finals = [r for i in range(0, len(audio), 1600) for r in rec.accept(audio[i : i + 1600])]
    finals.append(rec.finalize())
    texts = [f.text for f in finals if f.text]
    assert texts == TEXTS[:3]
    starts = [f.words[0].start for f in finals if f.words]
    assert starts[1] > len(clips()[0]) / 16000 + 1.0  # absolute, not per utterance
    assert all(a.end <= b.start + 1e-6 for a, b in itertools.pairwise(finals))


def test_bidirectional_model_is_refused(overfit_checkpoint: Path) -> None:
    with pytest.raises(ValueError, match="unidirectional"):
        StreamingRecognizer(load_model(overfit_checkpoint))


def test_cli_stream_file_three_utterances(streaming_checkpoint: Path, tmp_path: Path) -> None:
    path = tmp_path / "three.flac"
    sf.write(path, concatenate(clips()[1:], gap=1.2), 16000)
    command = [sys.executable, "-m", "asr.cli", "stream", "--model", str(streaming_checkpoint), "--file", str(path),
               "--endpoint", "0.6"]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == TEXTS[1:]
    start = time.monotonic()
    result = subprocess.run([*command, "--realtime", "--chunk-ms", "250"], capture_output=True, text=True, timeout=120)
    assert result.stdout.splitlines() == TEXTS[1:]
    assert time.monotonic() - start >= sum(len(c) for c in clips()[1:]) / 16000 + 3 * 1.2 - 0.3  # real-time pace
    bad = subprocess.run([*command[:6], "--file", str(tmp_path / "none.wav")], capture_output=True, text=True)
    assert bad.returncode == 1 and "none.wav: no such file" in bad.stderr


FAKE_SOUNDDEVICE = '''
"""A stand-in for sounddevice: plays a WAV file into the callback, then presses Ctrl-C."""
import os, signal, threading, time
import numpy as np, soundfile as sf

def query_devices():
    return "  0 fake microphone, ALSA (1 in, 0 out)"

class InputStream:
    def __init__(self, samplerate, channels, dtype, blocksize, device, callback):
        assert samplerate == 16000 and channels == 1 and dtype == "float32"
        self.blocksize, self.callback = blocksize, callback

    def _play(self):
        audio, _ = sf.read(os.environ["FAKE_MIC_WAV"], dtype="float32")
        for i in range(0, len(audio), self.blocksize):
            block = audio[i : i + self.blocksize]
            block = np.pad(block, (0, self.blocksize - len(block)))[:, None]
            self.callback(block, self.blocksize, None, None)
            time.sleep(0.002)
        time.sleep(2.5)  # the recognizer is now idle, waiting for audio that does not come
        os.kill(os.getpid(), signal.SIGINT)

    def __enter__(self):
        threading.Thread(target=self._play, daemon=True).start()
        return self

    def __exit__(self, *exc):
        return False
'''


def test_cli_stream_mic_until_ctrl_c(streaming_checkpoint: Path, tmp_path: Path) -> None:
    import os

    (tmp_path / "sounddevice.py").write_text(FAKE_SOUNDDEVICE)
    wav = tmp_path / "mic.wav"
    sf.write(wav, concatenate(clips()[:2], gap=1.2), 16000)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "FAKE_MIC_WAV": str(wav)}  # fmt: skip
    command = [sys.executable, "-m", "asr.cli", "stream", "--model", str(streaming_checkpoint), "--mic"]
    # started with SIGINT ignored, as a job started with & from a script is: Ctrl-C must still work
    ignore_ctrl_c = lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)  # noqa: E731
    result = subprocess.run([*command, "--endpoint", "0.6"], capture_output=True, text=True,
                            timeout=120, env=env, preexec_fn=ignore_ctrl_c)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == TEXTS[:2]
    listed = subprocess.run([*command, "--list-devices"], capture_output=True, text=True, timeout=60, env=env)
    assert "fake microphone" in listed.stdout


def test_beam_search_streams_through_the_incremental_decoder(streaming_checkpoint: Path) -> None:
    from asr.config import DecodingConfig
    from asr.decoding import BeamSearchDecoder
    from asr.lm import KenLM

    loaded = load_model(streaming_checkpoint)
    lm = KenLM(Path(__file__).resolve().parent.parent / "data" / "fixtures" / "tiny.arpa")
    decoder = BeamSearchDecoder(loaded.vocab, DecodingConfig(beam_size=8, alpha=0.3, beta=1.0, lexicon="free"), lm,
                                seconds_per_frame=loaded.config.seconds_per_frame)  # fmt: skip
    audio = concatenate([clips()[2], clips()[1]], gap=1.2)
    rec = StreamingRecognizer(loaded, decoder, StreamConfig(endpoint_silence=0.6))
    finals, partials = [], []
    for i in range(0, len(audio), 1600):
        finals += rec.accept(audio[i : i + 1600])
        partials.append(rec.partial())
    finals.append(rec.finalize())
    assert [f.text for f in finals if f.text] == [TEXTS[2], TEXTS[1]]
    assert "the cat" in partials  # prefixes grow while the words arrive
    assert finals[1].words[0].start > finals[0].words[-1].end


def test_onednn_stays_off_until_the_last_stream_leaves() -> None:
    assert torch.backends.mkldnn.enabled
    _ONEDNN_OFF.__enter__()
    _ONEDNN_OFF.__enter__()  # another thread's stream starts while the first is inside
    _ONEDNN_OFF.__exit__(None, None, None)
    assert not torch.backends.mkldnn.enabled  # the first leaving must not turn it back on
    _ONEDNN_OFF.__exit__(None, None, None)
    assert torch.backends.mkldnn.enabled


@pytest.fixture(scope="module")
def gru_checkpoint(tmp_path_factory: pytest.TempPathFactory, fixtures_manifest: Path) -> Path:
    """A unidirectional GRU (``--model.cell gru``) memorizing the four clips."""
    from dataclasses import replace

    from asr.train import train
    from tests.conftest import tiny_config

    cfg = tiny_config(tmp_path_factory.mktemp("gru"), fixtures_manifest, epochs=100)
    return train(
        replace(
            cfg,
            features=replace(cfg.features, normalize="global"),
            model=replace(cfg.model, cell="gru", bidirectional=False, lookahead=6),
        )
    )


def test_gru_learns_the_clips(gru_checkpoint: Path) -> None:
    loaded = load_model(gru_checkpoint)
    assert loaded.config.model.cell == "gru" and type(loaded.model.rnns[0].forward_rnn) is torch.nn.GRU
    spf = loaded.config.seconds_per_frame
    assert [greedy_hypothesis(offline(loaded, audio), loaded.vocab, spf).text for audio in clips()] == TEXTS


def test_gru_streams_as_it_decodes_offline(gru_checkpoint: Path) -> None:
    loaded = load_model(gru_checkpoint)
    for n, audio in enumerate(clips()):
        for chunk in (160, 1600):
            rec = StreamingRecognizer(loaded, config=StreamConfig(endpoint_silence=0))
            for i in range(0, len(audio), chunk):
                rec.accept(audio[i : i + chunk])
            assert rec.finalize().text == TEXTS[n], (n, chunk)
