"""fastsoft.distributed against local solves, in the same run (needs fastsoft[distributed]).

1. A partitioned 1000 x 1000 gridworld (1e6 states, 16e6 transitions) on a
   LocalCluster of 2 worker processes (1 Dask thread and 1 Numba thread each)
   against the local solver's Jacobi sweeps (1 and 2 Numba threads): seconds per
   sweep for a fixed number of sweeps, with 1 sweep per round trip (the worst
   case for overhead) and with the default batching; and the bytes exchanged.
2. The round trip itself: rounds of a tiny partitioned MDP (latency), and the
   time to move an 8 MB array to a worker and back (bandwidth).
3. map_solve over 200 small MDPs (random_mdp(200, 4, 5), tau 0.1) against a
   local loop of fs.solve.

Run: ``python benchmarks/distributed_speed.py [--size 1000] [--sweeps 40] [--n 200]``.
Prints medians of ``--repeat`` runs and same-run ratios; quote them with ``uptime``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import fastsoft as fs
from fastsoft.benchmarking import median_time


def _echo(x):
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1000, help="grid side (size**2 states)")
    ap.add_argument("--sweeps", type=int, default=40, help="sweeps timed on the big grid")
    ap.add_argument("--n", type=int, default=200, help="small MDPs for map_solve")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    import numba
    from distributed import Client, LocalCluster

    from fastsoft.distributed import GridBlocks, map_solve, solve_partitioned

    print(f"load: {os.getloadavg()}  cpus: {os.cpu_count()}")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", silence_logs=50) as cluster, Client(cluster) as c:
        # ---- 1. the big grid
        n = args.size
        grid = GridBlocks(n, n, slip=0.1, gamma=0.999)
        mdp = grid.whole()
        print(f"\n1. grid {n}x{n}: S={mdp.n_states}, nnz={mdp.nnz}, {mdp.nbytes / 1e6:.0f} MB")
        K = args.sweeps
        local = {}
        for threads in (1, 2):
            numba.set_num_threads(threads)

            def run_local():
                fs.soft_value_iteration(mdp, 0.0, tol=1e-300, max_iter=K, order="jacobi",
                                        acceleration=None)

            local[threads] = median_time(run_local, args.repeat) / K
            print(f"   local Jacobi, {threads} Numba thread(s): "
                  f"{local[threads] * 1e3:8.2f} ms/sweep")
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        part = {}
        for spr in (1, 2, 8):
            res = {}

            def run_part(spr=spr, res=res):
                t0 = time.perf_counter()
                r = solve_partitioned(c, grid, 2, tol=1e-300, max_iter=K, sweeps_per_round=spr,
                                      order="jacobi", numba_threads=1)
                # the blocks are built inside the call: time the rounds only
                res["r"] = r
                res["t"] = r.history["time"][-1] - r.history["time"][0]
                res["rounds"] = r.extra["rounds"]
                return time.perf_counter() - t0

            totals = [run_part() for _ in range(args.repeat)]
            r = res["r"]
            per_sweep = res["t"] / (r.n_iter - r.history["sweeps"][0])
            part[spr] = per_sweep
            print(f"   partitioned, 2 workers x 1 thread, {spr} sweep(s)/round: "
                  f"{per_sweep * 1e3:8.2f} ms/sweep  ({res['rounds']} rounds, call incl. build "
                  f"{np.median(totals):.1f} s, {r.extra['bytes_per_round']} B/round, "
                  f"block {max(r.extra['block_nbytes']) / 1e6:.0f} MB, halo {r.extra['halo']})")
        print(f"   ratio partitioned(1/round) / local(1 thread): {part[1] / local[1]:.2f}; "
              f"/ local(2 threads): {part[1] / local[2]:.2f}; "
              f"batched 8/round / local(2 threads): {part[8] / local[2]:.2f}")

        # ---- 2. latency and bandwidth
        tiny = GridBlocks(20, 20, slip=0.1, gamma=0.999)
        r = solve_partitioned(c, tiny, 2, tol=1e-300, max_iter=400, sweeps_per_round=1)
        t = np.diff(r.history["time"])
        print(f"\n2. round trip of 2 tiny blocks: median {np.median(t) * 1e3:.2f} ms per round")
        w = sorted(c.scheduler_info()["workers"])[0]
        x = np.random.default_rng(0).random(1_000_000)

        def ship():
            c.submit(_echo, x, workers=[w], pure=False).result()

        tb = median_time(ship, 5)
        print(f"   8 MB to a worker and back: {tb * 1e3:.1f} ms, "
              f"{2 * x.nbytes / tb / 1e9:.2f} GB/s")

        # ---- 3. map_solve throughput
        mdps = [fs.random_mdp(200, 4, 5, gamma=0.95, seed=i) for i in range(args.n)]
        numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
        map_solve(c, mdps[:4], temperature=0.1)  # warm the workers

        def loop():
            return [fs.solve(m, 0.1) for m in mdps]

        def dask_map():
            return map_solve(c, mdps, temperature=0.1)

        loop()
        tl = median_time(loop, args.repeat)
        td = median_time(dask_map, args.repeat)
        same = all(np.array_equal(a.V, b.V) for a, b in zip(loop(), dask_map(), strict=True))
        print(f"\n3. {args.n} x random_mdp(200, 4, 5), tau 0.1: local loop {tl:.2f} s "
              f"({args.n / tl:.0f}/s), map_solve on 2 workers {td:.2f} s ({args.n / td:.0f}/s), "
              f"ratio local/map {tl / td:.2f}; same V bits: {same}")
    print(f"\nload after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
