"""Copy a manifest's audio at a telephone sample rate, to score a model on narrowband speech.

Usage::

    python tools/telephone_copy.py test.jsonl --out-dir DIR [--rate 8000]

Each utterance is read, resampled to ``--rate`` (band-limited: nothing above rate / 2 is
left) and written as 16-bit WAV at that rate under ``DIR/wav/``; ``DIR/<manifest name>`` is
the same manifest (every key kept) pointing at the copies. Decoding it resamples back to
the model's rate, as a telephone call would reach the recognizer. Files already there are
kept, so a rerun only writes what is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from asr.audio import AudioError, load_audio, write_audio
from asr.files import write_text


def telephone_copy(manifest: Path, out_dir: Path, rate: int = 8000) -> Path:
    """Write ``out_dir/manifest.name`` and its audio at ``rate``; returns the new manifest."""
    rows = [json.loads(line) for line in manifest.read_text(encoding="utf-8").splitlines() if line.strip()]
    (out_dir / "wav").mkdir(parents=True, exist_ok=True)
    out_rows = []
    for row in rows:
        source = Path(row["audio"])
        source = source if source.is_absolute() else manifest.parent / source
        target = out_dir / "wav" / f"{row['id']}.wav"
        if not target.is_file():
            write_audio(target, load_audio(source, rate), rate)
        out_rows.append({**row, "audio": str(target.relative_to(out_dir))})
    out = out_dir / manifest.name
    return write_text(out, "".join(json.dumps(r) + "\n" for r in out_rows))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("manifest", type=Path)
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--rate", type=int, default=8000, help="sample rate of the copies (default 8000)")
    args = parser.parse_args()
    try:
        out = telephone_copy(args.manifest, args.out_dir, args.rate)
    except (AudioError, OSError, KeyError, json.JSONDecodeError) as e:
        print(f"error: {args.manifest}: {e}", file=sys.stderr)
        return 1
    print(f"wrote {out} ({args.rate} Hz copies)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
