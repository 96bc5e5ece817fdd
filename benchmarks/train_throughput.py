"""Training throughput (images/s) of ``reidnb.core.engine.Trainer`` against a plain PyTorch loop.

Same model (torchvision ResNet-18 trunk + linear classifier, random init), same data
(random 3 x 128 x 64 images held in memory, served as dict batches by one DataLoader),
same loss (cross-entropy) and optimiser (SGD, momentum 0.9, weight decay 5e-4). On a GPU
both loops use bf16 autocast (fp16 + GradScaler where bf16 is missing) and channels_last;
on the CPU both run plain float32. The plain loop reads the loss back every step
(``loss.item()``), as any loop that logs or checks its loss does; the Trainer also
computes its per-batch distance statistics and NaN check, which is the overhead measured.

Part [1] compares the two on ResNet-18. On a shared CPU its per-round noise can exceed
the difference sought, so part [2] measures the loop's own cost directly: the same two
loops around a near-free model (average pooling + two linear layers), where the time per
iteration is almost all loop overhead (collate, copies, bookkeeping); the difference,
set against the ResNet-18 step time of part [1], is the Trainer's overhead.

Both loops start from the same weights (same seed) and warm up on ``--warmup`` batches;
then ``--rounds`` rounds each run ``--chunk`` batches through one loop and then the other
(the order flips every round), so both see the same load on a shared machine. Reported:
images per second of wall time (data loading included) and images per CPU-second of the
process (``time.process_time``, all threads: robust against other users of a shared CPU,
meaningless on a GPU where the host mostly waits).

Usage::

    python benchmarks/train_throughput.py                   # CPU here: 2 threads
    python benchmarks/train_throughput.py --rounds 10 --chunk 20 --batch-size 64  # GPU box

Reference mode (``--reference``): this machine's reference speed, img/s of a plain
torchvision ResNet-18 training step at 64x32, batch 64, warm-up excluded
(:func:`reidnb.core.bench.reference_speed`, timed for ``--seconds``); a portable unit for
run-time budgets::

    python benchmarks/train_throughput.py --reference --seconds 20

Quick-recipe mode (``--quick-recipe``): images/s of 01_bcloss's quick training end to end
(loader included), the file pipeline with DataLoader workers against the decode-once memory
cache with whole-batch augmentation (``reidnb.data.memory``)::

    python benchmarks/train_throughput.py --quick-recipe --warmup 5 --iters 60

Backbone mode (``--backbone``): training img/s of one backbone + linear classifier on random
in-memory batches (:func:`reidnb.core.cost.measure_img_per_s`), at ``--height`` x ``--width``,
per ``--precision`` (fp32, bf16+channels_last, or both on CUDA); ``--append PATH`` adds the
measured rows to a throughput table (``reidnb.core.cost``; ``user`` = the user-local one)::

    python benchmarks/train_throughput.py --backbone resnet50 --height 256 --width 128 \
        --precision both --batch-size 64 --iters 20 --append user        # GPU box
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from reidnb.core.engine import Trainer  # noqa: E402
from reidnb.losses import Term, cross_entropy  # noqa: E402
from reidnb.core.utils import resolve_device  # noqa: E402
from reidnb.core.bench import REFERENCE_SETUP, reference_speed  # noqa: E402
from reidnb.core import cost  # noqa: E402


class ResNet18Classifier(nn.Module):
    """ResNet-18 trunk -> 512-d GAP feature (``embeddings``) -> linear ``logits``."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.trunk = torchvision.models.resnet18(weights=None)
        self.trunk.fc = nn.Identity()
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        emb = self.trunk(x)                          # [N, 512]
        if not self.training:
            return emb
        return {"logits": self.classifier(emb), "embeddings": emb}


class InMemory(Dataset):
    def __init__(self, n: int, num_classes: int, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.imgs = torch.randn(n, 3, 128, 64, generator=g)        # [N, 3, H, W]
        self.pids = torch.randint(0, num_classes, (n,), generator=g)

    def __len__(self):
        return len(self.pids)

    def __getitem__(self, i):
        return {"img": self.imgs[i], "pid": self.pids[i], "index": i}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class PlainLoop:
    """The reference loop, as one would write it by hand."""

    def __init__(self, model: nn.Module, device: torch.device, amp_dtype):
        self.device, self.amp_dtype = device, amp_dtype
        self.cuda = device.type == "cuda"
        self.model = model.to(device).train()
        if self.cuda:
            self.model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.01, momentum=0.9,
                                   weight_decay=5e-4)
        self.scaler = torch.amp.GradScaler("cuda") if amp_dtype is torch.float16 else None

    def run(self, loader) -> int:
        n = 0
        for batch in loader:
            x = batch["img"].to(self.device, non_blocking=True)      # [B, 3, 128, 64]
            y = batch["pid"].to(self.device, non_blocking=True)      # [B]
            if self.cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(self.device.type, dtype=self.amp_dtype,
                                enabled=self.amp_dtype is not None):
                out = self.model(x)
            loss = F.cross_entropy(out["logits"].float(), y)
            self.opt.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(loss).backward()
                self.scaler.step(self.opt)
                self.scaler.update()
            else:
                loss.backward()
                self.opt.step()
            loss.item()
            n += len(y)
        return n


