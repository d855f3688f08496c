"""solve_batch against B sequential solves of the same MDP (same run, same tolerance).

    python benchmarks/batch_speed.py [--states 100000] [--batch 16] [--repeat 3]

Prints the median wall time of ``fastsoft.solve_batch`` on B reward arrays
and of B calls of ``fastsoft.solve`` (the default method: span-stopped Jacobi
value iteration on this MDP), their ratio, the sweeps each needed and the load.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import fastsoft as fs


def _median(fn, repeat):
    fn()  # compile / warm caches
    ts = []
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts)), out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--states", type=int, default=100_000)
    p.add_argument("--actions", type=int, default=4)
    p.add_argument("--successors", type=int, default=5)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--temperature", type=float, default=0.1)
    p.add_argument("--tol", type=float, default=1e-6)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    mdp = fs.random_mdp(args.states, args.actions, args.successors, gamma=0.95, seed=0)
    R = np.random.default_rng(1).normal(size=(args.batch, args.states, args.actions))
    tau, tol = args.temperature, args.tol
    mdps = [mdp.with_rewards(R[b]) for b in range(args.batch)]

    def batch():
        return fs.solve_batch(mdp, R, temperature=tau, tol=tol)

    def sequential():
        return [fs.solve(m, tau, tol=tol) for m in mdps]

    print(f"random_mdp({args.states}, {args.actions}, {args.successors}), B={args.batch}, "
          f"tau={tau}, tol={tol}; numba threads {fs.get_num_threads()}, "
          f"load {os.getloadavg()[0]:.2f}")
    tb, out = _median(batch, args.repeat)
    ts, singles = _median(sequential, args.repeat)
    gap = max(float(np.abs(out.V[b] - singles[b].V).max()) for b in range(args.batch))
    print(f"solve_batch  {tb:8.3f} s  ({out.n_iter} sweeps, max bound "
          f"{out.error_bound.max():.2e})")
    print(f"{args.batch} x solve  {ts:8.3f} s  ({sum(s.n_iter for s in singles)} sweeps in all, "
          f"method {singles[0].method})")
    print(f"speedup      {ts / tb:8.2f}x   (max |V_batch - V_single| = {gap:.2e}); "
          f"load now {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
