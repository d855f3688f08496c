"""One soft sweep and one full solve, fastsoft vs ``fastsoft.reference``, measured in one run.

Usage::

    python benchmarks/sweep_ratios.py                 # the issue's sizes
    python benchmarks/sweep_ratios.py --small         # quick check
    python benchmarks/sweep_ratios.py --full-grid     # also the reference full solve on the grid

Prints medians of repeated runs and the ratios, the effective memory traffic
of a sweep (bytes of the CSR, rewards and values it must touch, divided by
its time) and, measured in the same run, the bandwidth NumPy reaches summing
a large array.
"""

from __future__ import annotations

import argparse
import time

import numba
import numpy as np

import fastsoft as fs
from fastsoft import _bundles as B
from fastsoft import _kernels as K
from fastsoft import reference as ref
from fastsoft._bundles import make_regularizer
from fastsoft._driver import chunk_bounds
from fastsoft.benchmarking import median_time
from fastsoft.vi import pessimistic_start


def sweep_fn(mdp, tau, V, order="jacobi", coded=True):
    model = B.model(mdp, coded=coded)
    reg = make_regularizer(mdp, tau, 0.0, None).kernel
    pin = B.pinned(mdp)
    gs = order == "gauss-seidel"
    chunks = B.chunks(chunk_bounds(mdp.n_states, True, gs))
    W = np.empty_like(V)

    def run():
        K._sweep(True, gs, False, chunks, model, reg, pin, V, W, False)

    return run


def sweep_bytes(mdp, coded=False):
    S = mdp.n_states
    entries = B.coded_arrays(mdp)[0].nbytes if coded else mdp.indices.nbytes + mdp.probs.nbytes
    return mdp.indptr.nbytes + entries + mdp.rewards.nbytes + 2 * S * 8


def numpy_sum_bandwidth(repeat):
    x = np.ones(64_000_000)  # 512 MB
    return x.nbytes / median_time(x.sum, repeat)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="small problems (smoke run)")
    ap.add_argument("--full-grid", action="store_true",
                    help="also time the reference's full solve of the grid (minutes)")
    ap.add_argument("--temperature", type=float, default=0.1)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args(argv)
    n_grid = 100 if args.small else 1000
    n_rand = 10_000 if args.small else 100_000
    tau = args.temperature
    problems = {
        f"gridworld {n_grid}x{n_grid} slip 0.1": fs.gridworld(n_grid, n_grid, slip=0.1,
                                                              gamma=0.99),
        f"random_mdp({n_rand}, 8, 10)": fs.random_mdp(n_rand, 8, 10, gamma=0.99, seed=0),
    }
    print(f"numba threads: {numba.get_num_threads()}, temperature {tau}")
    bw = numpy_sum_bandwidth(args.repeat)
    print(f"NumPy sum of a 512 MB array: {bw / 1e9:.1f} GB/s\n")
    header = (f"{'problem':34s} {'what':28s} {'fastsoft':>10s} {'reference':>10s} "
              f"{'ratio':>7s}")
    print(header)
    print("-" * len(header))
    for name, mdp in problems.items():
        V = pessimistic_start(mdp) + np.random.default_rng(0).random(mdp.n_states)
        P = ref.transition_matrix(mdp)
        t_ref = median_time(lambda mdp=mdp, V=V, P=P: ref.bellman_backup(mdp, V, tau, P=P),
                            max(3, args.repeat // 2))
        storages = [True, False] if B.coded_arrays(mdp)[0].size else [False]
        for order in ("jacobi", "gauss-seidel"):
            for coded in storages:
                t_k = median_time(sweep_fn(mdp, tau, V.copy(), order, coded), args.repeat)
                what = f"soft sweep [{order}{', coded' if coded else ''}]"
                print(f"{name:34s} {what:28s} {t_k * 1e3:8.1f}ms "
                      f"{t_ref * 1e3:8.1f}ms {t_ref / t_k:6.1f}x")
                if order == "jacobi":
                    gbs = sweep_bytes(mdp, coded) / t_k
                    print(f"{'':34s} {'  traffic':28s} {gbs / 1e9:7.1f}GB/s "
                          f"({100 * gbs / bw:.0f}% of NumPy sum)")
        is_grid = name.startswith("gridworld")
        if is_grid and not args.full_grid and not args.small:
            continue  # thousands of sweeps: see benchmarks/time_to_solution.py
        t0 = time.perf_counter()
        res = fs.soft_value_iteration(mdp, tau, tol=1e-8)
        t_k = time.perf_counter() - t0
        t0 = time.perf_counter()
        out = ref.soft_value_iteration(mdp, tau, tol=1e-8)
        t_r = time.perf_counter() - t0
        err = np.max(np.abs(res.V - out["V"]))
        print(f"{name:34s} {'full solve tol 1e-8':28s} {t_k:8.2f}s  {t_r:8.2f}s  "
              f"{t_r / t_k:6.1f}x [{res.n_iter} vs {out['n_iter']} sweeps, "
              f"max|dV| {err:.1e}]")


if __name__ == "__main__":
    main()
