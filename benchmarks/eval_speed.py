"""Speed and peak memory of reidnb.evaluation at Market-1501 test size.

Measures, each in a fresh subprocess (so one measurement's memory cannot hide another's):

- ``evaluate_rank`` on a 3,368 x 15,913 distance matrix, beside one stable sort of the
  same matrix (``np.argsort(kind="stable", axis=1)``, the first step of torchreid's
  ``eval_market1501``), and with ``--reference`` torchreid's Python evaluation loop
  (``eval_market1501`` + fast-reid's mINP, junk dropped).
- ``re_ranking`` on 3,368 + 15,913 = 19,281 images, and with ``--reference`` the dense
  reference implementation (Zhong et al. / torchreid ``utils/rerank.py``; ~6 GB).

Inputs are structured random features (not a trained model): 750 identities drawn around
40 "look-alike" groups, 6 cameras with a per-camera offset, per-image noise; 2,798
distractors (pid 0) and 600 junk images (pid -1) in the gallery. At D=2048 their
Euclidean distances score R1 93 / mAP 73 / mINP 36, roughly a ResNet-50 baseline on
Market-1501, so neighbourhoods (which set re-ranking's cost) look realistic.

Peak memory: the subprocess resets its high-water mark (``/proc/self/clear_refs``)
once its inputs exist, then reports ``VmHWM - VmRSS`` (memory beyond the inputs,
outputs included). Wall and CPU time are both printed: on a shared machine wall time
depends on the load, which is printed too.

    python benchmarks/eval_speed.py [--reference] [--dim 2048] [--threads 2]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
Q, G, N_IDS, N_CAMS, N_DISTRACTORS, N_JUNK = 3368, 15913, 750, 6, 2798, 600


def _status() -> dict:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def make_features(dim: int, seed: int = 0, noise: float = 1.7, spread: float = 0.65):
    """Query / gallery features and ids (see the module docstring)."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def unit(x):
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    n_gal_ids = G - N_DISTRACTORS - N_JUNK
    groups = unit(rng.standard_normal((40, dim)))
    n_centres = N_IDS + N_DISTRACTORS + N_JUNK
    centres = unit(groups[rng.integers(0, 40, n_centres)]
                   + spread * unit(rng.standard_normal((n_centres, dim))))
    cams = unit(rng.standard_normal((N_CAMS, dim)))

    def images(which, cam):
        return unit(centres[which] + 0.4 * cams[cam]
                    + noise * unit(rng.standard_normal((len(which), dim))))

    g_id = np.concatenate([rng.permutation(np.arange(n_gal_ids) % N_IDS),
                           N_IDS + np.arange(N_DISTRACTORS + N_JUNK)])
    g_pids = np.where(g_id < N_IDS, g_id + 1, 0)
    g_pids[G - N_JUNK:] = -1
    q_id = rng.permutation(np.arange(Q) % N_IDS)
    q_pids = q_id + 1
    q_cams, g_cams = rng.integers(0, N_CAMS, Q), rng.integers(0, N_CAMS, G)
    return images(q_id, q_cams), images(g_id, g_cams), q_pids, g_pids, q_cams, g_cams


# ------------------------------------------------------------------ reference code


