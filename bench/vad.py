"""Speech detection under noise: Silero VAD against the energy detector, on long files.

Uses a trained synthetic-recipe model, its LM and tuned weights (``make demo`` makes all
three). Long files are built from test utterances (recorded UQM speech by default) joined by
random 0.6–2.0 s pauses; each is transcribed clean and mixed with noise at SNR 20, 10 and 5
dB (speech power over noise power, measured over the speech): white noise, babble (six other
utterances summed, looped) and music-like tones (random three-note chords changing every
0.3 s, with harmonics). Per detector (``--vad``; Silero with and without its busy-background
energy gate) and condition: boundary F1 (segment starts and ends against the utterances'
starts and ends, within ``--tolerance`` seconds, one to one), WER of the long-file
transcript (beam search + LM), real-time factor of the whole transcription and of the
detector alone. One thread.

    python bench/vad.py [--data data/synthetic-demo] [--test uqm/test400.jsonl] [--utts 400]
"""

from __future__ import annotations

import json
import time

import numpy as np
import torch
from results import model_parser, publish

import asr
from asr.audio import AudioError, load_audio
from asr.config import DecodingConfig, SegmentConfig
from asr.data import read_manifest
from asr.metrics import score
from asr.vad import EnergyDetector, SileroDetector, make_detector

SECTION = "## Speech detection under noise: --vad silero | energy"
RATE = 16000
PAUSE = (0.6, 2.0)
SNRS = (20, 10, 5)


def long_files(utts: list, files: int, seed: int) -> list[tuple[np.ndarray, list[tuple[float, float]], str]]:
    """``files`` long files: audio, the (start, end) seconds of each utterance, the reference."""
    rng = np.random.default_rng(seed)
    out = []
    for chunk in np.array_split(np.arange(len(utts)), files):
        parts, spans, t = [np.zeros(int(RATE * rng.uniform(*PAUSE)), np.float32)], [], 0.0
        t = len(parts[0]) / RATE
        for i in chunk:
            audio = load_audio(utts[i].audio)
            spans.append((t, t + len(audio) / RATE))
            pause = np.zeros(int(RATE * rng.uniform(*PAUSE)), np.float32)
            parts += [audio, pause]
            t += (len(audio) + len(pause)) / RATE
        out.append((np.concatenate(parts), spans, " ".join(utts[i].text for i in chunk)))
    return out


