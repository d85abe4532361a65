from __future__ import annotations

from pathlib import Path

import pytest

from asr.config import ExperimentConfig, FeatureConfig, ModelConfig, SpecAugmentConfig, TrainConfig

FIXTURES = Path(__file__).resolve().parent.parent / "data" / "fixtures"


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


@pytest.fixture(scope="session")
def overfit_checkpoint(tmp_path_factory: pytest.TempPathFactory, fixtures_manifest: Path) -> Path:
    """A checkpoint trained to memorize the fixture clips (shared by the end-to-end tests)."""
    from asr.train import train

    out = tmp_path_factory.mktemp("overfit")
    return train(tiny_config(out, fixtures_manifest))
