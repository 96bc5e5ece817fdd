"""Shared pytest fixtures: the real Market-1501 location and CPU thread limits."""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
#: Real Market-1501 for development (never committed; tests skip when absent).
MARKET_ROOT = ROOT.parent / "shared" / "data" / "market1501"

torch.set_num_threads(min(2, torch.get_num_threads()))
# No test downloads anything: torchvision weights come from the hub cache or not at all
# (reidnb.models.backbones.OFFLINE_ENV); notebook kernels started by tests inherit it.
os.environ["REIDNB_OFFLINE"] = "1"
# Mask caches and shared parsers of test datasets go to a temporary folder, never into the
# project's data/cache (reidnb.data.parts.store.CACHE_ENV).
os.environ["REIDNB_CACHE_DIR"] = tempfile.mkdtemp(prefix="reidnb-test-cache-")
atexit.register(shutil.rmtree, os.environ["REIDNB_CACHE_DIR"], ignore_errors=True)


@pytest.fixture(scope="session")
def market_root() -> Path:
    """Path of the real Market-1501 folder, or skip the test with the reason."""
    if not (MARKET_ROOT / "bounding_box_train").is_dir():
        pytest.skip(f"real Market-1501 not found at {MARKET_ROOT} (dataset terms forbid "
                    "shipping it; point this at a local copy to run the test)")
    return MARKET_ROOT


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU; none visible")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
