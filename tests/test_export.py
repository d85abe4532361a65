import json
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.ao.nn.quantized import dynamic as qnn

from asr.checkpoint import LoadedModel, build
from asr.config import ExperimentConfig, FeatureConfig, ModelConfig, from_dict
from asr.export import (
    CHECK_SECONDS,
    TRACE_SECONDS,
    ExportError,
    example_batch,
    export,
    export_onnx,
    export_torchscript,
    load_onnx,
    load_torchscript,
    metadata,
    quantize_int8,
)
from asr.transcribe import log_probs_of
from tests.test_model import random_rowconv

RATE = 16000
# Batches unlike the export's trace and check batches: other sizes and lengths.
BATCHES = [(1.6, 0.45), (0.9, 1.2, 0.3), (0.5,)]
assert not {TRACE_SECONDS, CHECK_SECONDS} & set(BATCHES)


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models run fastest on one thread, and OpenMP threads crawl on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(bidirectional: bool, normalize: str, cell: str = "lstm") -> LoadedModel:
    torch.manual_seed(0)
    cfg = ExperimentConfig(
        features=FeatureConfig(normalize=normalize),
        model=ModelConfig(
            cell=cell, hidden_size=32, num_layers=2, bidirectional=bidirectional, lookahead=2, dropout=0.0
        ),
    )
    loaded = build(cfg)
    random_rowconv(loaded.model)
    if normalize in ("global", "online"):
        loaded.features.mean.uniform_(-8, 0)
        loaded.features.std.uniform_(1, 3)
    loaded.model.eval()
    loaded.features.eval()
    return loaded


@pytest.fixture(
    scope="module",
    params=[(True, "utterance"), (False, "global"), (False, "online"), (False, "global", "gru")],
    ids=["bilstm-utterance-cmvn", "lookahead-global-cmvn", "lookahead-online-cmvn", "gru-lookahead-global-cmvn"],
)
def loaded(request: pytest.FixtureRequest) -> LoadedModel:
    return tiny_model(*request.param)


