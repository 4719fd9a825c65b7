# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Benchmark: a fit streamed from a numpy memmap file (issue 13): ``GaussianMixture`` EM (full covariance) or
``DirichletProcessMixture`` CAVI whose ``fit`` takes a :class:`torch.utils.data.DataLoader` over chunks of a
float64 file on disk, so the data are never one tensor.

The file (``--n`` points, ``--d`` features, 8 planted blobs) is written chunk by chunk to a temporary directory
and deleted afterwards.  Each chunk of the loader is read through its own small ``np.memmap`` (offset into the
file) and copied, so that the mapped pages of the file do not accumulate in the process's resident set.

Timed, in one run: the whole fit (first pass: validation and moments; second pass: a 10,000-row reservoir
sample for the k-means start; then ``--iters`` EM/CAVI iterations, one pass each) for the streamed file at
``--n`` and, as the peer, the streamed and the in-memory fit at ``--peer-n`` points (same generator).  Peak
memory is ``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (the process's peak resident set, MB) read after each
fit (it never decreases, so the streamed fit at ``--n`` runs first, in a fresh process).  A warm-started
``fit`` of the same ``--iters`` iterations is timed after each (one validation pass, then the iterations; no
start) for the throughput ``points x iterations / s``.

Usage::

    python benchmarks/bench_streaming.py                         # N = 1e7, D = 10, K = 20, 3 EM iterations
    python benchmarks/bench_streaming.py --n 200000 --peer-n 100000 --out /tmp/s.json   # quick

Writes ``benchmarks/results/streaming_memmap.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import tempfile
import time
import warnings

import numpy as np
import torch

from pyro_expfam.mixture import DirichletProcessMixture, GaussianMixture

CHUNK = 1 << 16  # rows per chunk (5 MB of float64 at D = 10)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: kilobytes


def _write(path: str, n: int, d: int, seed: int = 0) -> None:
    """
    ``n`` points from 8 Gaussian blobs (centres uniform in [-10, 10]^d, unit variance), appended chunk by chunk
    with plain file writes (writing through a memmap of the whole file would put its dirty pages in the
    process's resident set and so in the peak memory measured).
    """
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-10, 10, (8, d))
    with open(path, "wb") as f:
        for start in range(0, n, CHUNK):
            rows = min(CHUNK, n - start)
            f.write((centres[rng.integers(0, 8, rows)] + rng.standard_normal((rows, d))).tobytes())


class MemmapChunks(torch.utils.data.Dataset):
    """Chunk ``i`` of a float64 ``(n, d)`` file, read through its own memmap and copied (a tensor)."""

    def __init__(self, path: str, n: int, d: int, chunk: int = CHUNK) -> None:
        self.path, self.n, self.d, self.chunk = path, n, d, chunk

    def __len__(self) -> int:
        return -(-self.n // self.chunk)

    def __getitem__(self, i: int) -> torch.Tensor:
        start = i * self.chunk
        rows = min(self.chunk, self.n - start)
        mm = np.memmap(self.path, dtype=np.float64, mode="r", offset=start * self.d * 8, shape=(rows, self.d))
        x = torch.from_numpy(np.array(mm))
        del mm
        return x


def _estimator(name: str, k: int, iters: int):
    if name == "em":
        return GaussianMixture(k, covariance_type="full", tol=0.0, max_iter=iters, random_state=0)
    return DirichletProcessMixture(k, tol=0.0, max_iter=iters, random_state=0, merge=False)


def _fit(name: str, k: int, iters: int, data) -> dict:
    warnings.simplefilter("ignore")
    est = _estimator(name, k, iters)
    t0 = time.perf_counter()
    est.fit(data)
    seconds = time.perf_counter() - t0
    peak = _peak_mb()
    # the iterations alone: a warm-started continuation (one validation pass, no start, then the iterations)
    est.set_params(warm_start=True)
    t0 = time.perf_counter()
    est.fit(data)
    warm = time.perf_counter() - t0
    return {"seconds": seconds, "warm_seconds": warm, "peak_rss_mb": peak, "bound": float(est.lower_bound_),
            "n_iter": est.n_iter_}


def main() -> None:
    parser = argparse.ArgumentParser(description="a fit streamed from a numpy memmap file")
    parser.add_argument("--n", type=int, default=10_000_000)
    parser.add_argument("--peer-n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--estimator", choices=("em", "cavi"), default="em")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "streaming_memmap.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    tmp = tempfile.mkdtemp(prefix="bench_streaming_")
    rows = []
    try:
        base_mb = _peak_mb()
        big = os.path.join(tmp, "big.f64")
        t0 = time.perf_counter()
        _write(big, args.n, args.d)
        write_s = time.perf_counter() - t0
        write_mb = _peak_mb()
        loader = torch.utils.data.DataLoader(MemmapChunks(big, args.n, args.d), batch_size=None)
        r = _fit(args.estimator, args.k, args.iters, loader)
        rows.append({"config": "streamed from memmap", "n": args.n, **r})
        os.remove(big)
        small = os.path.join(tmp, "small.f64")
        _write(small, args.peer_n, args.d)
        loader = torch.utils.data.DataLoader(MemmapChunks(small, args.peer_n, args.d), batch_size=None)
        rows.append({"config": "streamed from memmap (peer)", "n": args.peer_n,
                     **_fit(args.estimator, args.k, args.iters, loader)})
        X = torch.from_numpy(np.array(np.memmap(small, dtype=np.float64, mode="r", shape=(args.peer_n, args.d))))
        rows.append({"config": "in memory (one tensor, peer)", "n": args.peer_n,
                     **_fit(args.estimator, args.k, args.iters, X)})
    finally:
        shutil.rmtree(tmp)
    for r in rows:
        r["points_iters_per_s"] = r["n"] * r["n_iter"] / r["warm_seconds"]
    meta = {"n": args.n, "peer_n": args.peer_n, "d": args.d, "k": args.k, "iters": args.iters,
            "estimator": args.estimator, "covariance_type": "full", "dtype": "float64", "chunk_rows": CHUNK,
            "threads": 1, "rss_before_mb": base_mb, "rss_after_write_mb": write_mb,
            "write_seconds": write_s, "torch": torch.__version__,
            "python": platform.python_version(), "cpus": os.cpu_count(),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "note": ("machine shared with other processes during the run: timings are noisy; peak RSS is the "
                     "process's maximum so far (monotone), rows in run order; seconds = the whole fit (2 passes "
                     "for validation/moments and the start's reservoir sample, then the iterations)")}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "results": rows}, f, indent=1)
    print(f"{args.estimator}: D = {args.d}, K = {args.k}, full covariance, float64, {args.iters} iterations, "
          f"chunks of {CHUNK} rows, 1 thread; peak RSS before: {base_mb:.0f} MB, after writing the file: "
          f"{write_mb:.0f} MB; file written in {write_s:.1f} s\n")
    print("| configuration | N | whole fit (s) | warm-started iterations (s) | points x iterations / s "
          "(warm) | peak RSS so far (MB) | bound / point |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['n']:.0e} | {r['seconds']:.1f} | {r['warm_seconds']:.1f} | "
              f"{r['points_iters_per_s']:.3g} | {r['peak_rss_mb']:.0f} | {r['bound']:.6f} |")


if __name__ == "__main__":
    main()