class TrainerLoop:
    """The same work through ``reidnb.core.engine.Trainer`` (one ``fit`` epoch per call)."""

    def __init__(self, model: nn.Module, device: torch.device):
        self.tr = Trainer(model, {"ce": (1.0, Term(cross_entropy, key="logits"))},
                          device=device, lr=0.01, momentum=0.9, weight_decay=5e-4,
                          progress=False)

    def run(self, loader) -> int:
        self.tr.fit(loader, epochs=self.tr.epoch + 1)
        return len(loader.dataset)


class TinyClassifier(nn.Module):
    """Almost free model (pool to 3x4x2, linear): its step time is the loop's own overhead."""

    def __init__(self, num_classes: int):
        super().__init__()
        self.embed = nn.Linear(24, 512)
        self.classifier = nn.Linear(512, num_classes)

    def forward(self, x):
        emb = self.embed(F.adaptive_avg_pool2d(x, (4, 2)).flatten(1))   # [N, 512]
        if not self.training:
            return emb
        return {"logits": self.classifier(emb), "embeddings": emb}


def compare(make, args, device, amp_dtype, chunk_iters: int) -> dict[str, dict]:
    """Alternating rounds of both loops; per loop: images, wall and CPU seconds, rounds."""
    cuda, bs = device.type == "cuda", args.batch_size
    warm = DataLoader(InMemory(args.warmup * bs, args.num_classes, seed=1), batch_size=bs,
                      shuffle=True, pin_memory=cuda)
    chunk = DataLoader(InMemory(chunk_iters * bs, args.num_classes, seed=2), batch_size=bs,
                       shuffle=True, pin_memory=cuda)
    loops = {"plain loop": PlainLoop(make(args.num_classes, 0), device, amp_dtype),
             "Trainer": TrainerLoop(make(args.num_classes, 0), device)}
    for loop in loops.values():
        loop.run(warm)
    res = {name: {"images": 0, "wall": 0.0, "cpu": 0.0, "rounds": []} for name in loops}
    names = list(loops)
    for r in range(args.rounds):            # alternate, so both see the same machine load
        for name in (names if r % 2 == 0 else names[::-1]):
            if cuda:
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.process_time()
            n = loops[name].run(chunk)
            if cuda:
                torch.cuda.synchronize()
            dt = time.perf_counter() - t0
            res[name]["images"] += n
            res[name]["wall"] += dt
            res[name]["cpu"] += time.process_time() - c0
            res[name]["rounds"].append(n / dt)
    return res


def _with_torch(make):
    def build(num_classes, seed):
        torch.manual_seed(seed)
        return make(num_classes)
    return build


def build_backbone_classifier(backbone: str, num_classes: int) -> nn.Module:
    """The network a throughput row is measured on: torchvision ``resnet*`` (random init,
    fc -> ``num_classes``) or ``dgd`` (MaskReID's DGD network alone: single stream, no
    fusion; registered by the maskreid paper package)."""
    if backbone == "dgd":
        import importlib

        importlib.import_module("reidnb.papers.maskreid")   # registers "maskreid"
        from reidnb.models import build_model
        return build_model("maskreid", num_classes, backbone="dgd", use_mask=False,
                           fusion=False, pretrained=False)
    net = getattr(torchvision.models, backbone)(weights=None)
    net.fc = nn.Linear(net.fc.in_features, num_classes)
    return net


