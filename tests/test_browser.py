"""The ``asr serve`` page in a real headless Chromium, a WAV file as its microphone.

Needs Debian's ``chromium`` (``make test`` installs it); skipped where it is missing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.test_serve import start_server
from tests.test_transcribe import TEXTS, clips
from tools.chromium import CHROMIUM, Chromium

STATE = """JSON.stringify({
  level: document.getElementById('level').value,
  partial: document.getElementById('partial').textContent,
  partialColor: getComputedStyle(document.getElementById('partial')).color,
  status: document.getElementById('status').textContent,
  sessions: Array.from(document.querySelectorAll('.session')).map(s => ({
    title: s.querySelector('h2').textContent,
    lines: Array.from(s.querySelectorAll('.final')).map(p => ({
      text: p.querySelector('.text').textContent, time: p.querySelector('.time').textContent,
      start: +p.dataset.start, end: +p.dataset.end,
      words: Array.from(p.querySelectorAll('.word')).map(w => [w.textContent, +w.dataset.confidence,
                                                                getComputedStyle(w).backgroundColor])}))}))})"""


def state(page: Chromium) -> dict:
    return json.loads(page.evaluate(STATE))


def wait(page: Chromium, until, timeout: float = 60) -> list[dict]:
    seen = [json.loads(v) for v in page.poll(STATE, lambda v: until(json.loads(v)), timeout)]
    assert until(seen[-1]), seen[-1]
    return seen


def alpha(color: str) -> float:
    """The alpha of a computed ``rgba(r, g, b, a)`` (1 for ``rgb(...)``)."""
    parts = color[color.index("(") + 1 : -1].split(",")
    return float(parts[3]) if len(parts) == 4 else 1.0


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium package")
def test_page_microphone_file_copy_and_download(streaming_checkpoint: Path, tmp_path: Path) -> None:
    """On a fake microphone: the level meter moves, partials show in grey, finals arrive with
    their times and confidence-shaded words; the model and LM are named; an uploaded file
    gives the same lines with the file's times, a file that is not audio a clear error; Copy
    puts the transcript on the clipboard and the downloads hold it as text, SRT and JSON."""
    a, b = clips()[1], clips()[2]
    spans = [(1.0, 1.0 + len(a) / 16000), (2.0 + len(a) / 16000, 2.0 + (len(a) + len(b)) / 16000)]
    wav = tmp_path / "mic.wav"
    silence = np.zeros(16000, np.float32)
    sf.write(wav, np.concatenate([silence, a, silence, b, silence, silence]), 16000, "PCM_16")
    (tmp_path / "notes.wav").write_text("these are notes, not audio\n")
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    server, url = start_server(streaming_checkpoint)
    try:
        with Chromium(f"{url}/?autostart", tmp_path / "profile", microphone=wav, downloads=downloads) as page:
            seen = wait(page, lambda s: s["sessions"] and len(s["sessions"][0]["lines"]) == 2)
            info = page.evaluate("document.getElementById('info').textContent")
            assert streaming_checkpoint.name in info and "LM none" in info and "greedy" in info, info

            # the level meter follows the input: near the bottom in silence, up in speech
            levels = [s["level"] for s in seen]
            assert max(levels) > 0.5 and min(levels) < 0.05, levels
            # partial hypotheses appeared, in grey
            partials = [s["partial"] for s in seen if s["partial"]]
            assert partials and any(p in TEXTS[1] or p in TEXTS[2] for p in partials), partials
            assert seen[-1]["partialColor"] == "rgb(136, 136, 136)"

            mic = seen[-1]["sessions"][0]
            assert mic["title"].startswith("Microphone")
            assert [line["text"] for line in mic["lines"]] == [TEXTS[1], TEXTS[2]]
            # a line's time is its words' span; the toy streaming model spikes a word's last
            # character up to ~0.7 s late (after its lookahead and some silence)
            for line, (start, end) in zip(mic["lines"], spans, strict=True):
                assert abs(line["start"] - start) < 0.4 and -0.4 < line["end"] - end < 0.9, (line, start, end)
                for word, confidence, background in line["words"]:  # shading: alpha 0.85 * (1 - confidence)
                    assert 0 < confidence <= 1 and abs(alpha(background) - 0.85 * (1 - confidence)) < 0.01, word
            assert mic["lines"][0]["time"] == f"0:{mic['lines'][0]['start']:04.1f}–0:{mic['lines'][0]['end']:04.1f}"

            page.evaluate("document.getElementById('stop').click()")
            wait(page, lambda s: s["status"] == "stopped", 10)

            # the same audio as an uploaded file: the same lines, at the file's own times
            page.set_files("#file", [wav])
            uploaded = wait(page, lambda s: s["status"].startswith("transcribed"), 60)[-1]["sessions"][1]
            assert uploaded["title"].startswith("File mic.wav")
            assert [line["text"] for line in uploaded["lines"]] == [TEXTS[1], TEXTS[2]]
            for line, (start, end) in zip(uploaded["lines"], spans, strict=True):
                assert abs(line["start"] - start) < 0.25 and -0.25 < line["end"] - end < 0.9, (line, start, end)

            page.set_files("#file", [tmp_path / "notes.wav"])
            wait(page, lambda s: s["status"].startswith("error"), 10)
            status = page.evaluate("document.getElementById('status').textContent")
            assert "cannot decode notes.wav" in status, status
            assert page.evaluate("document.getElementById('status').className") == "error"

            page.evaluate("document.getElementById('copy').click()")
            wait(page, lambda s: s["status"].startswith("copied"), 10)
            expected = "\n".join([TEXTS[1], TEXTS[2]] * 2) + "\n"
            assert page.evaluate("navigator.clipboard.readText()", await_promise=True) == expected

            for name in ("txt", "srt", "json"):
                page.evaluate(f"document.getElementById('download-{name}').click()")
            deadline = time.monotonic() + 10
            while len(list(downloads.glob("transcript.*"))) < 3 and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        server.terminate()
        server.wait(10)
    assert (downloads / "transcript.txt").read_text() == expected
    cues = (downloads / "transcript.srt").read_text().strip().split("\n\n")
    assert len(cues) == 4 and cues[0].split("\n")[0] == "1" and cues[0].split("\n")[2] == TEXTS[1]
    assert cues[0].split("\n")[1].startswith("00:00:0") and " --> 00:00:0" in cues[0]
    saved = json.loads((downloads / "transcript.json").read_text())
    assert saved["server"]["model"] == str(streaming_checkpoint) and saved["server"]["lm"] is None
    assert [s["source"] for s in saved["sessions"]] == ["Microphone", "File mic.wav"]
    words = saved["sessions"][1]["lines"][0]["words"]
    assert " ".join(w[0] for w in words) == TEXTS[1] and all(w[1] < w[2] for w in words)
