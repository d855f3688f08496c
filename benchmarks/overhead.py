"""Backend overhead: import time, a fresh process's first solve, warm per-call cost.

    python benchmarks/overhead.py
"""

from __future__ import annotations

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


def _per_call(fn, n=2000) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n


def main() -> None:
    import fastsoft as fs

    print(f"import fastsoft (fresh process, median of 3): {_fresh(CODE_IMPORT) * 1e3:.1f} ms")
    print(f"first solve x3 in a fresh process (cache load): {_fresh(CODE_FIRST) * 1e3:.1f} ms")
    mdp = fs.random_mdp(10, 4, 3, gamma=0.95, seed=0)
    for tau in (0.0, 0.1):
        a = _per_call(lambda tau=tau: fs.solve(mdp, tau, tol=1e-6))
        b = _per_call(lambda tau=tau: fs.soft_value_iteration(mdp, tau, tol=1e-6))
        c = _per_call(lambda tau=tau: fs.reference.soft_value_iteration(mdp, tau, tol=1e-6),
                      n=200)
        print(f"10 states tau={tau}: solve {a * 1e6:.1f} us, soft_value_iteration "
              f"{b * 1e6:.1f} us, reference VI {c * 1e6:.1f} us ({c / a:.0f}x)")


if __name__ == "__main__":
    main()
