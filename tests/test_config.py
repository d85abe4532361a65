import argparse
import dataclasses
from pathlib import Path

import pytest

from asr.cli import build_parser, inference_config
from asr.config import (
    ConfigError,
    ExperimentConfig,
    FeatureConfig,
    InferenceConfig,
    _leaf_fields,
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


# what each inference command needs besides settings, and the InferenceConfig sections it takes
COMMANDS = {
    "decode": (["--model", "m.pt", "--manifest", "dev.jsonl"], ("decoding",)),
    "tune-lm": (["--model", "m.pt", "--manifest", "dev.jsonl"], ("decoding",)),
    "transcribe": (["--model", "m.pt", "a.wav"], ("decoding", "segment")),
    "stream": (["--model", "m.pt"], ("decoding", "segment", "stream")),
    "serve": (["--model", "m.pt"], ("decoding", "segment", "stream", "serve")),
}
EXAMPLE = {int: "7", float: "0.375", str: "lm", bool: "true"}


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices


@pytest.mark.parametrize("command", COMMANDS)
def test_every_setting_is_an_option_and_no_default_is_written_twice(command: str) -> None:
    argv, sections = COMMANDS[command]
    parser = _subparsers()[command]
    actions = {a.dest: a for a in parser._actions}
    fields = {name for name, _, _ in _leaf_fields(InferenceConfig)}
    spellings = set()
    for name, kind, f in _leaf_fields(InferenceConfig):
        if name.split(".")[0] not in sections:
            assert name not in actions, name
            continue
        spellings |= {name, *(alias.lstrip("-").replace("-", "_") for alias in f.metadata.get("flags", ()))}
        assert f"--{name}" in actions[name].option_strings and actions[name].default is None, name
        want = EXAMPLE[kind] == "true" if kind is bool else kind(EXAMPLE[kind])
        for flag in actions[name].option_strings:  # every spelling reaches the field
            assert getattr(parser.parse_args([*argv, flag, EXAMPLE[kind]]), name) == want, (name, flag)
    hand_written = {dest for dest in actions if dest not in fields}
    assert not spellings & hand_written  # no option of its own (and default of its own) shadows a setting
    assert inference_config(parser.parse_args(argv)) == InferenceConfig()


def test_inference_settings_from_yaml_options_and_tuned(tmp_path: Path) -> None:
    parser = _subparsers()["transcribe"]
    (tmp_path / "s.yaml").write_text("decoding: {alpha: 0.9, unk_offset: -4.0}\nsegment: {pad: 0.3}\n")
    (tmp_path / "tuned.json").write_text('{"alpha": 0.2, "beta": 0.4, "wer": 0.5}')
    args = parser.parse_args(["--model", "m.pt", "a.wav", "--config", str(tmp_path / "s.yaml"), "--alpha", "1.1"])
    config = inference_config(args)
    assert (config.decoding.alpha, config.decoding.unk_offset, config.segment.pad) == (1.1, -4.0, 0.3)
    assert config.decoding.beta == InferenceConfig().decoding.beta
    args = parser.parse_args(["--model", "m.pt", "a.wav", "--tuned", str(tmp_path / "tuned.json"), "--beta", "2"])
    assert (inference_config(args).decoding.alpha, inference_config(args).decoding.beta) == (0.2, 2.0)
    args = parser.parse_args(["--model", "m.pt", "a.wav", "--segment.max_seconds", "3"])
    with pytest.raises(ConfigError, match=r"segment\.max_seconds 3\.0 must exceed overlap \+ search"):
        inference_config(args)
    args = _subparsers()["serve"].parse_args(["--model", "m.pt", "--idle-timeout", "5", "--serve.max_backlog", "0"])
    with pytest.raises(ConfigError, match=r"serve timeouts, heartbeat and max_wait must not be negative, max_backlog"):
        inference_config(args)
