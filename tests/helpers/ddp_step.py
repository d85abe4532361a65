"""One training step on a fixed global batch of 5 utterances, run alone or under torchrun
(gloo): each rank takes utterances ``rank::world`` and rank 0 saves the loss and the
gradients to ``sys.argv[1]``. Used by tests/test_distributed.py."""

import sys

import torch

from asr.checkpoint import build
from asr.config import ExperimentConfig, ModelConfig, TrainConfig
from asr.data import collate
from asr.train import _rank, setup_distributed, train_step


def main(out: str) -> None:
    device = setup_distributed("cpu")
    rank, world = _rank()
    cfg = ExperimentConfig(
        model=ModelConfig(hidden_size=32, num_layers=2, conv_channels=8, dropout=0.0),
        train=TrainConfig(spec_augment=False, precision="fp32", grad_clip=1.0),
    )
    torch.manual_seed(0)
    loaded = build(cfg)
    model = torch.nn.parallel.DistributedDataParallel(loaded.model) if world > 1 else loaded.model
    g = torch.Generator().manual_seed(1)
    items = []
    for i, samples in enumerate([16000, 9000, 12000, 5000, 14000]):  # different lengths: padding differs per rank
        audio = 0.1 * torch.randn(samples, generator=g)
        items.append((audio, torch.randint(1, 28, (samples // 1600,), generator=g), f"u{i}"))
    optimizer = torch.optim.AdamW(loaded.model.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    result = train_step(loaded, model, collate(items[rank::world]), optimizer, scaler, cfg, device)
    if rank == 0:
        grads = {name: p.grad.clone() for name, p in loaded.model.named_parameters()}
        torch.save({"loss": result.loss, "utterances": result.utterances, "grads": grads}, out)
    if world > 1:  # gloo's threads left running at exit can abort the process
        torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
