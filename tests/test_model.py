from pathlib import Path

import pytest
import torch

from asr.checkpoint import CheckpointError, build, load_model, save_training_checkpoint
from asr.config import ExperimentConfig, FeatureConfig, ModelConfig
from asr.model import AcousticModel, RowConvolution, output_lengths


@pytest.mark.parametrize(
    ("conv_layers", "subsampling", "outputs"),
    [(1, 2, 1), (2, 4, 1), (3, 8, 1), (2, 2, 1), (2, 1, 1), (3, 4, 1), (2, 4, 2)],
)
def test_output_lengths_match_conv_arithmetic(conv_layers: int, subsampling: int, outputs: int) -> None:
    cfg = ModelConfig(
        hidden_size=16,
        num_layers=1,
        conv_layers=conv_layers,
        conv_channels=4,
        time_subsampling=subsampling,
        output_frames=outputs,
    )
    model = AcousticModel(FeatureConfig(), cfg, 29).eval()
    for frames in (1, 2, 3, 7, 8, 9, 100, 101):
        log_probs, lengths = model(torch.randn(1, frames, 80), torch.tensor([frames]))
        expected = frames
        for _ in range(subsampling.bit_length() - 1):
            expected = (expected - 1) // 2 + 1  # kernel 3, stride 2, padding 1 (stride-1 layers keep T)
        expected *= outputs  # each LSTM frame gives `outputs` CTC frames
        assert log_probs.shape[1] == expected == int(lengths[0]) == int(output_lengths(torch.tensor(frames), cfg))


def test_bad_output_frames_are_refused() -> None:
    with pytest.raises(ValueError, match=r"model\.output_frames 8: must be from 1 to time_subsampling"):
        ModelConfig(output_frames=8)


@pytest.mark.parametrize("subsampling", [3, 8, 0])
def test_bad_time_subsampling_is_refused(subsampling: int) -> None:
    with pytest.raises(ValueError, match=f"model.time_subsampling {subsampling}: must be a power of two"):
        ModelConfig(conv_layers=2, time_subsampling=subsampling)


def test_log_probs_normalized_and_padding_independent() -> None:
    model = AcousticModel(FeatureConfig(), ModelConfig(hidden_size=32, num_layers=2), 29).eval()
    x = torch.randn(2, 60, 80)
    x[1, 40:] = 0
    log_probs, lengths = model(x, torch.tensor([60, 40]))
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(2, 15))
    alone, _ = model(x[1:, :40], torch.tensor([40]))
    # packed sequences: the backward LSTM of the short utterance never sees padding
    torch.testing.assert_close(log_probs[1, : lengths[1]], alone[0], atol=1e-5, rtol=1e-5)


def test_training_outputs_do_not_depend_on_the_batch() -> None:
    """No batch statistics anywhere: in training mode too, an utterance gives the same
    outputs alone and padded inside a batch (what makes 1-process and DDP gradients equal)."""
    torch.manual_seed(0)
    model = AcousticModel(FeatureConfig(), ModelConfig(hidden_size=16, num_layers=2, dropout=0.0), 29).train()
    x = torch.randn(3, 90, 80)
    x[1, 37:] = 0
    x[2, 61:] = 0
    lengths = torch.tensor([90, 37, 61])
    batch, out_lengths = model(x, lengths)
    for i in (1, 2):
        alone, n = model(x[i : i + 1, : lengths[i]], lengths[i : i + 1])
        assert int(n[0]) == int(out_lengths[i])
        torch.testing.assert_close(batch[i, : out_lengths[i]], alone[0], atol=1e-5, rtol=1e-5)


def random_rowconv(model: AcousticModel) -> AcousticModel:
    """``model`` with random row-convolution taps (it starts as the identity), so that tests
    of the lookahead see every future frame used."""
    if model.rowconv is not None:
        with torch.no_grad():
            model.rowconv.conv.weight.normal_()
    return model


def test_row_convolution_starts_as_the_identity() -> None:
    torch.manual_seed(0)
    rowconv = RowConvolution(6, lookahead=3)
    x = torch.randn(2, 9, 6)
    assert torch.equal(rowconv(x), x)
    assert rowconv.conv.weight[:, 0, 1:].abs().sum() == 0 and (rowconv.conv.weight[:, 0, 0] == 1).all()


