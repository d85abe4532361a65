"""Streaming recognition cost: real-time factor on one thread, endpoint latency, partial
update interval and memory per stream, for the recipe's streaming model and a ~45 M-parameter
unidirectional configuration (5 x 1088 LSTM, lookahead 3; random weights: speed only).

Test utterances of the synthetic recipe (``make demo``) are streamed in 100 ms chunks, each
followed by 1 s of silence, with endpointing after 0.8 s of trailing silence, greedy
decoding. Latency is the time from the end of speech plus the endpoint silence to the final
result: the audio still to arrive in the chunk that closes the utterance, plus the compute
time of that ``accept`` call. Memory per stream: the bytes a recognizer holds after 10 s of
one utterance (buffers, LSTM states, the utterance's log-probs); the model is shared. Each
model runs in fp32 and with dynamic int8 LSTMs and linear layers (``asr stream --int8``).

    python bench/streaming.py [--data data/synthetic-demo] [--utterances 40]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from results import RESULTS, write_section

from asr.audio import load_audio
from asr.checkpoint import LoadedModel, build, load_model
from asr.config import ExperimentConfig, FeatureConfig, ModelConfig, StreamConfig
from asr.data import read_manifest
from asr.export import quantize_int8
from asr.streaming import StreamingRecognizer

SECTION = "## Streaming: real-time factor, latency, memory"
CHUNK_S = 0.1
ENDPOINT_S = 0.8
GAP_S = 1.0
BIG = ModelConfig(hidden_size=1088, num_layers=5, bidirectional=False, lookahead=3, dropout=0.0)


def models(data: Path) -> dict[str, tuple[LoadedModel, int]]:
    """Each model and its fp32 parameter count (quantized modules hide theirs in packed weights)."""
    torch.manual_seed(0)
    big = build(ExperimentConfig(features=FeatureConfig(normalize="global"), model=BIG))
    big.model.eval()
    small = load_model(data / "exp" / "streaming" / "best.pt")
    out = {}
    for name, loaded in (("recipe streaming model", small), ("5 x 1088 LSTM", big)):
        params = loaded.model.num_parameters()
        out[f"{name}, fp32"] = (loaded, params)
        out[f"{name}, int8"] = (quantize_int8(loaded), params)
    return out


def measure(loaded: LoadedModel, audios: list[np.ndarray]) -> dict[str, float]:
    """Stream each utterance + silence; RTF, latency and partial-update statistics."""
    chunk, compute, audio_s = round(CHUNK_S * 16000), 0.0, 0.0
    latencies, intervals = [], []
    for audio in audios:
        rec = StreamingRecognizer(loaded, config=StreamConfig(endpoint_silence=ENDPOINT_S))
        stream = np.concatenate([audio, np.zeros(round(GAP_S * 16000), np.float32)])
        speech_end = len(audio) / 16000  # the recipe trims utterances to 0.15 s of silence
        last_change, last_text, got_final = 0.0, "", False
        for i in range(0, len(stream), chunk):
            start = time.perf_counter()
            finals = rec.accept(stream[i : i + chunk])
            text = rec.partial()
            spent = time.perf_counter() - start
            compute += spent
            now = (i + chunk) / 16000
            if finals and not got_final:
                latencies.append(now - (speech_end - 0.15 + ENDPOINT_S) + spent)
                got_final = True
            if text != last_text:
                intervals.append(now - last_change)
                last_change, last_text = now, text
        audio_s += len(stream) / 16000
    return {
        "rtf": compute / audio_s,
        "latency_ms": 1000 * float(np.median(latencies)) if latencies else float("nan"),
        "latency_max_ms": 1000 * float(np.max(latencies)) if latencies else float("nan"),
        "finals": len(latencies) / len(audios),
        "partial_ms": 1000 * float(np.median(intervals)) if intervals else float("nan"),
    }


def state_bytes(rec: StreamingRecognizer) -> int:
    """Bytes a recognizer holds for its stream: the model's stream state (feature window,
    recurrent states, lookahead frames), the utterance's log-probs (for word times), the
    sample buffers and the VAD remainder."""
    log_probs = sum(t.numel() * t.element_size() for t in rec.log_probs)
    arrays = [rec.samples, rec.preroll, rec.vad_rest]
    return rec.state.nbytes + log_probs + sum(a.nbytes for a in arrays)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/synthetic-demo"))
    parser.add_argument("--utterances", type=int, default=40)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    torch.set_num_threads(1)
    utts = read_manifest(args.data / "test.jsonl")[: args.utterances]
    audios = [load_audio(u.audio) for u in utts]
    rows = []
    for name, (loaded, count) in models(args.data).items():
        params = count / 1e6
        m = measure(loaded, audios)
        rec = StreamingRecognizer(loaded, config=StreamConfig(endpoint_silence=0))
        for i in range(0, 10 * 16000, 1600):
            rec.accept(np.random.default_rng(i).standard_normal(1600).astype(np.float32) * 0.1)
        mem = {"per_stream_kb": state_bytes(rec) / 1024}
        print(f"{name} ({params:.1f} M): {m} memory {mem}", flush=True)
        rows.append(
            f"| {name} | {params:.1f} M | {m['rtf']:.3f} | {m['latency_ms']:.0f} ms (max {m['latency_max_ms']:.0f}) "
            f"| {m['partial_ms']:.0f} ms | {mem['per_stream_kb']:.0f} KB |"
        )
    table = "\n".join(
        [
            f"{len(audios)} test utterances of {args.data}, each + {GAP_S:g} s of silence, fed in "
            f"{1000 * CHUNK_S:.0f} ms chunks on one thread; endpoint after {ENDPOINT_S:g} s of silence; greedy; "
            "partial() after every chunk.",
            "Latency: from end of speech + endpoint silence to the final result (median, max). Partial interval: "
            "median audio time between changes of the partial text. Memory: state held per stream after 10 s "
            "of one utterance (the model is shared). The 5 x 1088 model has random weights (speed and memory only).",
            "",
            "| model | parameters | real-time factor | final-result latency | partial interval | memory per stream |",
            "|---|---|---|---|---|---|",
            *rows,
        ]
    )
    print("\n" + table)
    write_section(SECTION, table, args.out)
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
