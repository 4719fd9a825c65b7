# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Benchmark: data-parallel CAVI (``DirichletProcessMixture(distributed=True)``) and EM
(``GaussianMixture(distributed=True)``) on 1 and 2 gloo processes against the single-process fit on the same
data, same machine, one run; the cost of a gloo all-reduce against its size; a projection to many nodes.

Each configuration fits the same N points (full covariance, K components): a first iteration (the start, not
timed), then ``--iters`` timed iterations by a warm-started ``fit`` (``tol=0``, CAVI's merge moves on).  The
throughput is ``N x iterations / s`` (wall clock of the slowest rank); bytes communicated per iteration are
the payload this rank handed to the collectives (:attr:`pyro_expfam.parallel.Communicator.bytes_sent`), and
collectives per iteration their number (``n_collectives``).  Each rank uses one thread, so 2 processes use 2
cores where the single process uses 1.

The all-reduce cost is measured on 2 gloo processes (loopback) for payloads of 8 B to 8 MB (median of 20) and
modelled as ``t = a + b x bytes`` (through the smallest and largest payloads); for a ring all-reduce over P processes
``t_allreduce(bytes, P) = 2 (P - 1) alpha + 2 (P - 1) / P x bytes / B``, so at P = 2 ``alpha = a / 2`` and
``B = 1 / b``.  The projection to P nodes is ``t(P) = t_compute(N / P) + c x t_allreduce(bytes / c, P)``
with ``t_compute`` linear in the points per node (measured single-process rate), ``c`` the collectives per
iteration, for the measured loopback (alpha, B) and for an assumed 10 GbE cluster (alpha = 50 us,
B = 1.25 GB/s).

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
from pyro_expfam.mixture import DirichletProcessMixture, GaussianMixture

SIZES = (1, 128, 1280, 12_800, 128_000, 1_024_000)  # float64 elements of the all-reduce timings
CLUSTER = {"alpha_s": 50e-6, "bandwidth_Bps": 1.25e9}  # assumed 10 GbE: latency per message step, bandwidth


def _data(n: int, d: int) -> torch.Tensor:
    X, _ = make_blobs(n, d, 8, random_state=0, dtype=torch.float64)
    return X


def _fit_timed(kind: str, shard: torch.Tensor, k: int, iters: int, distributed: bool) -> dict:
    warnings.simplefilter("ignore")
    if kind == "cavi":
        est = DirichletProcessMixture(k, random_state=0, tol=0.0, max_iter=1, distributed=distributed)
    else:
        est = GaussianMixture(k, covariance_type="full", random_state=0, tol=0.0, max_iter=1, distributed=distributed)
    est.fit(shard)
    est.set_params(warm_start=True, max_iter=iters)
    if distributed:
        dist.barrier()
    t0 = time.perf_counter()
    est.fit(shard)
    elapsed = time.perf_counter() - t0
    comm = est._comm  # each fit has its own communicator; 3 collectives of each fit are its set-up
    return {"seconds": elapsed, "bytes": comm.bytes_sent, "collectives": comm.n_collectives,
            "bound": est.lower_bound_}


def _allreduce_times(reps: int = 20) -> list[dict]:
    out = []
    for n in SIZES:
        t = torch.zeros(n, dtype=torch.float64)
        times = []
        for _ in range(reps):
            dist.barrier()
            t0 = time.perf_counter()
            dist.all_reduce(t)
            times.append(time.perf_counter() - t0)
        out.append({"bytes": 8 * n, "seconds_median": sorted(times)[reps // 2]})
    return out


def _worker(rank: int, world: int, port: int, args, out: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), GLOO_SOCKET_IFNAME="lo")
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=datetime.timedelta(seconds=600))
    shard = _data(args.n, args.d).tensor_split(world)[rank]
    res = {}
    for kind in ("cavi", "em"):
        r = _fit_timed(kind, shard, args.k, args.iters, True)
        t = torch.tensor([r["seconds"]], dtype=torch.float64)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        r["seconds"] = float(t)
        res[kind] = r
    if world > 1:
        res["allreduce"] = _allreduce_times()
    if rank == 0:
        with open(out, "w") as f:
            json.dump(res, f)
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


def _fit_alpha_beta(times: list[dict]) -> dict:
    """
    ``t = a + b x bytes`` through the smallest and the largest payload (the middle sizes only check the line:
    on a loaded machine one of them can be an outlier that a least-squares fit would follow); ring at P = 2:
    alpha = a / 2, B = 1 / b.
    """
    lo, hi = times[0], times[-1]
    b = (hi["seconds_median"] - lo["seconds_median"]) / (hi["bytes"] - lo["bytes"])
    return {"alpha_s": lo["seconds_median"] / 2, "bandwidth_Bps": 1 / max(b, 1e-15)}


def _t_allreduce(nbytes: float, p: int, net: dict) -> float:
    """Ring all-reduce: 2 (P - 1) message steps of latency alpha, 2 (P - 1) / P x bytes over the bandwidth."""
    if p == 1:
        return 0.0
    return 2 * (p - 1) * net["alpha_s"] + 2 * (p - 1) / p * nbytes / net["bandwidth_Bps"]


def _projection(per_point: float, nbytes: float, calls: float, net: dict) -> list[dict]:
    """Strong scaling (N = 1e7 and 1e8 in all) and weak scaling (1e6 points per node) of one iteration."""
    rows = []
    for p in (1, 2, 8, 32, 128, 512):
        comm = calls * _t_allreduce(nbytes / max(calls, 1), p, net)
        row = {"P": p, "comm_s": comm}
        for n in (10**7, 10**8):
            t = per_point * n / p + comm
            row[f"strong_{n:.0e}_s"] = t
            row[f"strong_{n:.0e}_efficiency"] = per_point * n / (p * t)
        weak = per_point * 10**6 + comm
        row["weak_1e6_per_node_s"] = weak
        row["weak_efficiency"] = per_point * 10**6 / weak
        rows.append(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description="data-parallel CAVI and EM throughput, 1 and 2 processes")
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--d", type=int, default=10)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "distributed_cpu.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    X = _data(args.n, args.d)
    single = {kind: _fit_timed(kind, X, args.k, args.iters, False) for kind in ("cavi", "em")}
    spawned = {world: _spawn(world, args) for world in (1, 2)}
    rows = []
    for kind in ("cavi", "em"):
        rows.append({"fit": kind, "config": "single process (distributed=False)", "processes": 1, **single[kind]})
        for world in (1, 2):
            rows.append({"fit": kind, "config": f"distributed=True, {world} gloo process(es)", "processes": world,
                         **spawned[world][kind]})
    for r in rows:
        ref = next(q for q in rows if q["fit"] == r["fit"])
        r["points_iters_per_s"] = args.n * args.iters / r["seconds"]
        r["bytes_per_iter"] = r["bytes"] / args.iters
        r["collectives_per_iter"] = r["collectives"] / args.iters
        r["speedup_vs_single"] = ref["seconds"] / r["seconds"]
    allreduce = spawned[2]["allreduce"]
    nets = {"loopback (measured)": _fit_alpha_beta(allreduce), "10 GbE cluster (assumed)": CLUSTER}
    projection = {}
    for kind in ("cavi", "em"):
        per_point = single[kind]["seconds"] / (args.n * args.iters)
        dist_row = next(r for r in rows if r["fit"] == kind and r["processes"] == 2)
        for name, net in nets.items():
            projection[f"{kind} / {name}"] = {
                "seconds_per_point_iter": per_point, "bytes_per_iter": dist_row["bytes_per_iter"],
                "collectives_per_iter": dist_row["collectives_per_iter"], "net": net,
                "rows": _projection(per_point, dist_row["bytes_per_iter"], dist_row["collectives_per_iter"], net)}
    meta = {"n": args.n, "d": args.d, "k": args.k, "iters": args.iters, "covariance_type": "full",
            "dtype": "float64", "threads_per_process": 1, "torch": torch.__version__,
            "python": platform.python_version(), "cpus": os.cpu_count(),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "note": "machine shared with other processes during the run: timings are noisy"}
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"meta": meta, "results": rows, "allreduce_2_gloo_loopback": allreduce,
                   "projection": projection}, f, indent=1)
    print(f"N = {args.n}, D = {args.d}, K = {args.k}, full covariance, float64, {args.iters} iterations, "
          "1 thread per process\n")
    print("| fit | configuration | processes | s / iteration | points x iterations / s | vs single | "
          "bytes / iteration / rank | collectives / iteration | bound / point |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['fit']} | {r['config']} | {r['processes']} | {r['seconds'] / args.iters:.4f} | "
              f"{r['points_iters_per_s']:.3g} | {r['speedup_vs_single']:.2f}x | {r['bytes_per_iter']:.0f} | "
              f"{r['collectives_per_iter']:.1f} | {r['bound']:.6f} |")
    print("\nall-reduce, 2 gloo processes on loopback (median of 20):")
    print("| bytes | " + " | ".join(f"{t['bytes']}" for t in allreduce) + " |")
    print("|---|" + "---|" * len(allreduce))
    print("| us | " + " | ".join(f"{1e6 * t['seconds_median']:.0f}" for t in allreduce) + " |")
    for name, net in nets.items():
        print(f"{name}: alpha = {1e6 * net['alpha_s']:.1f} us, B = {net['bandwidth_Bps'] / 1e9:.2f} GB/s")
    for key, proj in projection.items():
        print(f"\nprojection, {key}: t(P) = {proj['seconds_per_point_iter']:.3g} s x N/P + "
              f"{proj['collectives_per_iter']:.1f} x t_allreduce({proj['bytes_per_iter']:.0f} B / "
              f"{proj['collectives_per_iter']:.1f}, P)")
        print("| P | comm (ms) | strong N=1e7: s/iter (eff.) | strong N=1e8: s/iter (eff.) | "
              "weak 1e6/node: s/iter (eff.) |")
        print("|---|---|---|---|---|")
        for q in proj["rows"]:
            print(f"| {q['P']} | {1e3 * q['comm_s']:.2f} | {q['strong_1e+07_s']:.4f} "
                  f"({q['strong_1e+07_efficiency']:.2f}) | {q['strong_1e+08_s']:.3f} "
                  f"({q['strong_1e+08_efficiency']:.2f}) | "
                  f"{q['weak_1e6_per_node_s']:.3f} ({q['weak_efficiency']:.2f}) |")


if __name__ == "__main__":
    main()