@pytest.mark.parametrize("lookahead", [0, 2])
def test_streaming_variant_is_causal_up_to_lookahead(lookahead: int) -> None:
    cfg = ModelConfig(hidden_size=32, num_layers=2, bidirectional=False, lookahead=lookahead)
    model = random_rowconv(AcousticModel(FeatureConfig(), cfg, 29).eval())
    x = torch.randn(1, 80, 80)
    y = x.clone()
    cut = 41
    y[:, cut:] = torch.randn(1, 80 - cut, 80)
    a, _ = model(x, torch.tensor([80]))
    b, _ = model(y, torch.tensor([80]))
    # output j sees input frames <= 4 * (j + lookahead) + 3 (two 3x3/stride-2 convs, row conv)
    unaffected = [j for j in range(a.shape[1]) if 4 * (j + lookahead) + 3 < cut]
    assert unaffected and max(unaffected) + 1 < a.shape[1]
    torch.testing.assert_close(a[0, unaffected], b[0, unaffected])
    assert not torch.allclose(a[0, max(unaffected) + 1 :], b[0, max(unaffected) + 1 :])


def test_bidirectional_model_sees_the_future() -> None:
    torch.manual_seed(0)
    model = AcousticModel(FeatureConfig(), ModelConfig(hidden_size=16, num_layers=1), 29).eval()
    x = torch.randn(1, 80, 80)
    y = x.clone()
    y[:, 70:] = torch.randn(1, 10, 80)
    assert not torch.allclose(model(x, torch.tensor([80]))[0][0, 0], model(y, torch.tensor([80]))[0][0, 0])


