"""Backend overhead: import time, a fresh process's first solve, warm per-call cost.

    python benchmarks/overhead.py            # everything (a minute)
    python benchmarks/overhead.py --quick    # per-call table only

The per-call table times ``fastsoft.solve`` (default threads) against the
plain NumPy reference (:func:`fastsoft.reference.soft_value_iteration`, the
same Jacobi iteration to the same certificate) on random MDPs of 10, 100 and
1000 states (4 actions, 3 successors, gamma 0.95, tol 1e-6): the median of
individually timed calls in this run, with the load printed beside them.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

CODE_IMPORT = "import time; t=time.perf_counter(); import fastsoft; print(time.perf_counter()-t)"
CODE_FIRST = (
    "import time; import fastsoft as fs; m = fs.random_mdp(10, 3, 3, gamma=0.95, seed=0);"
    "g = fs.gridworld(4, 4, gamma=0.95); t=time.perf_counter(); fs.solve(m, 0.0);"
    "fs.solve(m, 0.1); fs.solve(g, 0.1); print(time.perf_counter()-t)"
)


def _fresh(code: str, n: int = 3) -> float:
    out = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                check=True).stdout.split()[-1]) for _ in range(n)]
    return float(np.median(out))


def _per_call(fn, budget: float = 0.5, max_calls: int = 2000) -> float:
    """Median of individually timed calls (~budget seconds; robust to load spikes)."""
    fn()
    ts = []
    t_end = time.perf_counter() + budget
    while len(ts) < max_calls and (len(ts) < 5 or time.perf_counter() < t_end):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return float(np.median(ts))


def per_call_table() -> None:
    import fastsoft as fs

    print(f"per call, medians; numba threads {fs.get_num_threads()}, "
          f"load {os.getloadavg()[0]:.2f}")
    print(f"{'states':>7} {'tau':>4} {'solve':>10} {'serial':>10} {'reference':>11} "
          f"{'ref/solve':>9}")
    for S in (10, 100, 1000):
        mdp = fs.random_mdp(S, 4, 3, gamma=0.95, seed=0)
        for tau in (0.0, 0.1):
            a = _per_call(lambda m=mdp, tau=tau: fs.solve(m, tau, tol=1e-6))
            b = _per_call(lambda m=mdp, tau=tau: fs.solve(m, tau, tol=1e-6, parallel=False))
            c = _per_call(lambda m=mdp, tau=tau: fs.reference.soft_value_iteration(m, tau,
                                                                                   tol=1e-6))
            print(f"{S:7d} {tau:4.1f} {a * 1e6:8.1f}us {b * 1e6:8.1f}us {c * 1e6:9.1f}us "
                  f"{c / a:8.1f}x", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="only the per-call table")
    args = p.parse_args()
    if not args.quick:
        print(f"import fastsoft (fresh process, median of 3): {_fresh(CODE_IMPORT) * 1e3:.1f} ms")
        print(f"first solve x3 in a fresh process (cache load): "
              f"{_fresh(CODE_FIRST) * 1e3:.1f} ms")
    per_call_table()


if __name__ == "__main__":
    main()
