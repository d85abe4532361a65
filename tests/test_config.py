import argparse
import dataclasses
from pathlib import Path

import pytest

from asr.config import (
    ConfigError,
    ExperimentConfig,
    FeatureConfig,
    add_config_arguments,
    config_from_arguments,
    from_dict,
)
from tests.conftest import asr_cli


def _parse(argv: list[str]) -> ExperimentConfig:
    parser = argparse.ArgumentParser()
    add_config_arguments(parser, ExperimentConfig)
    return config_from_arguments(ExperimentConfig, parser.parse_args(argv))


def test_defaults_and_overrides() -> None:
    assert _parse([]) == ExperimentConfig()
    cfg = _parse(["--model.hidden_size", "128", "--model.bidirectional", "false", "--train.lr", "0.01"])
    assert cfg.model.hidden_size == 128 and cfg.model.bidirectional is False and cfg.train.lr == 0.01


def test_yaml_then_options(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("model:\n  hidden_size: 64\n  num_layers: 5\ntrain:\n  epochs: 3\n")
    cfg = _parse(["--config", str(tmp_path / "c.yaml"), "--model.num_layers", "2"])
    assert (cfg.model.hidden_size, cfg.model.num_layers, cfg.train.epochs) == (64, 2, 3)


def test_unknown_yaml_key_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("model:\n  hiden_size: 64\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: bad config: unknown ModelConfig fields: \['hiden_size'\]"):
        _parse(["--config", str(tmp_path / "c.yaml")])


def test_config_errors_are_reported_by_the_cli(tmp_path: Path, fixtures_manifest: Path) -> None:
    m = str(fixtures_manifest)
    cases = {
        ("--train.best_metric", "loss"): "error: bad config: train.best_metric 'loss': cer or wer",
        ("--model.time_subsampling", "3"): "error: bad config: model.time_subsampling 3: must be a power of two",
        ("--train.mix_weights", "1,x"): "error: train.mix_weights '1,x': not a comma-separated list of numbers",
        ("--train.mix_weights", "1,2"): "error: train.mix_weights '1,2': needs 1 weights",
    }
    for option, message in cases.items():
        done = asr_cli("train", "--train.train_manifest", m, "--train.dev_manifest", m,
                       "--train.out_dir", str(tmp_path / "exp"), *option)  # fmt: skip
        assert done.returncode == 1 and done.stderr.splitlines()[-1].startswith(message), (option, done.stderr)
        assert "Traceback" not in done.stderr
    done = asr_cli("train", "--train.out_dir", str(tmp_path / "exp"))
    assert (done.returncode, done.stderr) == (1, "error: train needs --train.train_manifest and --train.dev_manifest\n")


def test_round_trip_and_derived_values() -> None:
    cfg = ExperimentConfig()
    assert from_dict(ExperimentConfig, dataclasses.asdict(cfg)) == cfg
    assert cfg.seconds_per_frame == 0.04  # 4x subsampling of the 10 ms hop
    f = dataclasses.replace(FeatureConfig(), sample_rate=8000)
    assert (f.win_length, f.hop_length) == (200, 80)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.model.hidden_size = 3  # type: ignore[misc]
