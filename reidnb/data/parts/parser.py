"""The light part parser: network, training (through the Trainer), scores, checkpoints, use.

A small segmentation network (:class:`PartParser`, reidnb's own) learns the 8 part labels
of :mod:`.labels` from label-derived (or exact synthetic) part maps and labels every image
that has none (query, gallery, unlabelled training images, the small-scale sets).

- :func:`build_parser`: ``"tiny"`` (:class:`PartParser`, the CPU default) or ``"lraspp"``
  (torchvision's LR-ASPP MobileNetV3-Large from scratch, for a GPU);
- :func:`train_parser`: pixel-wise cross-entropy (optionally class-weighted) trained by
  :class:`reidnb.core.engine.Trainer`, held-out scores on unseen identities;
- :func:`evaluate_parser`: mIoU / per-class IoU / pixel accuracy / foreground IoU
  (:mod:`reidnb.evaluation.segmentation`);
- :func:`save_parser` / :func:`load_parser`: ``weights_only`` checkpoints;
- :func:`predict_parts`: part maps at each image's own size.

Measured on Market-1501 (shared 2-core CPU, ``num_threads=1``; defaults: 5,000 labelled
images x 2 epochs = 312 Trainer steps): held-out mIoU 0.560 on 1,237 images of 75 unseen
identities (pixel accuracy 0.803, foreground IoU 0.740; foot IoU 0.37), trained in 109 s
at 91 img/s. The former own training loop (AdamW + one-cycle) gave 0.570 / 0.811 / 0.746.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from ...core.engine import Trainer
from ...core.utils import atomic_path, resolve_device, seed_everything
from ...evaluation.segmentation import confusion_matrix, segmentation_scores
from ..datasets import ImageDataset, _open_rgb
from ..transforms import build_transforms, normalize
from .labels import NUM_PARTS, PART_NAMES

__all__ = ["PARSER_SIZE", "PartParser", "PartCrossEntropy", "build_parser", "train_parser",
           "evaluate_parser", "predict_parts", "save_parser", "load_parser"]

#: Parser input size (H, W) in pixels: Market-1501's own size.
PARSER_SIZE = (128, 64)
_CKPT_FORMAT = "reidnb.masks.parser/1"     # unchanged since reidnb.masks: old files load


# --------------------------------------------------------------------------- networks


def _cbr(cin: int, cout: int, stride: int = 1, dilation: int = 1, k: int = 3) -> nn.Sequential:
    """Conv k x k (no bias, "same" padding) + BatchNorm + ReLU."""
    pad = dilation * (k // 2)
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, pad, dilation=dilation, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PartParser(nn.Module):
    """A light encoder-decoder for 8-class part segmentation (reidnb's own, 0.16 M params).

    Input: float [N, 3, H, W], ImageNet-normalised (128 x 64 in reidnb). Two coordinate
    channels (row and column in [-1, 1]) are appended inside, since a part's identity in
    a pedestrian crop depends strongly on its height (CoordConv, Liu et al., NeurIPS 2018).

    Layout (H x W = 128 x 64; every conv 3x3 + BN + ReLU unless noted):
    encoder /2 (24 ch, 64x32) -> /4 (32 ch, 32x16) -> 32 ch -> /8 (64 ch, 16x8) -> three
    64-ch convs with dilation 1, 2, 4 (receptive field ~135 px: the whole crop); decoder:
    bilinear up to /4, concat the /4 features, 1x1 -> 32, 3x3 -> 32, 1x1 -> classes,
    bilinear x4 to the input size.

    Output: logits float [N, num_classes, H, W].

    Why not torchvision's ``lraspp_mobilenet_v3_large`` (3.2 M params, from scratch): on
    the shared 2-core CPU (1 thread, load ~9) it trained at 15-19 img/s and labelled
    59-65 img/s, this net at 62-69 and 148-235 img/s; the query+gallery labelling (23k
    images) and a 2-4 min training budget need the latter. ``build_parser("lraspp")``
    keeps torchvision's model for a GPU.
    """

    def __init__(self, num_classes: int = NUM_PARTS, widths: tuple[int, int, int] = (24, 32, 64)):
        super().__init__()
        c1, c2, c3 = widths
        self.num_classes = num_classes
        self.enc4 = nn.Sequential(_cbr(3 + 2, c1, 2), _cbr(c1, c2, 2), _cbr(c2, c2))
        self.enc8 = nn.Sequential(_cbr(c2, c3, 2), _cbr(c3, c3), _cbr(c3, c3, dilation=2),
                                  _cbr(c3, c3, dilation=4))
        self.fuse = nn.Sequential(_cbr(c3 + c2, c2, k=1), _cbr(c2, c2))
        self.head = nn.Conv2d(c2, num_classes, 1)

    @staticmethod
    def _coords(x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype).view(1, 1, h, 1)
        xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype).view(1, 1, 1, w)
        return torch.cat([ys.expand(n, 1, h, w), xs.expand(n, 1, h, w)], 1)  # [N, 2, H, W]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f4 = self.enc4(torch.cat([x, self._coords(x)], 1))        # [N, c2, H/4, W/4]
        f8 = self.enc8(f4)                                         # [N, c3, H/8, W/8]
        up = F.interpolate(f8, size=f4.shape[-2:], mode="bilinear", align_corners=False)
        y = self.head(self.fuse(torch.cat([up, f4], 1)))           # [N, K, H/4, W/4]
        return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)


class _LRASPP(nn.Module):
    """torchvision ``lraspp_mobilenet_v3_large`` from scratch, returning the logits tensor."""

    def __init__(self, num_classes: int = NUM_PARTS):
        super().__init__()
        from torchvision.models.segmentation import lraspp_mobilenet_v3_large

        self.net = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None,
                                             num_classes=num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)["out"]


_PARSERS: dict[str, Callable[[], nn.Module]] = {"tiny": PartParser, "lraspp": _LRASPP}


def build_parser(arch: str = "tiny", image_size: Sequence[int] = PARSER_SIZE) -> nn.Module:
    """The part parser ``arch`` (``"tiny"``: :class:`PartParser`, the CPU default;
    ``"lraspp"``: torchvision's LR-ASPP MobileNetV3-Large from scratch), 8 classes,
    forward ``[N, 3, H, W] -> logits [N, 8, H, W]``. ``image_size`` (H, W) in pixels is the
    size the parser sees (stored as ``model.image_size``): images are resized to it and
    the logits resized back (:func:`predict_parts`, :func:`evaluate_parser`).

    Raises:
        KeyError: unknown ``arch`` (message lists the known ones).
    """
    if arch not in _PARSERS:
        raise KeyError(f"unknown parser arch {arch!r}; expected one of {sorted(_PARSERS)}")
    model = _PARSERS[arch]()
    model.image_size = (int(image_size[0]), int(image_size[1]))
    return model


def _run(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Logits [N, K, H, W] at the size of ``x`` [N, 3, H, W]; ``x`` is first resized to the
    parser's own input size (``model.image_size``) when that differs."""
    size = tuple(getattr(model, "image_size", x.shape[-2:]))
    if size == tuple(x.shape[-2:]):
        return model(x)
    y = model(F.interpolate(x, size=size, mode="bilinear", align_corners=False,
                            antialias=True))
    return F.interpolate(y, size=x.shape[-2:], mode="bilinear", align_corners=False)



# --------------------------------------------------------------------------- scores


def _loader(records, transform, batch_size, shuffle, workers, seed, load_parts=True):
    """DataLoader of :class:`ImageDataset` items; drops the last partial batch when
    shuffling (training) and at least one full batch exists."""
    ds = ImageDataset(records, transform, load_parts=load_parts)
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=shuffle,
                                       num_workers=workers, generator=g,
                                       drop_last=shuffle and len(ds) >= batch_size,
                                       persistent_workers=False)


@torch.inference_mode()
def evaluate_parser(model: nn.Module, records: Sequence, *, batch_size: int = 128,
                    device: str | torch.device = "auto", workers: int = 0) -> dict[str, Any]:
    """Held-out scores of a parser on records with ``parts`` maps.

    Args:
        model: a parser (:func:`build_parser`); put in eval mode on ``device``.
        records: :class:`~reidnb.data.datasets.Record` s whose ``parts`` path is set.
        batch_size, device, workers: inference settings.

    Returns:
        dict with ``miou`` (mean IoU over the 8 classes, those present), ``per_class_iou``
        (name -> IoU in [0, 1], NaN if a class is absent from both), ``pixel_acc``,
        ``fg_iou`` (IoU of the foreground mask), ``n_images``. Computed at the parser's
        input size (128 x 64) from one confusion matrix over all pixels
        (:func:`reidnb.evaluation.segmentation.segmentation_scores`).

    Raises:
        ValueError: a record without a ``parts`` path (from :class:`ImageDataset`).
    """
    dev = resolve_device(device)
    model.eval().to(dev)
    conf = torch.zeros(NUM_PARTS, NUM_PARTS, dtype=torch.int64)
    tf = build_transforms(*PARSER_SIZE, is_train=False)
    for batch in _loader(records, tf, batch_size, False, workers, 0):
        pred = _run(model, batch["img"].to(dev)).argmax(1)
        conf += confusion_matrix(pred, batch["parts"].to(dev), NUM_PARTS)
    return {**segmentation_scores(conf, PART_NAMES), "n_images": len(records)}


# --------------------------------------------------------------------------- training


class PartCrossEntropy(nn.Module):
    """Pixel-wise cross-entropy of part logits as a Trainer term: ``term(outputs, batch)``.

    ``outputs[key]``: logits float [N, K, H, W]; ``batch[target_key]``: int64 part labels
    [N, H, W] in 0..K-1 at the same size. ``weight``: optional float32 [K] class weights
    (a buffer, so it follows the Trainer's device and checkpoints); ``None`` = plain
    pixel cross-entropy (then the same as ``reidnb.losses.MaskTerm`` at full size).
    Returns a 0-d float32 tensor (mean over pixels, weighted as ``F.cross_entropy``).
    """

    def __init__(self, weight: torch.Tensor | None = None, key: str = "seg_logits",
                 target_key: str = "parts"):
        super().__init__()
        self.key, self.target_key = key, target_key
        self.register_buffer("weight", None if weight is None else weight.float())

    def forward(self, outputs: dict, batch: dict) -> torch.Tensor:
        return F.cross_entropy(outputs[self.key].float(), batch[self.target_key],
                               weight=self.weight)


class _SegOutputs(nn.Module):
    """The Trainer's view of a parser: ``forward(img) -> {"seg_logits": logits}``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"seg_logits": self.net(x)}


def _split_by_identity(records: list, val_fraction: float, max_images: int | None,
                       rng: np.random.Generator) -> tuple[list, list, set]:
    """(train, held-out, held-out pids): a random ``val_fraction`` of the identities held
    out (at least 1 and at most all but 1 when ``val_fraction > 0``); train capped at a
    random ``max_images`` of its images."""
    pids = sorted({r.pid for r in records})
    n_val_pids = int(round(val_fraction * len(pids)))
    if val_fraction > 0 and len(pids) >= 2:
        n_val_pids = min(max(n_val_pids, 1), len(pids) - 1)
    val_pids = (set(rng.choice(pids, size=n_val_pids, replace=False).tolist())
                if n_val_pids else set())
    train = [r for r in records if r.pid not in val_pids]
    val = [r for r in records if r.pid in val_pids]
    if max_images is not None and len(train) > max_images:
        keep = np.sort(rng.choice(len(train), size=max_images, replace=False))
        train = [train[i] for i in keep]
    return train, val, val_pids


def train_parser(records_with_parts: Sequence, *, epochs: int = 2, batch_size: int = 32,
                 device: str | torch.device = "auto", seed: int = 0,
                 val_fraction: float = 0.1, max_images: int | None = None,
                 arch: str = "tiny", lr: float = 3e-3, weight_decay: float = 1e-4,
                 max_iters: int | None = None, workers: int = 0,
                 image_size: Sequence[int] = PARSER_SIZE,
                 class_weights: str | None = "sqrt_inv", verbose: bool = True
                 ) -> tuple[nn.Module, dict[str, Any]]:
    """Train the part parser with pixel-wise cross-entropy on (image, part map) pairs.

    The held-out set is a random ``val_fraction`` of the **identities** (pids), so its
    mIoU measures images of unseen people, as query and gallery are. Training runs in
    :class:`reidnb.core.engine.Trainer` (one :class:`PartCrossEntropy` term): Adam
    (``lr``, L2 ``weight_decay``), a one-cycle-like per-iteration schedule (linear warm-up
    from lr/25 over the first 10% of the steps, then x0.1 at 60% and again at 85%),
    128 x 64 inputs, horizontal flip (part labels have no side, so a flip keeps them
    valid) and pad 4 + random crop (``reidnb.data.transforms.build_transforms``), batches
    from ``reidnb.data.datasets.ImageDataset(load_parts=True)``. On CUDA the Trainer's
    mixed precision applies.

    Args:
        records_with_parts: records whose ``parts`` path is set (e.g. label-derived maps).
        epochs: passes over the training images.
        batch_size: images per step.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``.
        seed: seeds the split, subset, initialisation and (per epoch, via the Trainer)
            shuffling and augmentation.
        val_fraction: share of identities held out for the report (0 = no report).
        max_images: train on at most this many images (a random subset of the training
            identities' images; ``None`` = all).
        arch: :func:`build_parser` name.
        lr, weight_decay: Adam's peak learning rate and L2 weight decay.
        class_weights: ``"sqrt_inv"`` (default): class c weighted by 1/sqrt(f_c), f_c its
            pixel frequency in (up to 1,000 of) the training maps, scaled so that
            sum_c f_c w_c = 1 (same loss scale); lifts the small parts (foot, lower arm:
            ~1.6% of the pixels each; own loop, Market-1501: mIoU 0.570 vs 0.530, foot
            IoU 0.37 vs 0.11). ``None``: plain pixel cross-entropy.
        image_size: (H, W) the parser trains and runs at (default 128 x 64; 64 x 32 is
            four times cheaper). The report is always measured at 128 x 64.
        max_iters: stop after this many steps (tests / smoke).
        workers: DataLoader worker processes.
        verbose: print the plan, the Trainer's progress bar and the held-out scores.

    Returns:
        ``(model, report)``: the model in eval mode; report = :func:`evaluate_parser`'s
        dict on the held-out images (``miou``, ``per_class_iou``, ``pixel_acc``,
        ``fg_iou``) plus ``n_train``, ``n_val``, ``n_val_pids``, ``epochs``, ``iters``,
        ``train_seconds``, ``train_img_per_s``, ``final_loss`` (EMA 0.9 of the step
        losses), ``arch``, ``seed``, ``class_weights``, ``image_size``.

    Raises:
        ValueError: a record without a ``parts`` path, fewer than 2 images, or
            ``val_fraction`` outside [0, 1); an unknown ``class_weights``.
        FloatingPointError: a non-finite loss (from the Trainer).
    """
    records = list(records_with_parts)
    missing = [r for r in records if r.parts is None]
    if missing:
        raise ValueError(f"train_parser: {len(missing)} of {len(records)} records have no "
                         f"parts path, e.g. {missing[0].path}")
    if len(records) < 2:
        raise ValueError(f"train_parser needs at least 2 labelled images, got {len(records)}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    seed_everything(seed)
    rng = np.random.default_rng(seed)
    train, val, val_pids = _split_by_identity(records, val_fraction, max_images, rng)

    dev = resolve_device(device)
    model = build_parser(arch, image_size)
    pad = max(1, round(4 * image_size[0] / PARSER_SIZE[0]))     # 4 px at 128 x 64
    tf = build_transforms(*image_size, is_train=True, flip_p=0.5, pad=pad)
    loader = _loader(train, tf, batch_size, True, workers, seed)
    total = max(1, epochs * len(loader))
    if max_iters is not None:
        total = min(total, max_iters)
    weight = _class_weights(train, class_weights, rng) if class_weights is not None else None
    trainer = Trainer(_SegOutputs(model), {"ce": (1.0, PartCrossEntropy(weight))},
                      device=dev, optimizer="adam", lr=lr, weight_decay=weight_decay,
                      warmup_iters=max(1, round(0.1 * total)), warmup_factor=1 / 25,
                      milestones=sorted({round(0.6 * total), round(0.85 * total)}),
                      seed=seed, progress=verbose)
    if verbose:
        print(f"parser ({arch}, {image_size[0]}x{image_size[1]}): training on {len(train)} "
              f"images, {epochs} epoch(s), {total} steps of {batch_size}; held out "
              f"{len(val)} images of {len(val_pids)} identities", flush=True)
    t0 = time.perf_counter()
    history = trainer.fit(loader, epochs=epochs, max_iters=total)
    train_s = time.perf_counter() - t0
    model.eval()
    loss_ema = math.nan
    for v in history["loss"]:
        loss_ema = v if math.isnan(loss_ema) else 0.9 * loss_ema + 0.1 * v
    seen = trainer.iteration * min(batch_size, len(train))   # full batches (drop_last)
    report: dict[str, Any] = {"miou": math.nan, "per_class_iou": {}, "pixel_acc": math.nan,
                              "fg_iou": math.nan}
    if val:
        report.update(evaluate_parser(model, val, batch_size=max(batch_size, 64),
                                      device=dev, workers=workers))
    report.update(n_train=len(train), n_val=len(val), n_val_pids=len(val_pids),
                  epochs=epochs, iters=trainer.iteration, train_seconds=round(train_s, 2),
                  train_img_per_s=round(seen / max(train_s, 1e-9), 1),
                  final_loss=float(loss_ema), arch=arch, seed=seed,
                  class_weights=None if weight is None else
                  [round(float(v), 4) for v in weight.cpu()],
                  image_size=list(model.image_size))
    report.pop("n_images", None)
    if verbose:
        print(f"parser: held-out mIoU {report['miou']:.3f}, pixel acc "
              f"{report['pixel_acc']:.3f}, foreground IoU {report['fg_iou']:.3f} "
              f"({len(val)} images of unseen identities); trained {train_s:.0f} s at "
              f"{report['train_img_per_s']} img/s, final loss {loss_ema:.3f}", flush=True)
    return model, report


def _class_weights(records, kind: str, rng: np.random.Generator) -> torch.Tensor:
    """float32 [8] class weights from the pixel frequencies of up to 1,000 part maps.

    Raises:
        ValueError: ``kind`` other than ``"sqrt_inv"``.
    """
    if kind != "sqrt_inv":
        raise ValueError(f"unknown class_weights {kind!r}; expected None or 'sqrt_inv'")
    pick = rng.choice(len(records), size=min(1000, len(records)), replace=False)
    counts = np.zeros(NUM_PARTS)
    for i in pick:
        with Image.open(records[i].parts) as im:
            counts += np.bincount(np.asarray(im).ravel(), minlength=NUM_PARTS)[:NUM_PARTS]
    freq = np.maximum(counts / counts.sum(), 1e-4)            # unseen class: capped weight
    w = 1.0 / np.sqrt(freq)
    return torch.tensor(w / (freq * w).sum(), dtype=torch.float32)


# --------------------------------------------------------------------------- checkpoints


def _parser_id(model: nn.Module) -> str:
    """First 16 hex digits of the SHA-1 of the state dict (names and bytes): names the
    parser whose predictions a cache folder holds."""
    h = hashlib.sha1()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def save_parser(model: nn.Module, path: str | os.PathLike, report: dict[str, Any],
                arch: str = "tiny") -> Path:
    """Write a parser checkpoint atomically: tensors and plain data only, so it loads
    with ``torch.load(path, weights_only=True)``. Keys: ``format``, ``arch``,
    ``state_dict``, ``image_size``, ``part_names``, ``parser_id``, ``report`` (JSON text)."""
    path = Path(path)
    ckpt = {"format": _CKPT_FORMAT, "arch": arch,
            "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
            "image_size": list(getattr(model, "image_size", PARSER_SIZE)),
            "part_names": list(PART_NAMES),
            "parser_id": _parser_id(model),
            "report": json.dumps(report, default=float)}
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return path


def load_parser(path: str | os.PathLike, device: str | torch.device = "cpu"
                ) -> tuple[nn.Module, dict[str, Any]]:
    """Load a checkpoint written by :func:`save_parser` (``weights_only=True``).

    Returns:
        ``(model in eval mode, info)`` with info = the stored report plus ``parser_id``,
        ``arch`` and ``path``.

    Raises:
        ValueError: the file is unreadable (empty, truncated, not a torch file), not a
            reidnb parser checkpoint, or its tensors do not fit the architecture (the
            message names the file, says it is a safe-to-delete cache and lists the
            mismatched keys).
    """
    path = Path(path)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - unreadable, empty or truncated: say which file
        raise ValueError(f"parser checkpoint {path} is unreadable ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else 'empty file'}); it is a "
                         "cache: delete it and a new parser is trained") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != _CKPT_FORMAT:
        raise ValueError(f"{path} is not a reidnb parser checkpoint (expected format "
                         f"{_CKPT_FORMAT!r}); delete it to train a new parser")
    model = build_parser(ckpt["arch"], ckpt.get("image_size", PARSER_SIZE))
    missing, unexpected = model.load_state_dict(ckpt["state_dict"], strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: checkpoint does not fit parser {ckpt['arch']!r}: missing "
                         f"{missing[:5]}, unexpected {unexpected[:5]}; delete it to retrain")
    info = json.loads(ckpt.get("report", "{}"))
    info.update(parser_id=ckpt["parser_id"], arch=ckpt["arch"], path=str(path))
    return model.to(resolve_device(device)).eval(), info


# --------------------------------------------------------------------------- prediction


class _ImageOnly(torch.utils.data.Dataset):
    """Decode images for prediction: item = (uint8 [3, 128, 64], index, (W, H) of the file).

    Images of another size are resized with PIL's bilinear filter (antialiased, like the
    training pipeline's ``v2.Resize(antialias=True)``); normalisation happens per batch.
    """

    def __init__(self, paths: Sequence[str]):
        self.paths = list(paths)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        img = _open_rgb(self.paths[i])
        size = img.size                                            # (W, H)
        h, w = PARSER_SIZE
        if size != (w, h):
            img = img.resize((w, h), Image.BILINEAR)
        x = torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)  # uint8 [3, H, W]
        return x, i, torch.tensor(size)


@torch.inference_mode()
def predict_parts(model: nn.Module, paths: Sequence[str], *, batch_size: int = 128,
                  device: str | torch.device = "auto", workers: int = 0
                  ) -> Iterator[tuple[int, np.ndarray]]:
    """Run a part parser over images, in batches.

    Each image is resized to 128 x 64, the logits are resized back to the image's own size
    (bilinear) and the argmax taken, so the map matches its image.

    Args:
        model: a parser (:func:`build_parser` / :func:`load_parser`).
        paths: image files (any size; RGB after decoding).
        batch_size, device, workers: inference settings.

    Yields:
        ``(index into paths, parts uint8 [H, W] with values 0..7)`` in order.

    Raises:
        OSError / FileNotFoundError: an image that cannot be decoded (names it).
    """
    dev = resolve_device(device)
    model.eval().to(dev)
    loader = torch.utils.data.DataLoader(_ImageOnly(paths), batch_size=batch_size,
                                         shuffle=False, num_workers=workers)
    for x, idx, sizes in loader:
        logits = _run(model, normalize(x.to(dev)))                # [B, 8, 128, 64]
        if bool((sizes == torch.tensor([PARSER_SIZE[1], PARSER_SIZE[0]])).all()):
            pred = logits.argmax(1).to(torch.uint8).cpu().numpy()  # [B, 128, 64]
            for j, i in enumerate(idx.tolist()):
                yield i, pred[j]
        else:
            for j, i in enumerate(idx.tolist()):
                w, h = sizes[j].tolist()
                lj = F.interpolate(logits[j:j + 1], size=(h, w), mode="bilinear",
                                   align_corners=False)
                yield i, lj.argmax(1)[0].to(torch.uint8).cpu().numpy()