def reference(loaded: LoadedModel, seconds: tuple[float, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    waveforms, lengths = example_batch(RATE, seconds, seed=7)
    with torch.no_grad():
        log_probs, out_lengths = log_probs_of(loaded, waveforms, lengths)
    return waveforms, lengths, log_probs, out_lengths


def assert_same(got: tuple, want_log_probs: torch.Tensor, want_lengths: torch.Tensor, atol: float = 1e-4) -> None:
    log_probs, out_lengths = (torch.as_tensor(x) for x in got)
    assert out_lengths.tolist() == want_lengths.tolist()
    torch.testing.assert_close(log_probs, want_log_probs, atol=atol, rtol=0)


def test_torchscript_equals_log_probs_of(loaded: LoadedModel, tmp_path: Path) -> None:
    module, _ = load_torchscript(export_torchscript(loaded, tmp_path / "model.ts"))
    for seconds in BATCHES:
        waveforms, lengths, want, want_lengths = reference(loaded, seconds)
        with torch.no_grad():
            assert_same(module(waveforms, lengths), want, want_lengths)


def test_torchscript_padded_batch_keeps_valid_frames(loaded: LoadedModel, tmp_path: Path) -> None:
    """Extra padding adds padding frames to the output; the valid frames do not change."""
    module, _ = load_torchscript(export_torchscript(loaded, tmp_path / "model.ts"))
    waveforms, lengths, want, want_lengths = reference(loaded, BATCHES[0])
    with torch.no_grad():
        got, got_lengths = module(nn.functional.pad(waveforms, (0, 4000)), lengths)
    assert got.shape[1] > want.shape[1]
    assert got_lengths.tolist() == want_lengths.tolist()
    for i, n in enumerate(want_lengths.tolist()):
        torch.testing.assert_close(got[i, :n], want[i, :n], atol=1e-4, rtol=0)


def test_metadata_round_trip(loaded: LoadedModel, tmp_path: Path) -> None:
    _, meta = load_torchscript(export(loaded, tmp_path / "model.ts", "torchscript"))
    assert meta == json.loads(json.dumps(metadata(loaded)))
    assert meta["vocabulary"] == loaded.vocab.symbols and meta["vocabulary"][meta["blank"]] == "<blank>"
    assert from_dict(FeatureConfig, meta["features"]) == loaded.config.features
    assert from_dict(ModelConfig, meta["model"]) == loaded.config.model
    assert meta["seconds_per_frame"] == pytest.approx(0.04)


def test_onnx_equals_log_probs_of(loaded: LoadedModel, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    session, meta = load_onnx(export_onnx(loaded, tmp_path / "model.onnx"))
    assert meta == json.loads(json.dumps(metadata(loaded)))
    assert [i.name for i in session.get_inputs()] == ["waveforms", "lengths"]
    for seconds in BATCHES:
        waveforms, lengths, want, want_lengths = reference(loaded, seconds)
        got = session.run(None, {"waveforms": waveforms.numpy(), "lengths": lengths.numpy()})
        assert_same(got, want, want_lengths)


def test_int8_quantizes_recurrent_and_linear_layers(loaded: LoadedModel) -> None:
    before = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    quantized = quantize_int8(loaded)
    kinds = {type(m) for m in quantized.model.modules()}
    fp32, int8 = {"lstm": (nn.LSTM, qnn.LSTM), "gru": (nn.GRU, qnn.GRU)}[loaded.config.model.cell]
    assert int8 in kinds and qnn.Linear in kinds
    assert fp32 not in kinds and nn.Linear not in kinds
    # the original is untouched
    assert type(loaded.model.rnns[0].forward_rnn) is fp32 and type(loaded.model.head) is nn.Linear
    assert all(torch.equal(before[k], v) for k, v in loaded.model.state_dict().items())

    waveforms, lengths, want, want_lengths = reference(loaded, BATCHES[1])
    with torch.no_grad():
        got, got_lengths = log_probs_of(quantized, waveforms, lengths)
    assert got.shape == want.shape and got_lengths.tolist() == want_lengths.tolist()
    assert torch.isfinite(got).all()
    assert (got - want).abs().max() < 0.5


def test_int8_exports_to_torchscript(loaded: LoadedModel, tmp_path: Path) -> None:
    quantized = quantize_int8(loaded)
    module, _ = load_torchscript(export_torchscript(quantized, tmp_path / "int8.ts"))
    waveforms, lengths, _, _ = reference(loaded, BATCHES[1])
    with torch.no_grad():
        want, want_lengths = log_probs_of(quantized, waveforms, lengths)
        assert_same(module(waveforms, lengths), want, want_lengths)
    pytest.importorskip("onnx")
    with pytest.raises(ExportError, match=r"int8\.onnx: int8 \(quantize_int8\) models export to TorchScript only"):
        export_onnx(quantized, tmp_path / "int8.onnx")


def test_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"m\.tflite: unknown export format 'tflite'; choose from torchscript, onnx"):
        export(tiny_model(True, "utterance"), tmp_path / "m.tflite", "tflite")


def test_output_directory_not_writable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ExportError, match=r"file/out/m\.ts: cannot create the output directory"):
        export_torchscript(tiny_model(True, "utterance"), blocker / "out" / "m.ts")
    with pytest.raises(ExportError, match=r"is a directory; give a file name"):
        export_torchscript(tiny_model(True, "utterance"), tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_directory(tmp_path: Path) -> None:
    tmp_path.chmod(0o500)
    try:
        with pytest.raises(ExportError, match=r"m\.ts: output directory .* is not writable"):
            export_torchscript(tiny_model(True, "utterance"), tmp_path / "m.ts")
    finally:
        tmp_path.chmod(0o700)


def test_missing_onnx_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    with pytest.raises(ExportError, match=r"needs the 'onnx' package: pip install asr\[export\]"):
        export_onnx(tiny_model(True, "utterance"), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_loading_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match=r"missing\.ts: no such file"):
        load_torchscript(tmp_path / "missing.ts")
    junk = tmp_path / "junk.ts"
    junk.write_bytes(b"not a zip archive")
    with pytest.raises(ExportError, match=r"junk\.ts: not a TorchScript archive"):
        load_torchscript(junk)
    plain = tmp_path / "plain.ts"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # TorchScript is deprecated in torch 2.14
        torch.jit.save(torch.jit.script(nn.Linear(2, 2)), str(plain))
    with pytest.raises(ExportError, match=r"plain\.ts: not an asr export \(no asr\.json inside\)"):
        load_torchscript(plain)
