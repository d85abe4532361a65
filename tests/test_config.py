import argparse
import dataclasses
from pathlib import Path

import pytest

from asr.config import ExperimentConfig, FeatureConfig, add_config_arguments, config_from_arguments, from_dict


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
    with pytest.raises(SystemExit, match=r"unknown ModelConfig fields: \['hiden_size'\]"):
        _parse(["--config", str(tmp_path / "c.yaml")])


def test_round_trip_and_derived_values() -> None:
    cfg = ExperimentConfig()
    assert from_dict(ExperimentConfig, dataclasses.asdict(cfg)) == cfg
    f = dataclasses.replace(FeatureConfig(), sample_rate=8000)
    assert (f.win_length, f.hop_length) == (200, 80)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.model.hidden_size = 3  # type: ignore[misc]