def test_checkpoint_round_trip_rebuilds_identical_model(tmp_path: Path) -> None:
    cfg = ExperimentConfig(
        features=FeatureConfig(normalize="global"),
        model=ModelConfig(hidden_size=24, num_layers=2, bidirectional=False, lookahead=3),
    )
    loaded = build(cfg)
    loaded.features.mean.fill_(1.5)
    path = save_training_checkpoint(tmp_path, 1, cfg, loaded.model, loaded.features, keep_last=0)
    again = load_model(path)
    assert again.config == cfg and again.vocab.symbols == loaded.vocab.symbols
    assert again.features.mean[0] == 1.5
    waves = torch.randn(2, 8000)
    lengths = torch.tensor([8000, 6000])
    loaded.model.eval()
    feats, frames = loaded.features(waves, lengths)
    torch.testing.assert_close(again.model(*again.features(waves, lengths))[0], loaded.model(feats, frames)[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt", path.name]  # no temp file left


def test_checkpoint_errors(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match=r"nope\.pt: no such checkpoint"):
        load_model(tmp_path / "nope.pt")
    cfg = ExperimentConfig(model=ModelConfig(hidden_size=8, num_layers=1))
    loaded = build(cfg)
    data = save_training_checkpoint(tmp_path, 1, cfg, loaded.model, loaded.features, keep_last=0).read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"cut\.pt: not a readable checkpoint"):
        load_model(tmp_path / "cut.pt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match=r"foreign\.pt: not an asr checkpoint"):
        load_model(tmp_path / "foreign.pt")


STREAM_MODELS = [
    ModelConfig(hidden_size=32, num_layers=2, bidirectional=False, lookahead=3, dropout=0.0),
    ModelConfig(
        hidden_size=32, num_layers=2, bidirectional=False, lookahead=0, dropout=0.0, conv_layers=3, output_frames=2
    ),
    ModelConfig(cell="gru", hidden_size=32, num_layers=2, bidirectional=False, lookahead=2, dropout=0.0),
]


@pytest.mark.parametrize("cfg", STREAM_MODELS, ids=["lstm-lookahead", "lstm-3conv-2out", "gru-lookahead"])
def test_step_over_any_chunking_equals_forward(cfg: ModelConfig) -> None:
    torch.manual_seed(0)
    model = random_rowconv(AcousticModel(FeatureConfig(), cfg, vocab_size=29).eval())
    feats = torch.randn(157, 80)
    with torch.no_grad():
        want = model(feats[None], torch.tensor([157]))[0][0]
    cuts = torch.randint(0, 12, (60,)).cumsum(0)
    chunkings = {
        "1": range(1, 157),
        "7": range(7, 157, 7),
        "40": range(40, 157, 40),
        "ragged": cuts[cuts < 157].tolist(),
    }
    for name, ends in chunkings.items():
        state, got, begin = model.initial_state(), [], 0
        for end in [*ends, 157]:
            out, state = model.step(feats[begin:end], state)
            got.append(out)
            begin = end
        got.append(model.step(feats[:0], state, final=True)[0])
        got = torch.cat(got)
        assert got.shape == want.shape, name
        torch.testing.assert_close(got, want, atol=1e-5, rtol=0, msg=name)


def test_step_never_changes_the_state_it_is_given() -> None:
    torch.manual_seed(0)
    model = random_rowconv(AcousticModel(FeatureConfig(), STREAM_MODELS[0], vocab_size=29).eval())
    feats = torch.randn(90, 80)
    first, state = model.step(feats[:50], model.initial_state())
    peek, _ = model.step(feats[:0], state, final=True)  # a partial result, as if the stream ended
    second, state = model.step(feats[50:], state)
    buffers = (state.feats.numel() + state.pending.numel()) * 4
    assert state.nbytes == buffers + 2 * 2 * 32 * 4  # and (h, c) of 32 floats in each of 2 layers
    rest, _ = model.step(feats[:0], state, final=True)
    with torch.no_grad():
        want = model(feats[None], torch.tensor([90]))[0][0]
    torch.testing.assert_close(torch.cat([first, second, rest]), want, atol=1e-5, rtol=0)
    assert len(peek) > 0 and len(first) + len(peek) < len(want)


def test_bidirectional_model_cannot_stream() -> None:
    model = AcousticModel(FeatureConfig(), ModelConfig(hidden_size=8, num_layers=1), vocab_size=29)
    with pytest.raises(ValueError, match="streaming needs a unidirectional model"):
        model.initial_state()


def test_unknown_cell_is_refused() -> None:
    with pytest.raises(ValueError, match=r"model\.cell 'rnn': lstm or gru"):
        ModelConfig(cell="rnn")


def test_checkpoints_from_before_gru_cells_load() -> None:
    """Their layers were named ``lstms.N.forward_lstm`` and ``backward_lstm``."""
    torch.manual_seed(0)
    model = AcousticModel(FeatureConfig(), ModelConfig(hidden_size=16, num_layers=2), vocab_size=29)
    old = {k.replace("rnns.", "lstms.").replace("_rnn.", "_lstm."): v for k, v in model.state_dict().items()}
    assert "lstms.1.backward_lstm.weight_hh_l0" in old
    again = AcousticModel(FeatureConfig(), ModelConfig(hidden_size=16, num_layers=2), vocab_size=29)
    again.load_state_dict(old)
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in model.state_dict().items())


def _kernel_outputs(model: AcousticModel, kernel: str, feats: torch.Tensor, frames: torch.Tensor) -> tuple:
    """Log-probs on valid frames and the gradients of a loss over them, with ``kernel``."""
    for layer in model.rnns:
        layer.kernel = kernel
    model.zero_grad()
    log_probs, lengths = model(feats, frames)
    valid = (torch.arange(log_probs.shape[1])[None, :] < lengths[:, None]).unsqueeze(-1)
    out = log_probs * valid
    (out * torch.linspace(-1, 1, out.shape[-1], dtype=out.dtype)).sum().backward()
    return out.detach(), {name: p.grad.clone() for name, p in model.named_parameters()}


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_packed_and_padded_kernels_agree_on_a_padded_batch(cell: str) -> None:
    """The packed kernel (cuDNN's on a GPU) runs here on CPU: same parameters, outputs, gradients."""
    torch.manual_seed(0)
    model = AcousticModel(FeatureConfig(), ModelConfig(cell=cell, hidden_size=24, num_layers=2, dropout=0.0), 29)
    model = model.double()  # float64: what differs is the kernels, not fp32 summation order
    feats, frames = torch.randn(3, 90, 80, dtype=torch.float64), torch.tensor([90, 61, 17])
    names = [name for name, _ in model.named_parameters()]
    padded, padded_grads = _kernel_outputs(model, "padded", feats, frames)
    packed, packed_grads = _kernel_outputs(model, "packed", feats, frames)
    assert [name for name, _ in model.named_parameters()] == names  # the kernel is not in the names
    assert "rnns.0.backward_rnn.weight_ih_l0" in names and not any("reverse" in n for n in names)
    torch.testing.assert_close(packed, padded, atol=1e-5, rtol=0)
    for name in names:
        torch.testing.assert_close(packed_grads[name], padded_grads[name], atol=1e-5, rtol=0, msg=name)


@pytest.mark.gpu
def test_cuda_runs_the_packed_kernel_and_agrees_with_the_cpu() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    torch.manual_seed(0)
    model = AcousticModel(FeatureConfig(), ModelConfig(hidden_size=64, num_layers=3, dropout=0.0), 29).eval()
    feats, frames = torch.randn(4, 120, 80), torch.tensor([120, 97, 50, 8])
    tf32, torch.backends.cudnn.allow_tf32 = torch.backends.cudnn.allow_tf32, False  # full fp32 in cuDNN
    try:
        with torch.no_grad():
            want, lengths = model(feats, frames)
            got, _ = model.cuda()(feats.cuda(), frames.cuda())
    finally:
        torch.backends.cudnn.allow_tf32 = tf32
    valid = (torch.arange(want.shape[1])[None, :] < lengths[:, None]).unsqueeze(-1)
    torch.testing.assert_close(got.cpu() * valid, want * valid, atol=1e-4, rtol=0)
