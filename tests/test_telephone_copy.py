"""tools/telephone_copy.py: a manifest's audio at 8 kHz, every key kept, nothing above 4 kHz."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.audio import load_audio

ROOT = Path(__file__).resolve().parents[1]


def test_copies_are_narrowband_and_keep_every_key(tmp_path: Path, fixtures_manifest: Path) -> None:
    rows = [json.loads(line) for line in fixtures_manifest.read_text().splitlines()]
    manifest = tmp_path / "in" / "test.jsonl"
    manifest.parent.mkdir()
    manifest.write_text("".join(json.dumps({**r, "audio": str(fixtures_manifest.parent / r["audio"]),
                                            "speaker": "s1"}) + "\n" for r in rows))  # fmt: skip
    out = tmp_path / "8k"
    done = subprocess.run([sys.executable, str(ROOT / "tools/telephone_copy.py"), str(manifest), "--out-dir", str(out)],
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    copied = [json.loads(line) for line in (out / "test.jsonl").read_text().splitlines()]
    assert [(r["id"], r["text"], r["speaker"], r["duration"]) for r in copied] == [
        (r["id"], r["text"], "s1", r["duration"]) for r in rows
    ]
    for r in copied:
        info = sf.info(out / r["audio"])
        assert info.samplerate == 8000 and abs(info.duration - r["duration"]) < 0.01
    back = load_audio(out / copied[0]["audio"], 16000)  # as a decoder reads it
    spectrum = np.abs(np.fft.rfft(back))
    freqs = np.fft.rfftfreq(len(back), 1 / 16000)
    assert spectrum[freqs > 4100].sum() < 0.01 * spectrum[freqs < 3900].sum()

    missing = tmp_path / "missing.jsonl"
    missing.write_text(json.dumps({**rows[0], "audio": "nowhere.wav"}) + "\n")
    done = subprocess.run([sys.executable, str(ROOT / "tools/telephone_copy.py"), str(missing), "--out-dir",
                           str(tmp_path / "8k-missing")], capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 1 and "nowhere.wav" in done.stderr and "Traceback" not in done.stderr