def measure_backbone(args) -> list[dict]:
    """``--backbone`` mode: one throughput row per precision (printed; appended with
    ``--append``)."""
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    precs = {"both": ["fp32", "bf16+channels_last"]}.get(args.precision, [args.precision])
    if not cuda:
        precs = [p for p in precs if p == "fp32"] or ["fp32"]
    name = torch.cuda.get_device_name(device) if cuda else cpu_name()
    load0 = os.getloadavg()[0]
    cmd = "python benchmarks/train_throughput.py " + " ".join(sys.argv[1:])
    rows = []
    for prec in precs:
        torch.manual_seed(0)
        net = build_backbone_classifier(args.backbone, args.num_classes)
        r = cost.measure_img_per_s(net, args.height, args.width, args.batch_size, device=device,
                                   precision=prec, num_classes=args.num_classes,
                                   iters=args.iters, warmup=args.warmup,
                                   max_seconds=args.max_seconds)
        note = (f"random in-memory batches, {args.warmup} warm-up step(s) untimed"
                + (f"; torch {torch.__version__}, cudnn.allow_tf32="
                   f"{torch.backends.cudnn.allow_tf32}, matmul.allow_tf32="
                   f"{torch.backends.cuda.matmul.allow_tf32}" if cuda else
                   f"; {torch.get_num_threads()} torch threads, shared CPU, "
                   f"1-min load ~{load0:.1f}-{os.getloadavg()[0]:.1f}"))
        rows.append(dict(device_kind=device.type, device_name=name, backbone=args.backbone,
                         height=args.height, width=args.width, precision=prec,
                         batch_size=args.batch_size, img_per_s=round(r["img_per_s"], 2),
                         measured=time.strftime("%Y-%m-%d"), source=cmd,
                         notes=f"{note}; {r['steps']} timed steps in {r['seconds']:.1f} s"))
        print(f"{args.backbone} {args.height}x{args.width} batch {args.batch_size} {prec} on "
              f"{device.type} ({name}): {r['img_per_s']:.1f} img/s ({r['steps']} steps, "
              f"{r['seconds']:.1f} s)", flush=True)
    if len(rows) == 2:
        print(f"bf16+channels_last / fp32 = {rows[1]['img_per_s'] / rows[0]['img_per_s']:.2f}x")
    if args.append:
        path = cost.append_throughput(rows, None if args.append == "user" else args.append)
        print(f"appended {len(rows)} row(s) to {path}")
    return rows


