"""DDP / NCCL smoke test: run under ``torchrun``; prints ``DDP smoke OK`` or exits non-zero.

What it checks, on every rank:

1. the process group starts from torchrun's environment
   (:func:`reidnb.core.distributed.init_from_env`: NCCL on CUDA, gloo on the CPU);
2. ``all_reduce`` (sum) of ``rank + 1`` gives ``W (W + 1) / 2`` for world size W;
3. a few SGD steps of a small conv net wrapped in ``DistributedDataParallel`` (bf16
   autocast and channels_last on CUDA, as the Trainer) give finite losses, and after the
   steps the parameters are equal on every rank (DDP's gradient all-reduce works);
4. :class:`reidnb.core.engine.Trainer` trains 3 iterations inside the process group.

Usage::

    torchrun --standalone --nproc_per_node=1 benchmarks/ddp_smoke.py            # GPU box
    torchrun --standalone --nproc_per_node=1 benchmarks/ddp_smoke.py --device cpu   # gloo
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reidnb.core.distributed import init_from_env  # noqa: E402
from reidnb.core.engine import Trainer  # noqa: E402
from reidnb.losses import Term, cross_entropy  # noqa: E402


class SmallNet(nn.Module):
    """conv 3->16 (stride 2) -> BN -> ReLU -> GAP -> linear(num_classes); dict in training."""

    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16),
                                  nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(16, num_classes)

    def forward(self, x):
        emb = self.body(x)                                   # [N, 16]
        if not self.training:
            return emb
        return {"logits": self.classifier(emb), "embeddings": emb}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=5)
    args = ap.parse_args(argv)
    if "WORLD_SIZE" not in os.environ:
        print("ddp_smoke.py: run me under torchrun (WORLD_SIZE is not set)", file=sys.stderr)
        return 2
    cuda = args.device.startswith("cuda")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if not dist.is_initialized():
        # init_from_env does nothing at WORLD_SIZE=1; the smoke wants a real group anyway
        if int(os.environ["WORLD_SIZE"]) > 1:
            init_from_env(str(device))
        else:
            if cuda:
                torch.cuda.set_device(device)
            dist.init_process_group(backend="nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    backend = dist.get_backend()

    t = torch.tensor([float(rank + 1)], device=device)
    dist.all_reduce(t)
    want = world * (world + 1) / 2
    if float(t.item()) != want:
        raise SystemExit(f"all_reduce: got {t.item()}, expected {want}")

    torch.manual_seed(0)
    net = SmallNet().to(device)
    if cuda:
        net = net.to(memory_format=torch.channels_last)
    ddp = nn.parallel.DistributedDataParallel(net, device_ids=[local] if cuda else None)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.1, momentum=0.9)
    g = torch.Generator().manual_seed(100 + rank)
    losses = []
    for _ in range(args.steps):
        x = torch.randn(8, 3, 32, 16, generator=g).to(device)
        y = torch.randint(0, 10, (8,), generator=g).to(device)
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cuda):
            out = ddp(x)
        loss = F.cross_entropy(out["logits"].float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    if not all(torch.isfinite(torch.tensor(losses))):
        raise SystemExit(f"non-finite DDP loss: {losses}")
    flat = torch.cat([p.detach().float().flatten() for p in net.parameters()])
    ref = flat.clone()
    dist.broadcast(ref, 0)
    if not torch.equal(flat, ref):
        raise SystemExit(f"rank {rank}: parameters differ from rank 0 after DDP steps")

    data = [{"img": torch.randn(3, 32, 16, generator=g), "pid": int(i % 4), "index": i}
            for i in range(24)]
    loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=False)
    tr = Trainer(SmallNet(4), {"ce": (1.0, Term(cross_entropy, key="logits"))}, device=device,
                 lr=0.01, progress=False)
    hist = tr.fit(loader, epochs=1, max_iters=3)
    dist.barrier()
    if rank == 0:
        name = torch.cuda.get_device_name(device) if cuda else "cpu"
        print(f"DDP smoke OK: backend {backend}, world {world}, device {name}; all_reduce "
              f"{t.item():g}; DDP losses {', '.join(f'{v:.3f}' for v in losses)}; Trainer "
              f"{len(hist)} iterations in the group")
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