def reference_eval(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """torchreid ``eval_market1501`` (Python version) with fast-reid's mINP; junk dropped."""
    import numpy as np

    keep = g_pids != -1
    distmat, g_pids, g_camids = distmat[:, keep], g_pids[keep], g_camids[keep]
    indices = np.argsort(distmat, axis=1)
    matches = (g_pids[indices] == q_pids[:, np.newaxis]).astype(np.int32)
    all_cmc, all_ap, all_inp = [], [], []
    for q in range(distmat.shape[0]):
        order = indices[q]
        remove = (g_pids[order] == q_pids[q]) & (g_camids[order] == q_camids[q])
        raw = matches[q][~remove]
        if not np.any(raw):
            continue
        cmc = raw.cumsum()
        last = np.max(np.where(raw == 1))
        all_inp.append(cmc[last] / (last + 1.0))
        cmc[cmc > 1] = 1
        all_cmc.append(cmc[:max_rank])
        tmp = raw.cumsum() / (np.arange(len(raw)) + 1.0) * raw
        all_ap.append(tmp.sum() / raw.sum())
    return np.asarray(all_cmc).astype(np.float32).mean(0), np.mean(all_ap), np.mean(all_inp)


# ------------------------------------------------------------------ one measurement


def worker(task: str, dim: int, threads: int, save_dir: str | None = None) -> dict:
    import numpy as np
    import torch

    sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
    from reference_impl import reference_re_ranking  # tests/reference_impl.py
    from reidnb.evaluation import compute_distance_matrix, evaluate_rank, re_ranking

    torch.set_num_threads(threads)
    qf, gf, qp, gp, qc, gc = make_features(dim)
    qf, gf = torch.from_numpy(qf), torch.from_numpy(gf)
    q_g = compute_distance_matrix(qf, gf).numpy()
    if task.startswith("rerank"):
        q_q = compute_distance_matrix(qf, qf).numpy()
        g_g = compute_distance_matrix(gf, gf).numpy()
    del qf, gf
    info = {}
    resettable = _reset_peak()
    base = _status()["VmRSS"]
    wall, cpu = time.perf_counter(), time.process_time()
    if task == "rank":
        r = evaluate_rank(q_g, qp, gp, qc, gc)
        info = {"R1": 100 * r.cmc[0], "mAP": 100 * r.mAP, "mINP": 100 * r.mINP}
    elif task == "sort":
        np.argsort(q_g, axis=1, kind="stable")
    elif task == "rank_ref":
        cmc, mAP, mINP = reference_eval(q_g, qp, gp, qc, gc)
        info = {"R1": 100 * float(cmc[0]), "mAP": 100 * float(mAP), "mINP": 100 * float(mINP)}
    elif task in ("rerank", "rerank_ref"):
        fn = re_ranking if task == "rerank" else reference_re_ranking
        out = fn(q_g, q_q, g_g)
        r = evaluate_rank(out, qp, gp, qc, gc) if task == "rerank" else None
        wall_fn = time.perf_counter() - wall
        if r is not None:
            info = {"R1": 100 * r.cmc[0], "mAP": 100 * r.mAP, "mINP": 100 * r.mINP}
        if save_dir:
            np.save(Path(save_dir) / f"{task}.npy", out)
        return {"wall": wall_fn, "cpu": time.process_time() - cpu,
                "peak_extra": _status()["VmHWM"] - base, "resettable": resettable, **info}
    else:
        raise ValueError(f"unknown task {task!r}")
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
            "peak_extra": _status()["VmHWM"] - base, "resettable": resettable, **info}


def run(task: str, args, save_dir: str | None) -> dict:
    cmd = [sys.executable, __file__, "--worker", task, "--dim", str(args.dim),
           "--threads", str(args.threads)] + (["--save-dir", save_dir] if save_dir else [])
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"measurement {task!r} failed:\n{res.stderr}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def machine() -> str:
    import torch

    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{model}; {os.cpu_count()} logical cores; load average {load}; Python "
            f"{platform.python_version()}; torch {torch.__version__}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reference", action="store_true", help="also time the reference code")
    p.add_argument("--dim", type=int, default=2048, help="feature dimension (default 2048)")
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--only", choices=["rank", "rerank"], help="run only one group")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--save-dir", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.dim, args.threads, args.save_dir)))
        return
    print(f"machine: {machine()}")
    print(f"torch threads: {args.threads}; features: D={args.dim}, structured (see docstring)")
    tasks = []
    if args.only in (None, "rank"):
        tasks += [("rank", f"evaluate_rank        {Q} x {G}"),
                  ("sort", f"np.argsort stable    {Q} x {G}")]
        if args.reference:
            tasks.append(("rank_ref", f"torchreid-style loop {Q} x {G}"))
    if args.only in (None, "rerank"):
        tasks.append(("rerank", f"re_ranking           {Q} + {G} images"))
        if args.reference:
            tasks.append(("rerank_ref", f"reference re_ranking {Q} + {G} images"))
    results = {}
    with tempfile.TemporaryDirectory(prefix="reidnb_bench_") as tmp:
        save_dir = tmp if args.reference else None          # re-ranked matrices to compare
        for task, label in tasks:
            r = results[task] = run(task, args, save_dir)
            extra = "".join(f"  {k} {r[k]:.2f}" for k in ("R1", "mAP", "mINP") if k in r)
            flag = "" if r["resettable"] else " (peak since start: clear_refs unavailable)"
            print(f"{label}: wall {r['wall']:7.2f} s  cpu {r['cpu']:7.2f} s  peak beyond "
                  f"inputs {r['peak_extra'] / 2**20:8.1f} MiB{flag}{extra}", flush=True)
        if "rerank" in results and "rerank_ref" in results:
            import numpy as np

            a = np.load(Path(tmp) / "rerank.npy")
            b = np.load(Path(tmp) / "rerank_ref.npy")
            print(f"re_ranking vs reference: max |difference| {np.abs(a - b).max():.2e}")
    print(f"load average after: {', '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