def noise_of(kind: str, n: int, others: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
    """``n`` samples of ``white``, ``babble`` or ``tones`` noise (unit power)."""
    if kind == "white":
        x = rng.normal(0, 1, n)
    elif kind == "babble":
        x = np.zeros(n)
        for voice in rng.choice(len(others), 6, replace=False):
            loop = np.tile(others[voice], n // len(others[voice]) + 1)
            shift = int(rng.integers(len(others[voice])))
            x += np.roll(loop, shift)[:n]
    else:
        step = int(0.3 * RATE)
        t = np.arange(step) / RATE
        notes = []
        for _ in range(n // step + 1):
            chord = 220 * 2 ** (rng.choice(24, 3, replace=False) / 12)
            envelope = np.exp(-3 * t)
            notes.append(sum(envelope * np.sin(2 * np.pi * h * f * t) / h for f in chord for h in (1, 2, 3)))
        x = np.concatenate(notes)[:n]
    x = np.asarray(x, np.float64)
    return (x / np.sqrt(np.mean(x**2) + 1e-12)).astype(np.float32)


def mix(audio: np.ndarray, spans: list[tuple[float, float]], noise: np.ndarray, snr_db: float) -> np.ndarray:
    speech = np.concatenate([audio[int(s * RATE) : int(e * RATE)] for s, e in spans])
    gain = np.sqrt(np.mean(speech.astype(np.float64) ** 2) / 10 ** (snr_db / 10))
    out = audio + gain * noise
    return (out / max(1.0, np.abs(out).max())).astype(np.float32)


def boundary_f1(predicted: list[float], reference: list[float], tolerance: float) -> float:
    """F1 of ``predicted`` boundary times against ``reference`` ones, each matched at most
    once within ``tolerance`` (greedy, closest first)."""
    pairs = sorted((abs(p - r), i, j) for i, p in enumerate(predicted) for j, r in enumerate(reference))
    used_p, used_r, hits = set(), set(), 0
    for d, i, j in pairs:
        if d > tolerance:
            break
        if i not in used_p and j not in used_r:
            used_p.add(i)
            used_r.add(j)
            hits += 1
    if not predicted or not reference:
        return 0.0
    precision, recall = hits / len(predicted), hits / len(reference)
    return 0.0 if hits == 0 else 2 * precision * recall / (precision + recall)


def main() -> None:
    parser = model_parser(__doc__)
    parser.add_argument("--test", default="uqm/test400.jsonl", help="manifest, relative to --data")
    parser.add_argument("--utts", type=int, default=400, help="test utterances used")
    parser.add_argument("--files", type=int, default=12, help="long files they are joined into")
    parser.add_argument("--beam", type=int, default=20)
    parser.add_argument("--tolerance", type=float, default=0.3, help="boundary match window (s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    exp = args.data / "exp" / args.model
    tuned = json.loads((exp / "decode" / "tune-lm-dev-mixed.json").read_text())
    decoding = DecodingConfig(beam_size=args.beam, alpha=float(tuned["alpha"]), beta=float(tuned["beta"]))
    utts = read_manifest(args.data / args.test)[: args.utts]
    files = long_files(utts, args.files, args.seed)
    others = [load_audio(u.audio) for u in read_manifest(args.data / "test.jsonl")[:30]]  # babble voices
    audio_s = sum(len(a) for a, _, _ in files) / RATE
    rows = []
    conditions = [("clean", None)] + [(kind, snr) for kind in ("white", "babble", "tones") for snr in SNRS]
    detectors = {  # the table's --vad column: its settings
        "energy": SegmentConfig(vad="energy"),
        "silero, no gate": SegmentConfig(vad="silero", vad_gate_db=0),
        "silero": SegmentConfig(vad="silero"),
    }
    models = {
        vad: asr.load_model(exp / "best.pt", "cpu", lm=args.data / "lm", decoding=decoding, segment=cfg)
        for vad, cfg in detectors.items()
    }
    for kind, snr in conditions:
        rng = np.random.default_rng(args.seed + 1)
        inputs = [a if snr is None else mix(a, s, noise_of(kind, len(a), others, rng), snr) for a, s, _ in files]
        for vad, model in models.items():
            hyps, f1s, elapsed, detect = [], [], 0.0, 0.0
            for audio, (_, spans, _) in zip(inputs, files, strict=True):
                start = time.perf_counter()
                try:
                    transcript = model.transcribe(audio, RATE)
                    hyps.append(transcript.text)
                    predicted = [t for seg in transcript.segments for t in (seg.start, seg.end)]
                except AudioError:  # nothing detected as speech
                    hyps.append("")
                    predicted = []
                elapsed += time.perf_counter() - start
                start = time.perf_counter()
                detector = make_detector(detectors[vad], RATE)
                detector.push(audio)
                detector.flush()
                detect += time.perf_counter() - start
                f1s.append(boundary_f1(predicted, [t for span in spans for t in span], args.tolerance))
            wer = score([r for _, _, r in files], hyps).wer
            name = "clean" if snr is None else f"{kind} {snr} dB"
            rows.append(
                [
                    name,
                    vad,
                    f"{np.mean(f1s):.2f}",
                    f"{100 * wer:.1f} %",
                    f"{elapsed / audio_s:.3f}",
                    f"{detect / audio_s:.4f}",
                ]
            )
            print(rows[-1], flush=True)
    caption = (
        f"Model `{args.model}` of {args.data}, beam {args.beam} + LM (α {decoding.alpha:.2f}, β {decoding.beta:.2f}); "
        f"{len(utts)} utterances of {args.test} in {len(files)} long files ({audio_s / 60:.1f} min, pauses "
        f"{PAUSE[0]}–{PAUSE[1]} s). Boundary F1: segment starts and ends against utterance starts and ends "
        f"within {args.tolerance} s. RTF: processing time / audio time, one thread (VAD: the detector alone). "
        "silero: with the busy-background energy gate (`vad_gate_db` 3, the default); "
        "no gate: Silero's decisions alone. Segments keep each detector's own pad past its speech "
        f"(silero {SileroDetector.pad:g} s, energy {EnergyDetector.pad:g} s)."
    )
    header = ["condition", "--vad", "boundary F1", "WER", "RTF", "VAD RTF"]
    publish(SECTION, caption, header, rows, args.out)


if __name__ == "__main__":
    main()
