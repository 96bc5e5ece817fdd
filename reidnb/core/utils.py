"""Small shared helpers: seeding, device resolution and atomic file writes.

Everything here is used by more than one module (engine, results, synthetic data,
masks), which is why it lives outside the one-responsibility modules of DESIGN.md.
"""
from __future__ import annotations

import contextlib
import functools
import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import torch

__all__ = ["OFFLINE_ENV", "offline", "refuse_download_offline",
           "seed_everything", "resolve_device", "atomic_path", "atomic_write_text",
           "progress_bar_class", "read_npz"]


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch (all devices) with ``seed``.

    ``deterministic=True`` also asks cuDNN for deterministic kernels (fastbook's
    ``set_seed``); it costs speed on a GPU and changes nothing on the CPU.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """Turn ``"auto"`` into ``cuda`` when a GPU is visible, else ``cpu``.

    Raises:
        ValueError: an unknown device string, or ``device`` names CUDA or MPS but torch
            sees none.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device in (None, "", "auto"):
        dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as e:
            raise ValueError(f"device {device!r} is not a torch device; use auto, cpu, cuda "
                             "or cuda:N") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was asked for but torch sees no CUDA device; "
                         "use device='auto' or 'cpu'")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None)
                                  and torch.backends.mps.is_available()):
        raise ValueError(f"device {device!r} was asked for but torch sees no MPS device; "
                         "use device='auto' or 'cpu'")
    return dev


def _umask() -> int:
    """The process umask (read without changing it for long)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(folder: Path) -> None:
    """Flush a directory entry (the rename) to disk; a no-op where directories cannot be
    opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path``.

    The rename is atomic on POSIX, so a reader sees either the old file or the new
    one, never a half-written file; on an exception the temporary file is removed and
    ``path`` is left as it was. The new file is flushed to disk (``fsync``) before the
    rename and the directory after it, so a power cut leaves the old or the new file.
    Its mode follows the umask, as a plain ``open()`` would (``mkstemp`` alone would make
    it owner-only, 0600).

    Raises:
        OSError: the folder cannot be created or written (the message names the path).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise OSError(e.errno, f"cannot write {path}: {e.strerror}") from e
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    finally:
        if tmp.exists():
            tmp.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; returns the path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def progress_bar_class():
    """tqdm class for the epoch bar: a notebook widget when ipywidgets exists (tqdm.auto
    warns otherwise); else the text bar, refreshed at most every 20 s when stderr is not a
    terminal (a kernel run by papermill stores every refresh in the notebook: thousands of
    lines per epoch in the executed notebook and its HTML)."""
    try:
        import ipywidgets  # noqa: F401
        from tqdm.auto import tqdm
        return tqdm
    except ImportError:
        from tqdm import tqdm
    isatty = getattr(sys.stderr, "isatty", lambda: False)()
    return tqdm if isatty else functools.partial(tqdm, mininterval=20.0)


#: Environment variable: set to 1 and no torchvision weights are downloaded (only the torch
#: hub cache is read); the test suite sets it, so no test downloads anything.
OFFLINE_ENV = "REIDNB_OFFLINE"


def offline() -> bool:
    """True when :data:`OFFLINE_ENV` is set to a true value (1, true, yes)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in ("1", "true", "yes")


def refuse_download_offline(weights_url: str) -> None:
    """Raise when :func:`offline` and the torch hub cache lacks the file of ``weights_url``.

    Call it before a torchvision ``get_model(..., weights=...)`` / ``get_state_dict``: with
    ``REIDNB_OFFLINE=1`` nothing is downloaded, a cached file is still used.

    Raises:
        FileNotFoundError: names the missing cache file.
    """
    if not offline():
        return
    import torch

    path = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(weights_url))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{OFFLINE_ENV}=1: not downloading {weights_url}, and {path} "
                                "is not in the torch hub cache")


def read_npz(path: str | os.PathLike, what: str, hint: str) -> dict:
    """Every array of the ``.npz`` at ``path`` (no pickles), read eagerly.

    Args:
        path: the file; what: what it is, for the message (e.g. "saved evaluation");
        hint: what to do about a bad file (e.g. "it is a cache: delete it and re-run").

    Raises:
        ValueError: the file cannot be read (names it, ``what``, the cause and ``hint``).
        FileNotFoundError: no such file.
    """
    import numpy as np

    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"{what} {path} is unreadable ({type(e).__name__}: {e}); {hint}") from e
