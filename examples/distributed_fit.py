# Copyright Contributors to the pyro_expfam project.
# SPDX-License-Identifier: Apache-2.0
"""
Data-parallel fit of a Dirichlet-process mixture on torch.distributed.

Run on one machine with two processes (gloo on CPU)::

    torchrun --nproc_per_node=2 examples/distributed_fit.py

(with ``--nnodes``/``--rdzv-endpoint`` for several machines; on GPUs pass ``--backend nccl``).  Every rank
loads only its own shard of the data (here: a slice of a synthetic data set; in practice its own files), calls
``fit`` on it, and ends with the same fitted model; each CAVI iteration all-reduces K x statistics numbers.
Rank 0 saves the model and checks it against a single-process fit on the concatenated data.
"""

from __future__ import annotations

import argparse
import os
import tempfile

import torch
import torch.distributed as dist

from pyro_expfam.datasets.blobs import make_blobs
from pyro_expfam.mixture import DirichletProcessMixture


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--n", type=int, default=20_000, help="total number of points")
    parser.add_argument("--backend", default="gloo", help="gloo (CPU) or nccl (GPUs)")
    args = parser.parse_args()

    dist.init_process_group(args.backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if args.backend == "nccl" else "cpu"

    X, _ = make_blobs(args.n, 2, 5, random_state=0, dtype=torch.float64)  # the same data set on every rank...
    shard = X.tensor_split(world)[rank].to(device)  # ...of which each rank keeps its slice

    est = DirichletProcessMixture(n_components=15, random_state=0, distributed=True).fit(shard)
    path = os.path.join(tempfile.gettempdir(), "dpmm_distributed.pt")
    est.save(path)  # only rank 0 writes
    print(f"rank {rank}/{world}: {shard.shape[0]} points, {est.n_iter_} iterations, "
          f"ELBO {est.lower_bound_:.6f} nats/point, {int((est.weights_ > 0.01).sum())} clusters")
    dist.barrier()
    if rank == 0:
        single = DirichletProcessMixture(n_components=15, random_state=0).fit(X)
        print(f"single process on all {args.n} points: ELBO {single.lower_bound_:.6f} nats/point, "
              f"{int((single.weights_ > 0.01).sum())} clusters; saved model: {path}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
