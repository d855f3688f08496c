"""Peak resident memory of the builders and of ``solve``, relative to the MDP's own arrays.

Each case runs in a fresh subprocess: it imports fastsoft, compiles the kernels
on a tiny problem (so that Numba's own memory is in the baseline), builds
the inputs of the case, resets the high-water mark (Linux ``clear_refs``),
records ``ru_maxrss`` as the baseline, then builds (and for the ``solve`` cases solves)
the problem and reports ``(peak - baseline) / mdp.nbytes``. The difference
is what the build (or solve) added on top of the baseline.

Run: ``python benchmarks/memory_peak.py [--quick] [--big]``. ``--big`` adds a
3000 x 3000 gridworld built and solved (hard, tol 1e-6); combine with
``prlimit --as=8589934592`` to check it fits in 8 GB of address space.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys
import numpy as np
import fastsoft as fs

def reset_peak():
    # Linux: writing 5 to clear_refs resets the high-water mark (ru_maxrss too),
    # so inputs built before the measured call do not mask its peak
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass

def rss():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

case, arg = sys.argv[1], json.loads(sys.argv[2])
# warm-up: compile what the case uses on a tiny problem
small = fs.gridworld(6, 6, slip=0.1)
fs.solve(small, 0.0, tol=1e-6)
fs.solve(small, 0.1, tol=1e-6)
fs.random_mdp(50, 4, 5, gamma=0.9, seed=0)
P, R = small.to_dense()
fs.TabularMDP.from_dense(P, R, 0.9)
fs.TabularMDP.from_csr(small.indptr, small.indices, small.probs, small.rewards, 0.9)
inputs = None
if case == "from_dense":
    S, A, K = arg["S"], arg["A"], arg["K"]
    src = fs.random_mdp(S, A, K, gamma=0.9, seed=1)
    inputs = src.to_dense()
    del src
elif case == "from_csr":
    src = fs.random_mdp(arg["S"], arg["A"], arg["K"], gamma=0.9, seed=1)
    # user-style inputs: int64 indices, rows in decreasing order (to be sorted)
    K = arg["K"]
    inputs = (np.array(src.indptr), src.indices.reshape(-1, K)[:, ::-1].astype(np.int64).ravel(),
              src.probs.reshape(-1, K)[:, ::-1].ravel(), np.array(src.rewards))
    del src
reset_peak()
base = rss()
if case == "gridworld":
    mdp = fs.gridworld(arg["n"], arg["n"], slip=arg["slip"])
elif case == "random_mdp":
    mdp = fs.random_mdp(arg["S"], arg["A"], arg["K"], gamma=0.9, seed=arg.get("seed", 0))
elif case == "from_dense":
    mdp = fs.TabularMDP.from_dense(inputs[0], inputs[1], 0.9)
elif case == "from_csr":
    mdp = fs.TabularMDP.from_csr(*inputs, 0.9)
elif case == "solve":
    mdp = fs.gridworld(arg["n"], arg["n"], slip=arg["slip"])
    built = rss()
    res = fs.solve(mdp, arg["tau"], tol=arg["tol"])
    assert res.converged, res
out = {"case": case, **arg, "mdp_mb": mdp.nbytes / 2**20,
       "peak_mb": (rss() - base) / 2**20, "ratio": (rss() - base) / mdp.nbytes}
if case == "solve":
    out["build_ratio"] = (built - base) / mdp.nbytes
print(json.dumps(out))
"""

QUICK = [
    ("gridworld", {"n": 300, "slip": 0.1}),
    ("random_mdp", {"S": 100_000, "A": 4, "K": 5}),
]

CASES = [
    ("gridworld", {"n": 1000, "slip": 0.0}),
    ("gridworld", {"n": 1000, "slip": 0.1}),
    ("random_mdp", {"S": 1_000_000, "A": 4, "K": 5}),
    ("from_dense", {"S": 3000, "A": 4, "K": 50}),
    ("from_csr", {"S": 1_000_000, "A": 4, "K": 5}),
    ("solve", {"n": 1000, "slip": 0.1, "tau": 0.0, "tol": 1e-6}),
    ("solve", {"n": 1000, "slip": 0.1, "tau": 0.1, "tol": 1e-6}),
]

BIG = [("solve", {"n": 3000, "slip": 0.1, "tau": 0.0, "tol": 1e-6})]


def measure(case: str, arg: dict) -> dict:
    """Run one case in a fresh interpreter and return its JSON line."""
    proc = subprocess.run([sys.executable, "-c", CHILD, case, json.dumps(arg)],
                          capture_output=True, text=True, check=False)
    if proc.returncode:
        return {"case": case, **arg, "error": proc.stderr.strip().splitlines()[-1:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes only")
    parser.add_argument("--big", action="store_true", help="add the 3000 x 3000 grid solve")
    parser.add_argument("--json", action="store_true", help="print one JSON line per case")
    args = parser.parse_args(argv)
    cases = QUICK if args.quick else CASES + (BIG if args.big else [])
    for case, arg in cases:
        r = measure(case, arg)
        if args.json:
            print(json.dumps(r))
            continue
        desc = ", ".join(f"{k}={v}" for k, v in arg.items())
        if "error" in r:
            print(f"{case:11s} {desc:40s} FAILED {r['error']}")
            continue
        extra = f"  (build {r['build_ratio']:.2f}x)" if "build_ratio" in r else ""
        print(f"{case:11s} {desc:40s} arrays {r['mdp_mb']:8.1f} MB  "
              f"peak +{r['peak_mb']:8.1f} MB  ratio {r['ratio']:.2f}x{extra}")


if __name__ == "__main__":
    main()
