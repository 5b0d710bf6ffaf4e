#!/usr/bin/env python3
"""The Python side of mproc's comparison benchmark (issue 5).

Each workload of the issue's table, written with Python's `multiprocessing` (and, for the pool
rows, `concurrent.futures.ProcessPoolExecutor` with `--impl executor`), exactly as
bench/workloads.cc runs them with mproc. One run measures one workload and prints one JSON line:

  {"side": "python", "impl": "...", "name": "...", "unit": "...", "value": 123.4, "extra": {...}}

`bench/compare` runs this and the C++ program alternately; run it alone with
`python3 bench/python/workloads.py --run queue_64B_msgs`.
"""

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

MASK64 = (1 << 64) - 1
CPU_CALLS = 40
CPU_LOOP_N = 200_000


def square(x):
    return x * x


def cpu_loop(n):
    # The same arithmetic as bench/workloads.cc: a sum of i*i modulo 2**64.
    s = 0
    for i in range(n):
        s += i * i
    return s & MASK64


def noop():
    return None


def scaled(n, scale):
    return max(1, int(n * scale))


def default_chunksize(items, workers):
    # multiprocessing.Pool._map_async's default, used for the executor's map so that it is not
    # stuck with its own default of 1.
    chunksize, extra = divmod(items, workers * 4)
    return chunksize + 1 if extra else chunksize


class PoolSide:
    """The two Python pools behind one interface: Pool's apply_async/map, or the executor's
    submit/map."""

    def __init__(self, impl, workers):
        self.impl = impl
        if impl == "pool":
            self.pool = mp.get_context().Pool(workers)
        else:
            self.pool = ProcessPoolExecutor(workers)
            # The executor starts its workers at the first submission: do it before timing.
            for f in [self.pool.submit(noop) for _ in range(workers)]:
                f.result()

    def submit(self, fn, *args):
        if self.impl == "pool":
            return self.pool.apply_async(fn, args)
        return self.pool.submit(fn, *args)

    @staticmethod
    def result(handle):
        return handle.get() if hasattr(handle, "get") else handle.result()

    def map(self, fn, items, chunksize=None):
        if self.impl == "pool":
            return self.pool.map(fn, items, chunksize)
        if chunksize is None:
            chunksize = default_chunksize(len(items), self.pool._max_workers)
        return list(self.pool.map(fn, items, chunksize=chunksize))

    def close(self):
        if self.impl == "pool":
            self.pool.close()
            self.pool.join()
        else:
            self.pool.shutdown(wait=True)


def apply_async_roundtrip_latency(args):
    n = scaled(2000, args.scale)
    side = PoolSide(args.impl, args.workers)
    for i in range(10):
        side.result(side.submit(square, i))
    t0 = time.perf_counter()
    for i in range(n):
        assert side.result(side.submit(square, i)) == i * i
    elapsed = time.perf_counter() - t0
    side.close()
    return elapsed / n * 1e6, {"round_trips": n}


def apply_async_throughput(args):
    n = scaled(50_000, args.scale)
    side = PoolSide(args.impl, args.workers)
    t0 = time.perf_counter()
    handles = [side.submit(square, i) for i in range(n)]
    total = 0
    for h in handles:
        total += side.result(h)
    elapsed = time.perf_counter() - t0
    side.close()
    assert total == sum(i * i for i in range(n))
    return n / elapsed, {"tasks": n}


def map_tiny(args, n, chunksize):
    side = PoolSide(args.impl, args.workers)
    t0 = time.perf_counter()
    out = side.map(square, range(n), chunksize)
    elapsed = time.perf_counter() - t0
    side.close()
    assert len(out) == n and out[-1] == (n - 1) * (n - 1)
    return n / elapsed, {"tasks": n}


def map_tiny_default_chunks(args):
    return map_tiny(args, scaled(1_000_000, args.scale), None)


def map_tiny_chunksize1(args):
    return map_tiny(args, scaled(200_000, args.scale), 1)


def map_cpu_parallel_efficiency(args):
    # As bench/workloads.cc: best of `inner_reps`, serial and pool runs alternating so that a
    # change in the machine's load hits them alike.
    n = CPU_LOOP_N
    expected = cpu_loop(n)
    counts = [args.workers] + [w for w in args.scaling if w != args.workers]
    serial = float("inf")
    parallel = [float("inf")] * len(counts)
    for k, w in enumerate(counts):  # one pool at a time, as the C++ side
        side = PoolSide(args.impl, w)
        for _ in range(args.inner_reps):
            t0 = time.perf_counter()
            results = [cpu_loop(n) for _ in range(CPU_CALLS)]
            serial = min(serial, time.perf_counter() - t0)
            assert all(r == expected for r in results)
            t0 = time.perf_counter()
            results = side.map(cpu_loop, [n] * CPU_CALLS, 1)
            parallel[k] = min(parallel[k], time.perf_counter() - t0)
            assert all(r == expected for r in results)
        side.close()
    scaling = [[w, serial / parallel[counts.index(w)]] for w in args.scaling]
    return serial / (parallel[0] * args.workers), {
        "serial_s": serial,
        "parallel_s": parallel[0],
        "best_of": args.inner_reps,
        "checksum": str(expected),
        "scaling": scaling,
    }


def queue_producer(q, count, size):
    payload = b"x" * size
    for _ in range(count):
        q.put(payload)


def queue_warmup(args):
    return scaled(1000, args.scale)


