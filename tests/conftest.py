from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from asr.config import ExperimentConfig, FeatureConfig, ModelConfig, SpecAugmentConfig, TrainConfig

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "fixtures"


def asr_cli(*args: str, stdin: bytes | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """``python -m asr.cli ARGS`` with ``stdin`` bytes fed in; stdout and stderr as text."""
    done = subprocess.run([sys.executable, "-m", "asr.cli", *args], capture_output=True, input=stdin, timeout=timeout)
    out, err = done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace")
    return subprocess.CompletedProcess(done.args, done.returncode, out, err)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def fixtures_manifest() -> Path:
    return FIXTURES / "fixtures.jsonl"


def tiny_config(out_dir: Path, manifest: Path, **train: object) -> ExperimentConfig:
    """A small model that memorizes the four fixture clips in a few seconds."""
    return ExperimentConfig(
        features=FeatureConfig(),
        model=ModelConfig(hidden_size=96, num_layers=2, dropout=0.0),
        spec_augment=SpecAugmentConfig(),
        train=TrainConfig(
            train_manifest=str(manifest),
            dev_manifest=str(manifest),
            out_dir=str(out_dir),
            epochs=int(train.pop("epochs", 80)),
            batch_seconds=20.0,
            lr=3e-3,
            warmup_steps=10,
            spec_augment=False,
            num_workers=0,
            log_every=int(train.pop("log_every", 1000)),
            **train,
        ),
    )


PADDINGS = ((0.15, 0.15), (0.3, 0.05), (0.05, 0.4))  # seconds of digital silence before, after
ODD_PADDINGS = ((0.0731, 0.2), (0.2219, 0.1))  # not whole 10 ms frames
STREAM_TAILS = ((0.1, 1.0),)  # an utterance as endpointing closes it


def padded_fixtures(folder: Path, manifest: Path, paddings: tuple[tuple[float, float], ...] = PADDINGS) -> Path:
    """The fixture clips plus copies with silence added at each end (:data:`PADDINGS`), so
    the memorizing model also reads them as a segmenter or a stream cuts them."""
    import json

    import numpy as np
    import soundfile as sf

    lines = manifest.read_text().splitlines()
    out = [json.dumps({**json.loads(line), "audio": str(FIXTURES / json.loads(line)["audio"])}) for line in lines]
    for before, after in paddings:
        for line in lines:
            utt = json.loads(line)
            audio, rate = sf.read(FIXTURES / utt["audio"], dtype="float32")
            silence = [np.zeros(round(t * rate), np.float32) for t in (before, after)]
            padded = np.concatenate([silence[0], audio, silence[1]])
            path = folder / f"{utt['id']}-{before}-{after}.wav"
            sf.write(path, padded, rate)
            out.append(json.dumps({**utt, "id": path.stem, "audio": str(path), "duration": len(padded) / rate}))
    padded_manifest = folder / "train.jsonl"
    padded_manifest.write_text("\n".join(out) + "\n")
    return padded_manifest


@pytest.fixture(scope="session")
def overfit_checkpoint(tmp_path_factory: pytest.TempPathFactory, fixtures_manifest: Path) -> Path:
    """A checkpoint trained to memorize the fixture clips (shared by the end-to-end tests)."""
    from asr.train import train

    out = tmp_path_factory.mktemp("overfit")
    return train(tiny_config(out, fixtures_manifest))


@pytest.fixture(scope="session")
def robust_checkpoint(tmp_path_factory: pytest.TempPathFactory, fixtures_manifest: Path) -> Path:
    """Like ``overfit_checkpoint``, also trained on the clips with silence around them, so
    that it reads them as a segmenter or a stream cuts them (its dev set: the plain clips).
    Its posteriors are less peaked: LM tests use ``overfit_checkpoint``."""
    from dataclasses import replace

    from asr.train import train

    out = tmp_path_factory.mktemp("robust")
    cfg = tiny_config(out, fixtures_manifest)
    train_manifest = padded_fixtures(out, fixtures_manifest)
    return train(replace(cfg, train=replace(cfg.train, train_manifest=str(train_manifest), batch_seconds=40.0)))


@pytest.fixture(scope="session")
def streaming_checkpoint(tmp_path_factory: pytest.TempPathFactory, fixtures_manifest: Path) -> Path:
    """A unidirectional model (lookahead 6 frames, global CMVN) memorizing the clips, with silence too
    (with 2 frames of lookahead it cannot tell the clips apart early enough after silence), and
    copies ending in 1 s of silence: a stream's utterance ends after the endpoint silence (0.6 s
    and the detector's lag), and a model that never saw such tails read "hello wold" there
    (its "r" came only from the zero lookahead of a nearby end)."""
    from dataclasses import replace

    from asr.train import train

    out = tmp_path_factory.mktemp("streaming")
    cfg = tiny_config(out, fixtures_manifest, epochs=100)
    train_manifest = padded_fixtures(out, fixtures_manifest, PADDINGS + ODD_PADDINGS + STREAM_TAILS)
    return train(
        replace(
            cfg,
            features=replace(cfg.features, normalize="global"),
            model=replace(cfg.model, bidirectional=False, lookahead=6, hidden_size=128),
            train=replace(cfg.train, train_manifest=str(train_manifest), batch_seconds=8.0),
        )
    )
