"""A fake LibriSpeech for offline tests: espeak-ng speech laid out like the real archives
(``LibriSpeech/<part>/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac`` and
``<spk>-<chapter>.trans.txt``, packed as ``<part>.tar.gz``), resource-11-style LM files, their
MD5 table, and an HTTP server on 127.0.0.1 that honours ``Range`` and can cut a file short."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import subprocess
import tarfile
import tempfile
import threading
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.audio import resample
from asr.lm import build_lm

SENTENCES = [
    "the cat sat on the mat", "a dog ran in the park", "she reads a good book", "we walk to the old house",
    "he opens the red door", "the sun is warm today", "they sing a happy song", "my friend likes green tea",
    "the boat sails on the lake", "a bird sits in the tree", "you can see the moon", "the bread is fresh",
    "i write a short letter", "the child plays with a ball", "our car is very fast", "the rain falls softly",
]  # fmt: skip
# part: (speakers, chapters per speaker, utterances per chapter)
PARTS = {"dev-clean": (1, 1, 3), "dev-other": (1, 1, 3), "test-clean": (1, 1, 3), "test-other": (1, 1, 3),
         "train-clean-100": (2, 2, 4)}  # fmt: skip
VOICES = ["en-us", "en", "en-us+f3", "en+m3"]


def _speak(text: str, path: Path, voice: str) -> None:
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        subprocess.run(["espeak-ng", "-v", voice, "-s", "170", "-w", tmp.name, text], check=True)
        audio, rate = sf.read(tmp.name, dtype="float32")
    sf.write(path, resample(np.ascontiguousarray(audio), rate), 16000, format="FLAC")


def make_fake_librispeech(root: Path) -> tuple[Path, Path]:
    """Writes ``root/mirror/{11,12}/...``; returns the mirror directory and a checksum JSON."""
    mirror, build = root / "mirror", root / "build"
    (mirror / "12").mkdir(parents=True)
    (mirror / "11").mkdir(parents=True)
    k = 0
    for p, (part, (speakers, chapters, utts)) in enumerate(PARTS.items()):
        for s in range(speakers):
            spk = 100 + 10 * p + s
            for c in range(chapters):
                chap = 1000 + c
                folder = build / "LibriSpeech" / part / str(spk) / str(chap)
                folder.mkdir(parents=True)
                lines = []
                for u in range(utts):
                    uid = f"{spk}-{chap}-{u:04d}"
                    text = SENTENCES[k % len(SENTENCES)]
                    _speak(text, folder / f"{uid}.flac", VOICES[k % len(VOICES)])
                    lines.append(f"{uid} {text.upper()}")
                    k += 1
                (folder / f"{spk}-{chap}.trans.txt").write_text("\n".join(lines) + "\n")
        with tarfile.open(mirror / "12" / f"{part}.tar.gz", "w:gz") as tar:
            tar.add(build / "LibriSpeech" / part, arcname=f"LibriSpeech/{part}")
    lm = build_lm(SENTENCES, root / "lm", order=3)
    with gzip.open(mirror / "11" / "4-gram.arpa.gz", "wt") as f:  # upper case, as LibriSpeech's
        for line in (lm / "lm.arpa").read_text().splitlines():
            if "\t" in line:  # an n-gram entry
                line = line.upper().replace("<S>", "<s>").replace("</S>", "</s>")
            f.write(line + "\n")
    words = sorted({w for s in SENTENCES for w in s.split()})
    (mirror / "11" / "librispeech-vocab.txt").write_text("".join(f"{w.upper()}\n" for w in words))
    (mirror / "11" / "librispeech-lexicon.txt").write_text("".join(f"{w.upper()}\t{' '.join(w.upper())}\n"
                                                                   for w in words))  # fmt: skip
    table = {f.name: {"md5": hashlib.md5(f.read_bytes()).hexdigest(), "size": f.stat().st_size}
             for f in sorted(mirror.glob("*/*"))}  # fmt: skip
    (root / "checksums.json").write_text(json.dumps(table, indent=1))
    return mirror, root / "checksums.json"


class MirrorServer:
    """Serves ``directory`` on 127.0.0.1 with ``Range`` support. Files named in ``cut_once``
    get only their first half on the first request (the connection then closes)."""

    def __init__(self, directory: Path, cut_once: set[str] = frozenset()) -> None:
        self.requests: list[tuple[str, str | None]] = []
        server = self
        pending_cuts = set(cut_once)

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = directory / self.path.lstrip("/")
                rng = self.headers.get("Range")
                server.requests.append((self.path, rng))
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                start = int(rng.split("=")[1].split("-")[0]) if rng else 0
                if start >= len(data) and rng:
                    self.send_error(416)
                    return
                self.send_response(206 if rng else 200)
                if rng:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.send_header("Content-Length", str(len(data) - start))
                self.end_headers()
                body = data[start:]
                if path.name in pending_cuts:
                    pending_cuts.discard(path.name)
                    body = body[: len(body) // 2]
                    self.close_connection = True
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
