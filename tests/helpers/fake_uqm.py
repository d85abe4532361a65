"""A tiny fake of Debian's uqm-voice and uqm-content packages, built from the fixture clips.

Three characters: ``arilou`` (train; its text beside the audio, in the voice pack),
``spathi`` (test) and ``supox`` (dev), whose texts are in the content pack. Each clip is two
or three fixture clips joined by :data:`GAP` seconds of silence, stored as 11.025 kHz Ogg
Vorbis like the real ones, with ``.ts`` timings that cut it between the fixture clips.
Also a player's line (no clip), a block whose timing count does not fit its lines, and
markup (``*time*``, ``-<...>-``).
"""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.audio import load_audio

FIXTURES = Path(__file__).resolve().parents[2] / "data" / "fixtures"
RATE = 11025
GAP = 0.4
CLIPS = {  # speaker: {block key: fixture clips joined in it}
    "arilou": {"HELLO_WORLD": ["utt0", "utt1"], "CAT": ["utt2", "utt3", "utt0"], "BAD_TIMING": ["utt1", "utt2"]},
    "spathi": {"DOOR": ["utt1", "utt3"]},
    "supox": {"MORNING": ["utt3", "utt2"]},
}
TEXTS = {  # as a dialogue file writes them: capitals, punctuation, markup
    "utt0": "Hello, *World*!",
    "utt1": "-<OPEN THE DOOR!>-",
    "utt2": "The cat... sat.",
    "utt3": "Good Morning",
}


def _clip(names: list[str]) -> tuple[np.ndarray, list[int]]:
    """The joined clip at :data:`RATE` and each part's duration in ms (silence after it included)."""
    gap = np.zeros(round(GAP * RATE), np.float32)
    parts, ms = [], []
    for name in names:
        audio = load_audio(FIXTURES / f"{name}.wav", RATE)
        parts += [audio, gap]
        ms.append(round(1000 * (len(audio) + len(gap)) / RATE))
    return np.concatenate(parts[:-1]), ms


def _deb(tree: Path, package: str, out: Path) -> Path:
    (tree / "DEBIAN").mkdir(parents=True, exist_ok=True)
    (tree / "DEBIAN" / "control").write_text(
        f"Package: {package}\nVersion: 0.8.0+deb-1\nArchitecture: all\nMaintainer: test <t@example.org>\n"
        f"Description: fake {package}\n"
    )
    deb = out / f"{package}_0.8.0+deb-1_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(tree), str(deb)], check=True,
                   capture_output=True)  # fmt: skip
    return deb


def make_fake_uqm(
    work: Path, downloads: Path, ts_shift_ms: int = 0, wrong: str | None = None
) -> dict[str, list[tuple[str, str]]]:
    """Write ``uqm-voice_*.deb`` and ``uqm-content_*.deb`` into ``downloads``; returns, per
    speaker, the ``(utterance id, fixture clip)`` pairs the recipe must cut. ``ts_shift_ms``
    moves every ``.ts`` cut point that much later (timings that are off); ``wrong`` names a
    fixture clip whose line gets another clip's text (a transcript that does not match)."""
    voice, content = work / "voice", work / "content"
    expected: dict[str, list[tuple[str, str]]] = {}
    rmp = []
    for speaker, blocks in CLIPS.items():
        audio_dir = voice / "3dovoice" / speaker
        audio_dir.mkdir(parents=True)
        text, timings = [], []
        for n, (key, names) in enumerate(blocks.items()):
            clip = f"{speaker}-{n:03d}.ogg"
            audio, ms = _clip(names)
            sf.write(audio_dir / clip, audio, RATE, format="OGG", subtype="VORBIS")
            not_it = TEXTS["utt3" if wrong == "utt2" else "utt2"]
            spoken = [not_it if name == wrong else TEXTS[name] for name in names]
            text += [f"#({key})\t{clip}", *spoken, ""]
            text += [f"#(player_says_{n})", "The player's line has no audio.", ""]
            durations = [d + (ts_shift_ms if i == 0 else 0) for i, d in enumerate(ms)]
            durations = durations[:-1] if key != "BAD_TIMING" else durations
            timings += [f"#({key}) {','.join(map(str, durations))}", f"#(player_says_{n}) "]
            if key != "BAD_TIMING":
                expected.setdefault(speaker, []).extend(
                    (f"uqm-{speaker}-{key.lower()}-{i:02d}", name) for i, name in enumerate(names)
                )
        (audio_dir / f"{speaker}.ts").write_text("\n".join(timings) + "\n")
        if speaker == "arilou":  # text beside the audio, as for the real arilou
            (audio_dir / f"{speaker}.txt").write_text("\n".join(text) + "\n")
            text_res = f"addons/3dovoice/{speaker}/{speaker}.txt"
        else:
            (content / "base" / "comm" / speaker).mkdir(parents=True)
            (content / "base" / "comm" / speaker / f"{speaker}.txt").write_text("\n".join(text) + "\n")
            text_res = f"base/comm/{speaker}/{speaker}.txt"
        rmp.append(f"comm.{speaker}.dialogue = CONVERSATION:{text_res}:addons/3dovoice/{speaker}/:"
                   f"addons/3dovoice/{speaker}/{speaker}.ts")  # fmt: skip
    (voice / "3dovoice" / "3dovoice.rmp").write_text("\n".join(rmp) + "\n")
    downloads.mkdir(parents=True, exist_ok=True)
    for package, tree, where in (("uqm-voice", voice, "addons"), ("uqm-content", content, "packages")):
        deb_tree = work / f"{package}-deb"
        target = deb_tree / "usr/share/games/uqm/content" / where / f"uqm-0.8.0-{package.split('-')[1]}.uqm"
        target.parent.mkdir(parents=True)
        with zipfile.ZipFile(target, "w") as z:
            for f in sorted(tree.rglob("*")):
                if f.is_file():
                    z.write(f, f.relative_to(tree))
        _deb(deb_tree, package, downloads)
    return expected