def queue_run(args, count, size):
    # As bench/workloads.cc: `warmup` untimed messages, then the clock runs for `count` more.
    warmup = queue_warmup(args)
    q = mp.Queue(1000)
    p = mp.Process(target=queue_producer, args=(q, warmup + count, size))
    p.start()
    for _ in range(warmup):
        q.get()
    t0 = time.perf_counter()
    got = 0
    for _ in range(count):
        got += len(q.get())
    elapsed = time.perf_counter() - t0
    p.join()
    assert got == count * size
    return elapsed


def queue_64B_msgs(args):
    n = scaled(200_000, args.scale)
    return n / queue_run(args, n, 64), {"messages": n, "warmup": queue_warmup(args)}


def queue_1MiB_bandwidth(args):
    n = scaled(500, args.scale)
    return (n * (1 << 20) / 1e6 / queue_run(args, n, 1 << 20),
            {"messages": n, "warmup": queue_warmup(args)})


def pipe_echo(conn, count):
    for _ in range(count):
        conn.send(conn.recv())


def pipe_roundtrip_latency(args):
    n = scaled(20_000, args.scale)
    a, b = mp.Pipe()
    p = mp.Process(target=pipe_echo, args=(b, n + 1))
    p.start()
    a.send(-1)
    a.recv()
    t0 = time.perf_counter()
    for i in range(n):
        a.send(i)
        assert a.recv() == i
    elapsed = time.perf_counter() - t0
    p.join()
    return elapsed / n * 1e6, {"round_trips": n}


def manager_dict_set_latency(args):
    n = scaled(5000, args.scale)
    with mp.Manager() as m:
        d = m.dict()
        d[-1] = 0
        t0 = time.perf_counter()
        for i in range(n):
            d[i] = i
        elapsed = time.perf_counter() - t0
        assert len(d) == n + 1
    return elapsed / n * 1e6, {"calls": n}


def value_locked_increment(args):
    n = scaled(200_000, args.scale)
    v = mp.Value("i", 0)
    t0 = time.perf_counter()
    for _ in range(n):
        with v.get_lock():
            v.value += 1
    elapsed = time.perf_counter() - t0
    assert v.value == n
    return n / elapsed, {"increments": n}


def pool_start_stop(args):
    n = scaled(10, args.scale)
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        if args.impl == "pool":
            p = mp.get_context().Pool(args.workers)
            p.close()
            p.join()
        else:
            # The executor starts workers only at the first submission: submit one no-op.
            ex = ProcessPoolExecutor(args.workers)
            ex.submit(noop).result()
            ex.shutdown(wait=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3, {"cycles": n}


# name -> (function, unit, whether an executor version exists)
WORKLOADS = {
    "apply_async_roundtrip_latency": (apply_async_roundtrip_latency, "us", True),
    "apply_async_throughput": (apply_async_throughput, "tasks/s", True),
    "map_tiny_default_chunks": (map_tiny_default_chunks, "tasks/s", True),
    "map_tiny_chunksize1": (map_tiny_chunksize1, "tasks/s", True),
    "map_cpu_parallel_efficiency": (map_cpu_parallel_efficiency, "ratio", True),
    "queue_64B_msgs": (queue_64B_msgs, "msgs/s", False),
    "queue_1MiB_bandwidth": (queue_1MiB_bandwidth, "MB/s", False),
    "pipe_roundtrip_latency": (pipe_roundtrip_latency, "us", False),
    "manager_dict_set_latency": (manager_dict_set_latency, "us", False),
    "value_locked_increment": (value_locked_increment, "ops/s", False),
    "pool_start_stop": (pool_start_stop, "ms", True),
}
# Issue 7: two pool rows again with the workers started by forkserver and by spawn ("name[method]").
for _method in ("forkserver", "spawn"):
    for _name in ("apply_async_roundtrip_latency", "pool_start_stop"):
        _fn, _unit, _ = WORKLOADS[_name]
        WORKLOADS[f"{_name}[{_method}]"] = (_fn, _unit, False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true", help="print the workload names")
    parser.add_argument("--run", metavar="NAME", help="run one workload")
    parser.add_argument("--impl", choices=["pool", "executor"], default="pool",
                        help="pool rows: multiprocessing.Pool or ProcessPoolExecutor")
    parser.add_argument("--workers", type=int, default=os.cpu_count())
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every count (smoke runs)")
    parser.add_argument("--inner-reps", type=int, default=3,
                        help="map_cpu_parallel_efficiency: best of this many")
    parser.add_argument("--scaling", default="",
                        help="map_cpu_parallel_efficiency: worker counts for the speedup curve")
    args = parser.parse_args()
    args.scaling = [int(w) for w in args.scaling.split(",") if w]
    if args.list:
        for name, (_, unit, has_executor) in WORKLOADS.items():
            print(json.dumps({"name": name, "unit": unit, "executor": has_executor}))
        return 0
    if args.run not in WORKLOADS:
        parser.error(f"--run: one of {', '.join(WORKLOADS)}")
    fn, unit, has_executor = WORKLOADS[args.run]
    impl = "multiprocessing"
    if has_executor:
        impl = "multiprocessing.Pool" if args.impl == "pool" else "ProcessPoolExecutor"
    elif args.impl == "executor":
        parser.error(f"{args.run} has no executor version")
    method = args.run.partition("[")[2].rstrip("]") or "fork"
    mp.set_start_method(method)
    value, extra = fn(args)
    print(json.dumps({"side": "python", "impl": impl, "name": args.run, "unit": unit,
                      "value": value, "extra": extra}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
