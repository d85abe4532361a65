"""Tests of the RHVoice driver (tools/rhvoice_tts.py) on Debian's Russian voices.

The packages (:data:`tools.rhvoice_tts.PACKAGES`, about 110 MB) are fetched once with
tools/apt_fetch.py into the pytest cache (``.pytest_cache/d/rhvoice``) and unpacked there;
without a network the tests that speak are skipped, with the reason.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest

from tools import apt_fetch, rhvoice_tts
from tools.rhvoice_tts import RHVoiceError, RHVoiceUnavailable, synthesize, voices

TEXT = "привет, как дела"
SAMPLE_RATE = 24_000  # what Debian's Russian voices report


@pytest.fixture(scope="session")
def tree(pytestconfig: pytest.Config) -> Path:
    """An unpacked tree of the Russian packages, made on the first run (``.done`` marks it)."""
    assert pytestconfig.cache is not None
    root = pytestconfig.cache.mkdir("rhvoice")
    tree = root / "tree"
    if not (tree / ".done").is_file():
        try:
            debs = apt_fetch.fetch(list(rhvoice_tts.PACKAGES["ru"]), root / "apt", root / "debs")
        except (apt_fetch.FetchError, OSError) as e:
            pytest.skip(f"cannot fetch the RHVoice packages (offline?): {e}")
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(tree)], check=True, capture_output=True)
        (tree / ".done").touch()
    return tree


def _duration(audio: np.ndarray, rate: int) -> float:
    return len(audio) / rate


def test_voices(tree: Path) -> None:
    names = voices(tree)
    assert {"aleksandr", "anna"} <= set(names)
    assert voices(tree, "ru") == names == sorted(names)
    assert voices(tree, "en") == []


def test_two_voices_speak_differently(tree: Path) -> None:
    spoken = {}
    for voice in ("aleksandr", "anna"):
        audio, rate = synthesize(TEXT, voice, tree)
        assert rate == SAMPLE_RATE
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert 0.5 < _duration(audio, rate) < 3.0
        assert np.abs(audio).max() <= 1.0
        assert np.sqrt(np.mean(audio**2)) > 0.01  # speech, not silence
        spoken[voice] = audio
    again, _ = synthesize(TEXT, "Anna", tree)  # any case; the same audio each time
    assert np.array_equal(again, spoken["anna"])
    a, b = spoken["aleksandr"], spoken["anna"]
    assert len(a) != len(b) or not np.allclose(a, b, atol=1e-3)


def test_rate_and_pitch(tree: Path) -> None:
    base, rate = synthesize(TEXT, "anna", tree)
    faster, _ = synthesize(TEXT, "anna", tree, rate=1.5)
    assert _duration(faster, rate) < 0.8 * _duration(base, rate)
    higher, _ = synthesize(TEXT, "anna", tree, pitch=1.5)
    assert abs(len(higher) - len(base)) < 0.05 * len(base)  # pitch leaves the timing
    assert len(higher) != len(base) or not np.allclose(higher, base, atol=1e-3)


def test_unknown_voice(tree: Path) -> None:
    with pytest.raises(ValueError, match=r"'nosuchvoice'.*anna"):
        synthesize(TEXT, "nosuchvoice", tree)


@pytest.mark.parametrize("text", ["", "   "])
def test_no_output(tree: Path, text: str) -> None:
    with pytest.raises(RHVoiceError) as caught:
        synthesize(text, "anna", tree)
    assert caught.value.reason == "no_output"


def test_missing_tree(tmp_path: Path) -> None:
    missing = tmp_path / "no-tree"
    with pytest.raises(RHVoiceUnavailable, match="apt_fetch") as caught:
        synthesize(TEXT, "anna", missing)
    assert str(missing) in str(caught.value)


def test_tree_without_voices(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "usr").mkdir()
    (tmp_path / "usr" / "lib").symlink_to(tree / "usr" / "lib")
    with pytest.raises(RHVoiceUnavailable, match="no RHVoice voices"):
        voices(tmp_path)
