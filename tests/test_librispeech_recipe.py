"""The LibriSpeech recipe, offline: a fake LibriSpeech served on 127.0.0.1 goes through
every stage to RESULTS.md; downloads resume, bad archives are refused, reruns skip."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asr.download import DownloadError, RemoteFile, download
from tests.helpers.fake_librispeech import SENTENCES, MirrorServer, make_fake_librispeech

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "recipes" / "librispeech" / "run.sh"


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_fake_librispeech(tmp_path_factory.mktemp("fake-librispeech"))


def _recipe(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.run(["bash", str(RUN), "--conf", "test", *args], capture_output=True, text=True, env=env,
                          timeout=600)  # fmt: skip


def test_interrupted_download_resumes(fake: tuple[Path, Path], tmp_path: Path) -> None:
    mirror, checksums = fake
    entry = json.loads(checksums.read_text())["train-clean-100.tar.gz"]
    server = MirrorServer(mirror, cut_once={"train-clean-100.tar.gz"})
    try:
        remote = RemoteFile("train-clean-100.tar.gz", entry["md5"], entry["size"])
        path = download([f"{server.url}/12"], remote, tmp_path, backoff=0.01, show=False)
    finally:
        server.close()
    assert path.read_bytes() == (mirror / "12" / "train-clean-100.tar.gz").read_bytes()
    ranges = [r for p, r in server.requests if p.endswith("train-clean-100.tar.gz")]
    assert ranges[0] is None and ranges[1] == f"bytes={entry['size'] // 2}-"  # the second request resumed
    assert not (tmp_path / "train-clean-100.tar.gz.part").exists()


def test_wrong_md5_is_refused_and_deleted(fake: tuple[Path, Path], tmp_path: Path) -> None:
    mirror, _ = fake
    server = MirrorServer(mirror)
    try:
        with pytest.raises(DownloadError, match=r"dev-clean\.tar\.gz: MD5 [0-9a-f]{32} does not match the expected 0+"):
            download([f"{server.url}/12"], RemoteFile("dev-clean.tar.gz", "0" * 32), tmp_path, show=False)
        bad = tmp_path / "bad.json"
        table = json.loads(fake[1].read_text())
        table["dev-other.tar.gz"]["md5"] = "f" * 32
        bad.write_text(json.dumps(table))
        result = _recipe("--data", str(tmp_path / "data"), "--mirror", server.url, "--checksums", str(bad),
                         "--stop-stage", "1")  # fmt: skip
    finally:
        server.close()
    assert result.returncode == 1
    assert "dev-other.tar.gz: MD5" in result.stderr and "the download was deleted" in result.stderr
    download_dir = tmp_path / "data" / "download"
    assert (download_dir / "dev-clean.tar.gz").is_file()  # what was verified before stays
    assert not list(download_dir.glob("dev-other*"))  # nothing corrupt is kept
    assert not (tmp_path / "data" / ".done" / "1").exists()


def test_dry_run_prints_the_real_files() -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    result = subprocess.run(["bash", str(RUN), "--dry-run", "--subset", "460"], capture_output=True, text=True,
                            env=env)  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "https://www.openslr.org/resources/12/train-clean-360.tar.gz  md5 c0e676e450a7ff2f54aeade5171606fa" in out
    assert "train-other-500" not in out and "resources/11/4-gram.arpa.gz" in out
    assert "download 32.1 GB; disk needed about 96 GB" in out


def test_recipe_end_to_end_offline(fake: tuple[Path, Path], tmp_path: Path) -> None:
    mirror, checksums = fake
    data = tmp_path / "data"
    server = MirrorServer(mirror, cut_once={"train-clean-100.tar.gz"})
    try:
        common = ("--data", str(data), "--mirror", server.url, "--checksums", str(checksums))
        first = _recipe(*common, "--stop-stage", "3")  # an earlier run that stopped after the shards
        assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
        assert sorted(p.name for p in (data / ".done").iterdir()) == ["1", "2", "3"]
        rest = _recipe(*common, "--stage", "4")  # picks up where it stopped
        assert rest.returncode == 0, rest.stdout[-3000:] + rest.stderr[-3000:]
        again = _recipe(*common)  # everything done: every stage skipped
    finally:
        server.close()
    manifests = data / "manifests"
    train = [json.loads(line) for line in (manifests / "train.jsonl").read_text().splitlines()]
    assert len(train) == 16 and {r["text"] for r in train} <= set(SENTENCES)  # normalized: lower case
    assert all(r["duration"] > 0.5 for r in train)
    assert len((manifests / "dev-clean.jsonl").read_text().splitlines()) == 3
    results = (data / "RESULTS.md").read_text()
    for s in ("dev-clean", "dev-other", "test-clean", "test-other"):
        assert s in results
    assert "| bilstm (1x16 BiLSTM) | greedy |" in results and "| streaming (1x16 LSTM) | beam 8 + LM" in results
    assert "validated" in rest.stdout
    assert again.returncode == 0 and again.stdout.count("(done already, skipped)") == 8
