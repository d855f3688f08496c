"""DRA speed on the Mattar & Daw maze: Numba kernels vs the per-step Python reference loop.

Measures, in one run, nanoseconds per environment step of the learning + gradient
loop (no evaluation rollouts; the paper's hyperparameters):

1. the kernel on one thread, on a long run (``--episodes``), best of ``--repeats``;
2. the reference loop (:mod:`fastsoft.reference.dra`) on the first ``--ref-episodes``
   episodes, and the kernel on exactly the same work (same seed: the same
   trajectories, the same step count), so that the ratio compares like with like;
3. the scaling of independent runs (``--runs``) from 1 to 2 Numba threads.

Usage::

    python benchmarks/dra_speed.py [--episodes 2000] [--ref-episodes 15] [--runs 4]

On a shared machine, run it when the cores are otherwise idle: the wall-time figures
(and the scaling) suffer from other processes; the CPU-time column much less.
"""

from __future__ import annotations

import argparse
import os
import time

import numba
import numpy as np

import fastsoft as fs
from fastsoft import dra
from fastsoft.reference import dra as rdra


def timed(fn, repeats: int):
    """Best wall time and best process CPU time over ``repeats`` calls, and the last result.

    On a shared machine the CPU time of a one-thread run is the steadier figure: it does
    not count the time the process waits for a core.
    """
    wall = cpu = np.inf
    out = None
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        out = fn()
        wall = min(wall, time.perf_counter() - t)
        cpu = min(cpu, time.process_time() - c)
    return wall, cpu, out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=2000, help="episodes of the long kernel run")
    ap.add_argument("--ref-episodes", type=int, default=15, help="episodes of the reference run")
    ap.add_argument("--runs", type=int, default=4, help="independent runs for the scaling test")
    ap.add_argument("--scaling-episodes", type=int, default=500,
                    help="episodes per run of the scaling test")
    ap.add_argument("--repeats", type=int, default=7, help="timings per kernel figure (best)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    maze = fs.mattar_daw_maze()
    params = dict(dra.MAZE_PARAMS)
    del params["n_episodes"]

    def kernel(n_episodes, n_runs=1, seed=args.seed):
        return dra.train(maze, **params, n_episodes=n_episodes, n_runs=n_runs, seed=seed,
                         n_eval=0)

    threads = numba.get_num_threads()
    print(f"fastsoft DRA speed, Mattar & Daw maze, paper hyperparameters "
          f"(numba {numba.__version__}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f})")
    numba.set_num_threads(1)
    kernel(2)  # compile / load the cache

    print("ns per environment step      wall      cpu")
    # 1. long kernel run, one thread
    wall, cpu, r = timed(lambda: kernel(args.episodes), args.repeats)
    steps = int(r.n_steps.sum())
    kern = np.array([wall, cpu]) / steps * 1e9
    print(f"kernel, 1 thread        {kern[0]:9.1f} {kern[1]:8.1f}   ({steps} steps, "
          f"{args.episodes} episodes)")

    # 2. the reference loop and the kernel on the same work
    wall, cpu, rr = timed(lambda: rdra.train(maze, **params, n_episodes=args.ref_episodes,
                                             seed=args.seed, n_eval=0), 1)
    ref_steps = int(rr.n_steps.sum())
    ref = np.array([wall, cpu]) / ref_steps * 1e9
    wall, cpu, rk = timed(lambda: kernel(args.ref_episodes), args.repeats)
    assert np.array_equal(rk.n_steps, rr.n_steps), "kernel and reference diverged"
    same = np.array([wall, cpu]) / ref_steps * 1e9
    print(f"reference Python loop   {ref[0]:9.1f} {ref[1]:8.1f}   ({ref_steps} steps, "
          f"{args.ref_episodes} episodes)")
    print(f"kernel, same work       {same[0]:9.1f} {same[1]:8.1f}")
    print(f"speed-up, same work     {ref[0] / same[0]:8.0f}x {ref[1] / same[1]:7.0f}x")
    print(f"speed-up, long run      {ref[0] / kern[0]:8.0f}x {ref[1] / kern[1]:7.0f}x")

    # 3. parallel runs (wall time; 1 and 2 threads interleaved, best of --repeats each,
    #    so that a burst of load from other processes does not decide the ratio)
    n2 = min(2, numba.config.NUMBA_NUM_THREADS)
    t1 = t2 = np.inf
    for _ in range(args.repeats):
        for n in (1, n2):
            numba.set_num_threads(n)
            w, _, res = timed(lambda: kernel(args.scaling_episodes, n_runs=args.runs), 1)
            if n == 1:
                t1, a = min(t1, w), res
            else:
                t2, b = min(t2, w), res
    numba.set_num_threads(threads)
    assert np.array_equal(a.qbar, b.qbar), "thread count changed the result"
    print(f"parallel runs: {args.runs} runs x {args.scaling_episodes} episodes, wall "
          f"{t1 * 1e3:.1f} ms on 1 thread, {t2 * 1e3:.1f} ms on {n2} threads: "
          f"{t1 / t2:.2f}x  (load average after: {os.getloadavg()[0]:.2f})")
    return dict(kernel=kern, reference=ref, same_work=same, speedup=ref / same,
                scaling=t1 / t2)


if __name__ == "__main__":
    main()
