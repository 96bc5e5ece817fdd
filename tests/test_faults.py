"""Fault injection: a full disk, SIGKILL during a save, truncated and empty files, an empty
optional folder. Nothing finished is lost, and every error names the file and the fix."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from reidnb.core.engine import CheckpointError, Trainer

ROOT = Path(__file__).resolve().parents[1]


def _trainer(ckdir, resume=False):
    net = nn.Linear(4, 3)
    ce = lambda out, b: nn.functional.cross_entropy(out["logits"], b["pid"])  # noqa: E731

    class Wrap(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            return {"logits": self.net(x)}

    return Trainer(Wrap(), {"ce": (1.0, ce)}, device="cpu", lr=0.1, progress=False,
                   checkpoint_dir=ckdir, resume=resume)


def _loader():
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    return torch.utils.data.DataLoader([{"img": x[i], "pid": torch.tensor(i % 3)}
                                        for i in range(8)], batch_size=4)


def test_truncated_checkpoint_says_what_to_do(tmp_path):
    t = _trainer(tmp_path)
    t.fit(_loader(), epochs=1)
    ck = tmp_path / "last.pt"
    ck.write_bytes(ck.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"last\.pt.*delete it to train the run from the start"):
        _trainer(tmp_path, resume=True)
    ck.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty file|EOFError|unreadable|cannot load"):
        _trainer(tmp_path, resume=True)


_DISK_FULL = textwrap.dedent("""
    import resource, signal, sys, torch
    sys.path.insert(0, {root!r}); sys.path.insert(0, {tests!r})
    from test_faults import _trainer, _loader
    t = _trainer({ck!r}, resume=True)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)        # EFBIG instead of a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))   # ~ulimit -f: a full disk
    try:
        t.fit(_loader(), epochs=2)
    except OSError as e:
        print("OSERROR", e)
        sys.exit(3)
""")


def test_disk_full_during_a_checkpoint_keeps_the_previous_one(tmp_path):
    t = _trainer(tmp_path)
    t.fit(_loader(), epochs=1)
    before = (tmp_path / "last.pt").read_bytes()
    code = _DISK_FULL.format(root=str(ROOT), tests=str(ROOT / "tests"), ck=str(tmp_path))
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert p.returncode == 3, p.stdout + p.stderr
    assert "could not write checkpoint" in p.stdout and "last.pt" in p.stdout
    assert "full?" in p.stdout and "previous checkpoint is kept" in p.stdout
    assert (tmp_path / "last.pt").read_bytes() == before          # untouched
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]
    assert _trainer(tmp_path, resume=True).epoch == 1              # still resumable


_SAVE_LOOP = textwrap.dedent("""
    import sys, torch
    sys.path.insert(0, {root!r})
    from reidnb.core.utils import atomic_path
    big = {{"w": torch.randn(4_000_000)}}
    print("ready", flush=True)
    while True:
        with atomic_path({path!r}) as tmp:
            torch.save(big, tmp)
""")


def test_sigkill_during_saves_never_leaves_a_half_file(tmp_path):
    path = tmp_path / "last.pt"
    torch.save({"w": torch.zeros(3)}, path)
    p = subprocess.Popen([sys.executable, "-c", _SAVE_LOOP.format(root=str(ROOT), path=str(path))],
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        time.sleep(1.5)                                # inside some save, most likely
        p.send_signal(signal.SIGKILL)
        p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
    state = torch.load(path, weights_only=True)        # the old or a whole new file
    assert state["w"].numel() in (3, 4_000_000)


def test_unreadable_parser_checkpoint_names_itself(tmp_path):
    from reidnb.data.parts import load_parser

    bad = tmp_path / "parser.pt"
    bad.write_bytes(b"")
    with pytest.raises(ValueError, match=r"parser\.pt is unreadable.*delete it"):
        load_parser(bad)
    bad.write_bytes(b"not a torch file at all")
    with pytest.raises(ValueError, match="is unreadable.*cache"):
        load_parser(bad)


def _market(root: Path, gt_bbox: str) -> Path:
    """A tiny Market-1501 layout: 2 train ids, 2 query/gallery ids, gt_bbox per ``gt_bbox``."""
    base = root / "Market-1501-v15.09.15"
    names = {"bounding_box_train": ["0002_c1s1_000451_01.jpg", "0002_c2s1_000551_01.jpg",
                                    "0007_c1s1_000451_01.jpg", "0007_c3s1_000551_01.jpg"],
             "bounding_box_test": ["0001_c2s1_000301_01.jpg", "0003_c1s1_000301_01.jpg",
                                   "0000_c1s1_000001_01.jpg", "-1_c1s1_000002_01.jpg"],
             "query": ["0001_c1s1_000101_00.jpg", "0003_c2s1_000101_00.jpg"]}
    if gt_bbox == "empty":
        names["gt_bbox"] = []
    for split, files in names.items():
        (base / split).mkdir(parents=True)
        for f in files:
            Image.new("RGB", (64, 128), (100, 120, 140)).save(base / split / f)
    return root


@pytest.mark.parametrize("gt_bbox", ["missing", "empty"])
def test_missing_or_empty_gt_bbox_is_a_note(tmp_path, gt_bbox):
    from reidnb.data.datasets import load_dataset

    ds = load_dataset("market1501", _market(tmp_path, gt_bbox), verbose=False)
    assert ds.multi_query == {} and len(ds.query) == 2
    assert any("multi-query evaluation is unavailable" in n for n in ds.notes)
