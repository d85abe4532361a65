"""The UQM recipe on a fake uqm-voice/uqm-content package pair (no download): extraction,
line cuts at the .ts timings, markup and normalization, the speaker split, skip counts;
and the private apt configuration that fetches the real packages."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asr.audio import audio_duration
from asr.data import read_manifest
from tests.helpers.fake_uqm import FIXTURES, GAP, TEXTS, make_fake_uqm

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
import apt_fetch  # noqa: E402

PAD = 0.1  # recipes/uqm/local/prepare_uqm.py PAD_S


@pytest.fixture(scope="module")
def recipe(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, subprocess.CompletedProcess]:
    work = tmp_path_factory.mktemp("uqm")
    data = work / "data"
    expected = make_fake_uqm(work / "fake", data / "downloads")
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "recipes/uqm/run.sh"), "--data", str(data), "--jobs", "1"],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    return data, expected, done


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_recipe_cuts_lines_and_splits_by_speaker(recipe: tuple[Path, dict, subprocess.CompletedProcess]) -> None:
    data, expected, done = recipe
    assert done.returncode == 0, done.stdout + done.stderr
    assert "CC BY-NC-SA 2.5" in done.stdout
    fixture_text = {r["id"]: r["text"] for r in _rows(FIXTURES / "fixtures.jsonl")}
    fixture_seconds = {r["id"]: r["duration"] for r in _rows(FIXTURES / "fixtures.jsonl")}
    for part, speakers in (("train", {"arilou"}), ("dev", {"supox"}), ("test", {"spathi"})):
        rows = _rows(data / f"{part}.jsonl")
        assert {r["speaker"] for r in rows} == speakers
        want = [pair for s in speakers for pair in expected[s]]
        assert [r["id"] for r in rows] == [uid for uid, _ in want]
        utts = read_manifest(data / f"{part}.jsonl")
        for row, utt, (_, clip) in zip(rows, utts, want, strict=True):
            assert utt.text == fixture_text[clip]  # markup gone, normalized
            assert row["text"] == TEXTS[clip]  # as the dialogue file wrote it
            real = audio_duration(data / row["audio"])
            assert row["duration"] == pytest.approx(real, abs=0.002)
            # its fixture clip, the silence after it (but the last), and the padding
            assert fixture_seconds[clip] - 0.05 <= real <= fixture_seconds[clip] + GAP + 2 * PAD + 0.05
        text_lines = (data / "text" / f"{part}.txt").read_text().splitlines()
        assert text_lines == [u.text for u in utts]


def test_recipe_counts_what_it_skips(recipe: tuple[Path, dict, subprocess.CompletedProcess]) -> None:
    data, _, done = recipe
    summary = json.loads((data / "prepare.json").read_text())
    assert summary["skipped"] == {"block: timings do not match the line count": 1}
    assert "skipped 1: block: timings do not match the line count" in done.stdout
    assert summary["train"]["utterances"] == 5 and summary["test"]["speakers"] == 1
    assert _rows(data / "test400.jsonl") == _rows(data / "test.jsonl")  # fewer than 400 test lines: all of them
    all_ids = [r["id"] for part in ("train", "dev", "test") for r in _rows(data / f"{part}.jsonl")]
    assert not any("player" in uid or "bad_timing" in uid for uid in all_ids)


def test_rerun_skips_finished_stages(recipe: tuple[Path, dict, subprocess.CompletedProcess]) -> None:
    data, _, _ = recipe
    env = {**os.environ, "PYTHON": sys.executable}
    again = subprocess.run(["bash", str(ROOT / "recipes/uqm/run.sh"), "--data", str(data)], capture_output=True,
                           text=True, env=env, timeout=60)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("done already, skipped") == 4


def test_mirror_is_read_from_the_system_sources(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://mirror.invalid/debian-security\nSuites: bookworm-security\nComponents: main\n\n"
        "Types: deb\nURIs: http://mirror.invalid/debian\nSuites: bookworm bookworm-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    mirror = apt_fetch.debian_mirror(etc)
    assert (mirror.uri, mirror.suite) == ("http://mirror.invalid/debian", "bookworm")
    conf = apt_fetch.private_config(tmp_path / "cache", mirror)
    sources = (tmp_path / "cache" / "apt" / "sources.list").read_text()
    assert sources == (
        "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://mirror.invalid/debian bookworm "
        "main contrib non-free\n"
    )
    assert f'Dir::State::Lists "{(tmp_path / "cache" / "apt" / "lists").resolve()}";' in conf.read_text()

    (etc / "sources.list.d" / "debian.sources").unlink()
    (etc / "sources.list").write_text("# a comment\ndeb [arch=amd64] http://old.invalid/debian bullseye main\n")
    assert apt_fetch.debian_mirror(etc) == apt_fetch.Source("http://old.invalid/debian", "bullseye", "")
    (etc / "sources.list").write_text("deb http://example.invalid/ubuntu jammy main\n")
    with pytest.raises(apt_fetch.FetchError, match="no Debian archive"):
        apt_fetch.debian_mirror(etc)


def test_realign_moves_cuts_to_the_words_and_drops_a_wrong_text(robust_checkpoint: Path, tmp_path: Path) -> None:
    """.ts timings 300 ms late put the start of each block's second line into its first line's
    cut; aligning with a model puts the cut back at the silence between them, and the line
    whose transcript is another clip's scores lowest and is dropped."""
    data = tmp_path / "data"
    expected = make_fake_uqm(tmp_path / "fake", data / "downloads", ts_shift_ms=300, wrong="utt3")
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "recipes/uqm/run.sh"), "--data", str(data), "--jobs", "1",
                           "--align-model", str(robust_checkpoint), "--align-keep", "0.5"],
                          capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    raw = {r["id"]: r for part in ("train", "dev", "test") for r in _rows(data / f"{part}.jsonl")}
    aligned = {r["id"]: r for part in ("train", "dev", "test") for r in _rows(data / "aligned" / f"{part}.jsonl")}
    fixture_seconds = {r["id"]: r["duration"] for r in _rows(FIXTURES / "fixtures.jsonl")}
    # hello_world-00 is utt0: its .ts cut ran 0.3 s into utt1; aligned, it ends in the gap
    first = aligned["uqm-arilou-hello_world-00"]
    assert raw["uqm-arilou-hello_world-00"]["duration"] > fixture_seconds["utt0"] + GAP + 0.25
    assert fixture_seconds["utt0"] - 0.1 <= first["duration"] <= fixture_seconds["utt0"] + 2 * PAD + 0.2
    summary = json.loads((data / "aligned" / "realign.json").read_text())
    assert summary["clips_not_aligned"] == 0
    wrong = [uid for pairs in expected.values() for uid, clip in pairs if clip == "utt3"]  # given utt2's text
    assert wrong and not any(uid in aligned for uid in wrong)
    assert all(r["align_score"] >= summary["threshold"] for r in aligned.values())
    assert len(aligned) >= len(raw) - len(wrong) - 1
