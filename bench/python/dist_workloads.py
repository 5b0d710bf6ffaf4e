#!/usr/bin/env python3
"""The Python peer of bench/dist/dist_workloads.cc: mpi4py.futures' MPIPoolExecutor, whose
workers are the other ranks of the MPI job. One workload per run, one JSON line:

  mpirun --oversubscribe --bind-to none -np 3 python3 -m mpi4py.futures \
      bench/python/dist_workloads.py dist_apply_async_roundtrip_latency [--scale F]
  (or dist_apply_async_throughput; --scale multiplies the counts, as in dist_workloads.cc)

Under `-m mpi4py.futures` every rank but 0 is one worker of the executor: -np 3 gives 2 workers.
"""

import json
import sys
import time

from mpi4py.futures import MPIPoolExecutor


def echo(x):
    return x


def scaled(n, scale, floor):
    return max(floor, int(n * scale))


def main():
    workload = sys.argv[1] if len(sys.argv) > 1 else ""
    scale = 1.0
    if len(sys.argv) > 3 and sys.argv[2] == "--scale":
        scale = float(sys.argv[3])
    with MPIPoolExecutor() as pool:
        for i in range(500):  # warm up
            pool.submit(echo, i).result()
        if workload == "dist_apply_async_roundtrip_latency":
            rounds = scaled(5000, scale, 200)
            start = time.perf_counter()
            for i in range(rounds):
                pool.submit(echo, i).result()
            value, unit = (time.perf_counter() - start) / rounds * 1e6, "us"
        elif workload == "dist_apply_async_throughput":
            tasks = scaled(50000, scale, 2000)
            start = time.perf_counter()
            futures = [pool.submit(echo, i) for i in range(tasks)]
            for f in futures:
                f.result()
            value, unit = tasks / (time.perf_counter() - start), "tasks/s"
        else:
            sys.exit("usage: dist_workloads.py dist_apply_async_roundtrip_latency|"
                     "dist_apply_async_throughput [--scale F]")
    print(json.dumps({"workload": workload, "value": round(value, 3), "unit": unit}))


if __name__ == "__main__":
    main()
