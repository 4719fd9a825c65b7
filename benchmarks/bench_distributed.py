# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Benchmark: data-parallel CAVI (``DirichletProcessMixture(distributed=True)``) on 1 and 2 gloo processes
against the single-process fit on the same data, same machine, one run.

Each configuration fits the same N points (full covariance, truncation K): a first iteration (the start, not
timed), then ``--iters`` timed CAVI iterations by a warm-started ``fit`` (``tol=0``, merge moves on).  The
throughput is ``N x iterations / s`` (wall clock of the slowest rank); bytes communicated per iteration are
the payload this rank handed to the collectives (:attr:`pyro_expfam.parallel.Communicator.bytes_sent`).
Each rank uses one thread, so 2 processes use 2 cores where the single process uses 1.

Usage::

    python benchmarks/bench_distributed.py                    # N = 2e5, D = 10, K = 20, 1 and 2 processes
    python benchmarks/bench_distributed.py --n 20000 --iters 5 --out /tmp/x.json   # quick

Writes ``benchmarks/results/distributed_cpu.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import socket
import tempfile
import time
import warnings

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pyro_expfam.datasets.blobs import make_blobs
from pyro_expfam.mixture import DirichletProcessMixture


def _data(n: int, d: int) -> torch.Tensor:
    X, _ = make_blobs(n, d, 8, random_state=0, dtype=torch.float64)
    return X


def _fit_timed(shard: torch.Tensor, k: int, iters: int, distributed: bool) -> tuple[float, int, float]:
    warnings.simplefilter("ignore")
    est = DirichletProcessMixture(k, random_state=0, tol=0.0, max_iter=1, distributed=distributed).fit(shard)
    est.set_params(warm_start=True, max_iter=iters)
    if distributed:
        dist.barrier()
    t0 = time.perf_counter()
    est.fit(shard)
    elapsed = time.perf_counter() - t0
    return elapsed, est._comm.bytes_sent, est.lower_bound_  # each fit has its own communicator


def _worker(rank: int, world: int, port: int, args, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=600))
    shard = _data(args.n, args.d).tensor_split(world)[rank]
    elapsed, sent, bound = _fit_timed(shard, args.k, args.iters, True)
    t = torch.tensor([elapsed], dtype=torch.float64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    if rank == 0:
        with open(out, "w") as f:
            json.dump({"seconds": float(t), "bytes": sent, "bound": bound}, f)
    dist.destroy_process_group()


def _spawn(world: int, args) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "r.json")
        mp.start_processes(_worker, args=(world, port, args, out), nprocs=world, start_method="spawn")
        with open(out) as f:
            return json.load(f)


def main() -> None:
    parser = argparse.ArgumentParser(description="data-parallel CAVI throughput, 1 and 2 processes")
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "distributed_cpu.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    elapsed, sent, bound = _fit_timed(_data(args.n, args.d), args.k, args.iters, False)
    rows.append({"config": "single process (distributed=False)", "processes": 1, "seconds": elapsed,
                 "bytes": sent, "bound": bound})
    for world in (1, 2):
        r = _spawn(world, args)
        rows.append({"config": f"distributed=True, {world} gloo process(es)", "processes": world, **r})
    for r in rows:
        r["points_iters_per_s"] = args.n * args.iters / r["seconds"]
        r["bytes_per_iter"] = r["bytes"] / args.iters
        r["speedup_vs_single"] = rows[0]["seconds"] / r["seconds"]
    meta = {"n": args.n, "d": args.d, "k": args.k, "iters": args.iters, "covariance_type": "full",
            "dtype": "float64", "threads_per_process": 1, "torch": torch.__version__,
            "python": platform.python_version(), "cpus": os.cpu_count(),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "note": "machine shared with other processes during the run: timings are noisy"}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "results": rows}, f, indent=1)
    print(f"N = {args.n}, D = {args.d}, K = {args.k}, full covariance, float64, {args.iters} CAVI iterations, "
          "1 thread per process\n")
    print("| configuration | processes | s / iteration | points x iterations / s | speed-up vs single | "
          "bytes sent per iteration per rank | ELBO / point |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['config']} | {r['processes']} | {r['seconds'] / args.iters:.4f} | "
              f"{r['points_iters_per_s']:.3g} | {r['speedup_vs_single']:.2f}x | {r['bytes_per_iter']:.0f} | "
              f"{r['bound']:.6f} |")


if __name__ == "__main__":
    main()
