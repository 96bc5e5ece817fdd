"""torchrun worker of tests/test_cli.py (not a test module): a small P x K recipe.

``python -m torch.distributed.run --nproc_per_node=W tests/ddp_worker.py OUT.pt`` (or plain
``python tests/ddp_worker.py OUT.pt`` for one process) trains a tiny conv net without
BatchNorm or dropout with cross-entropy on P x K batches of 8 images (P = 4 identities x
K = 2) for 3 epochs through :class:`reidnb.core.engine.Trainer`; under torchrun each batch is
split over the ranks by :func:`reidnb.papers.common.split_for_ranks` (global batch 8 =
per-rank 4 x 2). Rank 0 saves the final weights, the iterations and the per-rank batch.
"""
from __future__ import annotations

import sys
import types

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from reidnb.core.distributed import init_from_env, rank_world
from reidnb.core.engine import Trainer
from reidnb.data.samplers import RandomIdentitySampler
from reidnb.losses import Term, cross_entropy
from reidnb.papers.common import split_for_ranks

IDS, PER_ID, P, K = 12, 4, 4, 2


class Toy(Dataset):
    """IDS x PER_ID fixed random 3 x 8 x 4 images; dict items as ImageDataset yields."""

    def __init__(self):
        g = torch.Generator().manual_seed(1)
        self.x = torch.randn(IDS * PER_ID, 3, 8, 4, generator=g)
        self.pids = [i // PER_ID for i in range(IDS * PER_ID)]

    def __len__(self):
        return len(self.pids)

    def __getitem__(self, i):
        return {"img": self.x[i], "pid": self.pids[i], "camid": i % 2, "index": i}


class Net(nn.Module):
    """conv -> ReLU -> linear embedding (16) -> classifier; eval returns the embedding."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.emb = nn.Linear(4 * 8 * 4, 16)
        self.cls = nn.Linear(16, IDS)

    def forward(self, x):
        e = self.emb(torch.relu(self.conv(x)).flatten(1))
        return {"logits": self.cls(e), "embeddings": e} if self.training else e


def main(out: str) -> None:
    init_from_env("cpu")
    rank, world = rank_world()
    torch.manual_seed(0)
    net, ds = Net(), Toy()
    sampler = RandomIdentitySampler(ds.pids, batch_size=P * K, num_instances=K, seed=0)
    loader = DataLoader(ds, batch_size=P * K, sampler=sampler, drop_last=True,
                        generator=torch.Generator().manual_seed(0))
    stage = types.SimpleNamespace(sampler="pk", num_instances=K, batch_size=P * K,
                                  iters_per_epoch=len(loader))
    loader = split_for_ranks(loader, stage, verbose=False)
    trainer = Trainer(net, {"ce": (1.0, Term(cross_entropy, key="logits"))}, device="cpu",
                      lr=0.05, weight_decay=5e-4, seed=0, progress=False)
    trainer.fit(loader, epochs=3)
    per_rank = int(len(next(iter(trainer._batches(loader, 0)))["pid"]))
    if rank == 0:
        torch.save({"model": net.state_dict(), "iterations": trainer.iteration,
                    "world_size": world, "per_rank_batch": per_rank}, out)


if __name__ == "__main__":
    main(sys.argv[1])