def measure_quick_recipe(args) -> list[dict]:
    """``--quick-recipe`` mode: images/s of the quick profile's own training, end to end.

    01_bcloss's quick recipe (synthetic quick set, ResNet-18 at 64x32, batches of 16, the
    joint softmax + B-C loss, flip + pad/crop) through :class:`reidnb.core.engine.Trainer`,
    loader included, once with the file pipeline (``ImageDataset`` decoding every item with
    the profile's DataLoader workers; before issue 15) and once with the memory cache
    (decoded once, whole batches augmented: :mod:`reidnb.data.memory`; the quick default
    now). Each: ``--warmup`` untimed iterations (worker start-up), then ``--iters`` timed
    ones (the Trainer's per-iteration wall time: waiting for the batch + the step). The
    one-off decode of the memory cache is printed separately.
    """
    import tempfile

    from reidnb.models import build_model
    from reidnb.papers import bcloss
    from reidnb.papers.common import load_data, stage_loader

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, mem in (("files + DataLoader workers", False),
                           ("memory cache + batch augmentation", True)):
            cfg = bcloss.Config.make("quick", memory_cache=mem, device=args.device,
                                     output_dir=tmp)
            ds = load_data(cfg, verbose=False)
            stage = bcloss.main_stage(cfg, len(ds.train))
            t0 = time.perf_counter()
            loader = stage_loader(cfg, ds, stage)
            build = time.perf_counter() - t0
            torch.manual_seed(0)
            net = build_model(bcloss.MODEL, ds.num_train_pids, backbone=cfg.backbone,
                              pretrained=False, dropout=float(cfg.dropout))
            losses = bcloss.losses_for("joint", ds.num_train_pids,
                                       bcloss.feat_dim_of(cfg.backbone),
                                       reduction=cfg.loss_reduction)
            tr = Trainer(net, losses, device=cfg.device, lr=stage.lr, progress=False)
            hist = tr.fit(loader, max_iters=args.warmup + args.iters).iloc[args.warmup:]
            secs = float((stage.batch_size / hist["img_per_s"]).sum())
            speed = len(hist) * stage.batch_size / secs
            rows.append(dict(pipeline=label, workers=loader.num_workers, img_per_s=speed,
                             build_seconds=build))
            print(f"{label:<36} workers {loader.num_workers}: {speed:6.1f} img/s end to end "
                  f"({len(hist)} iterations of {stage.batch_size}; loader built in "
                  f"{build:.1f} s)", flush=True)
    if len(rows) == 2:
        print(f"memory / files = {rows[1]['img_per_s'] / rows[0]['img_per_s']:.2f}x")
    return rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=6, help="alternating timed rounds")
    ap.add_argument("--chunk", type=int, default=2, help="ResNet-18 iterations per round")
    ap.add_argument("--overhead-chunk", type=int, default=25,
                    help="iterations per round of the near-free model (0: skip that part)")
    ap.add_argument("--warmup", type=int, default=2, help="untimed iterations per loop")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--num-classes", type=int, default=8)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    ap.add_argument("--reference", action="store_true",
                    help="print this machine's reference speed (ResNet-18 64x32 batch 64 img/s)")
    ap.add_argument("--seconds", type=float, default=10.0, help="reference mode: timed seconds")
    ap.add_argument("--backbone", default=None,
                    help="backbone mode: resnet18/resnet50/... or dgd (img/s of one network)")
    ap.add_argument("--height", type=int, default=256, help="backbone mode: image height")
    ap.add_argument("--width", type=int, default=128, help="backbone mode: image width")
    ap.add_argument("--precision", default="fp32",
                    choices=["fp32", "bf16+channels_last", "both"],
                    help="backbone mode (bf16 on CUDA only)")
    ap.add_argument("--iters", type=int, default=10, help="backbone mode: timed steps")
    ap.add_argument("--max-seconds", type=float, default=None,
                    help="backbone mode: stop timing after this many seconds")
    ap.add_argument("--append", default=None,
                    help="backbone mode: append the rows to this throughput CSV ('user': "
                         "the user-local table of reidnb.core.cost)")
    ap.add_argument("--quick-recipe", action="store_true",
                    help="img/s of the quick recipe end to end (01_bcloss, loader included): "
                         "file pipeline vs memory cache")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    if args.quick_recipe:
        measure_quick_recipe(args)
        return
    if args.reference:
        speed = reference_speed(args.seconds, device=args.device)
        device = resolve_device(args.device)
        where = (torch.cuda.get_device_name(device) if device.type == "cuda" else
                 f"CPU {cpu_name()}, {torch.get_num_threads()} torch threads, load average "
                 f"{', '.join(f'{x:.1f}' for x in os.getloadavg())} (a shared CPU moves it)")
        print(f"reference speed: {speed:.1f} img/s ({REFERENCE_SETUP}; {where})")
        return
    if args.backbone:
        measure_backbone(args)
        return
    device = resolve_device(args.device)
    cuda = device.type == "cuda"
    amp_dtype = None
    if cuda:
        amp_dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    gpu = torch.cuda.get_device_name(device) if cuda else "none"
    prec = {None: "fp32", torch.bfloat16: "bf16 autocast", torch.float16: "fp16 autocast"}
    print(f"hardware: CPU {cpu_name()} ({os.cpu_count()} logical CPUs, torch threads "
          f"{torch.get_num_threads()}); GPU {gpu}; load average "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"torch {torch.__version__}, device {device}, {prec[amp_dtype]}"
          f"{' + channels_last' if cuda else ''}; batch {args.batch_size} of 3x128x64; "
          f"{args.rounds} alternating rounds per model (+{args.warmup} warm-up iterations)",
          flush=True)
    clock = "wall" if cuda else "cpu"   # CPU time: robust to other users of a shared CPU

    print(f"\n[1] ResNet-18 + linear({args.num_classes}), {args.chunk} iterations per round")
    res = compare(_with_torch(ResNet18Classifier), args, device, amp_dtype, args.chunk)
    print(f"{'loop':<12}{'img/s (wall)':>14}{'img per CPU-s':>15}{'images':>8}"
          "   img/s (wall) of each round")
    for name, r in res.items():
        print(f"{name:<12}{r['images'] / r['wall']:>14.1f}{r['images'] / r['cpu']:>15.1f}"
              f"{r['images']:>8d}   " + " ".join(f"{x:.1f}" for x in r["rounds"]))
    ratio = {c: (res["Trainer"]["images"] / res["Trainer"][c])
             / (res["plain loop"]["images"] / res["plain loop"][c]) for c in ("wall", "cpu")}
    print(f"Trainer / plain loop: wall {ratio['wall']:.3f}, CPU time {ratio['cpu']:.3f} "
          "(1.0 = no overhead)")
    step_ms = 1000 * res["plain loop"][clock] / (res["plain loop"]["images"] / args.batch_size)

    if args.overhead_chunk > 0:
        print(f"\n[2] loop overhead alone: near-free model, {args.overhead_chunk} iterations "
              "per round")
        ov = compare(_with_torch(TinyClassifier), args, device, amp_dtype,
                     args.overhead_chunk)
        ms = {name: 1000 * r[clock] / (r["images"] / args.batch_size) for name, r in ov.items()}
        for name, v in ms.items():
            print(f"{name:<12}{v:>8.2f} ms per iteration ({clock} time)")
        extra = ms["Trainer"] - ms["plain loop"]
        print(f"Trainer overhead {extra:.2f} ms per iteration = {100 * extra / step_ms:.1f}% "
              f"of a ResNet-18 step of the plain loop ({step_ms:.0f} ms, {clock} time) -> "
              f"expected Trainer / plain loop = {step_ms / (step_ms + extra):.3f}")


if __name__ == "__main__":
    main()
