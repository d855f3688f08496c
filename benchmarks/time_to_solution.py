"""Time to a certified sup-norm error <= 1e-6 on V*: fastsoft.solve vs the reference and peers.

Times are medians of repeated solves (up to 7 while they take under a second in
all; problems that take longer run once).

    python benchmarks/time_to_solution.py --problems frozenlake,taxi,grid100
    python benchmarks/time_to_solution.py --problems grid1000 --peers none

Problems: grid<N> (fastsoft.gridworld N x N, slip 0.1, gamma 0.99; grid<N>@0.999
for gamma 0.999), random100k (random_mdp(100_000, 8, 10, gamma=0.99)), dense2000
(2000 states, 8 actions, dense P), frozenlake (8x8), taxi, and the user-written
zoo of ``benchmarks/zoo.py`` as ``<name>/<size>[@gamma]`` (e.g. ``maze/90000``,
``chain/100000@0.999``; ``--zoo SIZE`` runs every zoo problem at that size).

Peers (optional extra ``bench``): numpy (``fastsoft.reference.numpy_value_iteration``:
Jacobi VI on the plain vectorised NumPy/SciPy backup from V = 0, span stopping
rule: the "x NumPy" yardstick), reference (the policy-building reference VI,
the correctness yardstick), quantecon (DiscreteDP in state-action-pair form
with a sparse Q: vi / mpi / pi at ``epsilon = 2 tol``, which by its own rule
returns V within ``tol``), pymdptoolbox (dense P, only up to 5000 states),
mdpsolver (C++, parallel "standard" updates and serial Gauss-Seidel: vi / mpi /
pi at ``tolerance = tol``; only its solve call is timed, peak memory not
traced). The last column is the achieved ``max |V - V_fastsoft|``; after each
problem a line gives fastsoft's speed-up over the best peer and over NumPy VI.
Capped reference runs (``--ref-max-sweeps``) are extrapolated from their
per-sweep time and marked ``~``. ``--methods all`` also times every fastsoft
method (auto is to be within 1.3x of the best of them).
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

import fastsoft as fs

TOL = 1e-6


def build(name: str) -> fs.TabularMDP:
    spec = name
    gamma = 0.99
    if "@" in name:
        name, g = name.split("@")
        gamma = float(g)
    if "/" in name:
        import zoo

        zname, size = name.split("/")
        return zoo.build(zname, int(size), gamma=gamma if "@" in spec else None)
    if name.startswith("grid"):
        n = int(name[4:])
        return fs.gridworld(n, n, slip=0.1, gamma=gamma)
    if name == "random100k":
        return fs.random_mdp(100_000, 8, 10, gamma=gamma, seed=0)
    if name == "dense2000":
        return fs.random_mdp(2000, 8, 2000, gamma=gamma, seed=0)
    import gymnasium as gym

    if name == "frozenlake":
        return fs.TabularMDP.from_gymnasium(gym.make("FrozenLake-v1", map_name="8x8"), gamma)
    if name == "taxi":
        return fs.TabularMDP.from_gymnasium(gym.make("Taxi-v4"), gamma)
    raise ValueError(f"unknown problem {name}")


def median_wall(fn, setup=None):
    """Median wall time of repeated calls (up to 7, while they take under 1 s in all).

    With ``setup``, each call is ``fn(setup())`` and only ``fn`` is timed.
    """
    ts = []
    out = None
    while len(ts) < 7 and (not ts or sum(ts) < 1.0):
        arg = setup() if setup is not None else None
        t = time.perf_counter()
        out = fn(arg) if setup is not None else fn()
        ts.append(time.perf_counter() - t)
    return out, float(np.median(ts))


def timed(fn, memory=True):
    """Median wall time (:func:`median_wall`); peak Python-traced memory from one more run
    (skipped, NaN, when a run takes over 20 s)."""
    out, dt = median_wall(fn)
    peak = np.nan
    if memory and dt < 20.0:
        tracemalloc.start()
        fn()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return out, dt, peak


def run_fastsoft(mdp, tau, methods=("auto",)):
    out = []
    for method in methods:
        fs.solve(fs.gridworld(3, 3, gamma=mdp.gamma), tau, method=method)  # compile outside
        # a fresh copy (shared arrays, empty cache) per run: the structure detection and
        # the coded transitions of a user's first solve are in the timing
        r, dt, peak = timed(lambda m=method: fs.solve(mdp.with_gamma(mdp.gamma), tau, tol=TOL,
                                                      method=m))
        out.append((f"fastsoft.solve({method}) {r.method}", r.n_iter, dt, peak, r.V))
    return out


def _numpy_vi(solver, label, mdp, tau, max_sweeps):
    """Time a NumPy value iteration; extrapolate when it stops at ``max_sweeps``."""
    r, dt, peak = timed(lambda: solver(mdp, tau, tol=TOL, max_iter=max_sweeps))
    n = r["n_iter"]
    if not r["converged"]:
        # the sweeps it needs from its own start (V = 0), counted by fastsoft's
        # plain Jacobi sweeps (the same iteration)
        need = fs.soft_value_iteration(mdp, tau, tol=TOL, order="jacobi", acceleration=None,
                                       V0=np.zeros(mdp.n_states)).n_iter
        dt = dt / n * need
        label = "~" + label
        n = need
    return [(label, n, dt, peak, r["V"])]


def run_numpy(mdp, tau, max_sweeps):
    return _numpy_vi(fs.reference.numpy_value_iteration, "numpy VI (plain backup)", mdp, tau,
                     max_sweeps)


def run_reference(mdp, tau, max_sweeps):
    return _numpy_vi(fs.reference.soft_value_iteration, "reference VI (NumPy)", mdp, tau,
                     max_sweeps)


def _qe_ddp(mdp):
    import quantecon as qe
    import scipy.sparse as sp

    S, A = mdp.n_states, mdp.n_actions
    feas = mdp.feasible.ravel()
    rows = np.flatnonzero(feas)
    P = sp.csr_matrix((np.asarray(mdp.probs, float), mdp.indices, mdp.indptr),
                      shape=(S * A, S))[rows]
    if mdp.has_terminal:  # terminal states: a zero-reward absorbing action, scaled out
        P = P.tolil()
        s_idx = rows // A
        for k in np.flatnonzero(mdp.terminal[s_idx]):
            P.rows[k] = [int(s_idx[k])]
            P.data[k] = [1.0]
        P = P.tocsr()
    R = np.asarray(mdp.rewards, float).ravel()[rows]
    return qe.markov.DiscreteDP(R, P, mdp.gamma, rows // A, rows % A)


def run_quantecon(mdp, tau, methods=("value_iteration", "modified_policy_iteration",
                                      "policy_iteration")):
    if tau > 0:
        return []
    out = []
    ddp = _qe_ddp(mdp)
    for m in methods:
        if m == "policy_iteration" and mdp.n_states > 20_000:
            continue
        cap = 1000 if m == "policy_iteration" else 100_000  # its PI can cycle on ties
        r, dt, peak = timed(lambda m=m, cap=cap: ddp.solve(method=m, epsilon=2 * TOL,
                                                           max_iter=cap))
        V = r.v.copy()
        if mdp.has_terminal:
            V[mdp.terminal] = 0.0
        out.append((f"quantecon {m}", r.num_iter, dt, peak, V))
    return out


def run_mdptoolbox(mdp, tau):
    if tau > 0 or mdp.n_states > 5000:
        return []
    import mdptoolbox.mdp as mt

    P, R = mdp.to_dense()
    P = np.transpose(P, (1, 0, 2)).copy()
    R = np.where(np.isfinite(R), R, -1e9)
    if mdp.has_terminal:
        t = np.flatnonzero(mdp.terminal)
        P[:, t, :] = 0.0
        P[:, t, t] = 1.0
        R[t] = 0.0
    out = []
    for name, cls in (("ValueIteration", mt.ValueIteration),
                      ("PolicyIterationModified", mt.PolicyIterationModified)):
        def go(cls=cls):
            s = cls(P, R, mdp.gamma, epsilon=TOL, max_iter=100_000)
            s.run()
            return s
        s, dt, peak = timed(go)
        out.append((f"pymdptoolbox {name}", s.iter, dt, peak, np.asarray(s.V)))
    return out


def run_mdpsolver(mdp, tau, methods):
    """mdpsolver (C++, its own threads): only the ``solve`` call is timed.

    Its model is built from Python lists of each pair's successors and
    probabilities (outside the timing); terminal states become zero-reward
    self-loops. ``tolerance=1e-6`` is its own stopping threshold.
    """
    if tau > 0:
        return []
    import mdpsolver

    S, A = mdp.n_states, mdp.n_actions
    if not np.all(mdp.feasible):
        return []
    probs = np.asarray(mdp.probs, float)
    cols, pr = [], []
    for s in range(S):
        cs, ps = [], []
        for a in range(A):
            row = s * A + a
            lo, hi = mdp.indptr[row], mdp.indptr[row + 1]
            if mdp.has_terminal and mdp.terminal[s]:
                cs.append([s])
                ps.append([1.0])
            else:
                cs.append(mdp.indices[lo:hi].tolist())
                ps.append(probs[lo:hi].tolist())
        cols.append(cs)
        pr.append(ps)
    R = np.asarray(mdp.rewards, float).copy()
    if mdp.has_terminal:
        R[mdp.terminal] = 0.0
    out = []
    for alg, update in methods:
        def model():
            mdl = mdpsolver.model()  # a fresh model: no state left by the previous solve
            mdl.mdp(discount=mdp.gamma, rewards=R.tolist(), tranMatProbs=pr,
                    tranMatColumns=cols)
            return mdl

        def solve(mdl, alg=alg, update=update):
            mdl.solve(algorithm=alg, tolerance=TOL, update=update,
                      parallel=update == "standard")
            return mdl

        mdl, dt = median_wall(solve, setup=model)
        V = np.asarray(mdl.getValueVector(), float)
        out.append((f"mdpsolver {alg} ({update})", -1, dt, np.nan, V))
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", default="frozenlake,taxi,grid100,random10k")
    ap.add_argument("--zoo", type=int, default=0, help="run every zoo problem at this size")
    ap.add_argument("--taus", default="0,0.1")
    ap.add_argument("--peers", default="numpy,quantecon,mdpsolver")
    ap.add_argument("--methods", default="auto",
                    help="fastsoft methods, comma-separated, or 'all'")
    ap.add_argument("--ref-max-sweeps", type=int, default=100_000)
    ap.add_argument("--qe-methods", default="value_iteration,modified_policy_iteration,"
                    "policy_iteration", help="QuantEcon methods to run")
    ap.add_argument("--mdpsolver-methods", default="vi:standard,vi:gs,mpi:standard,pi:standard",
                    help="mdpsolver algorithm:update pairs to run")
    a = ap.parse_args(argv)
    peers = [] if a.peers == "none" else a.peers.split(",")
    methods = fs.solver.METHODS if a.methods == "all" else tuple(a.methods.split(","))
    problems = a.problems.split(",")
    if a.zoo:
        import zoo

        problems = [f"{n}/{a.zoo}" for n in zoo.NAMES]
    print(f"{'problem':22s} {'tau':>4s} {'method':58s} {'iters':>7s} {'time s':>9s} "
          f"{'peak MB':>8s} {'max|V-V_ours|':>13s}")
    for pname in problems:
        if pname == "random10k":
            mdp = fs.random_mdp(10_000, 8, 10, gamma=0.99, seed=0)
        else:
            mdp = build(pname)
        for tau in (float(x) for x in a.taus.split(",")):
            rows = run_fastsoft(mdp, tau, methods)
            ours = rows[0][4]
            n_ours = len(rows)
            for p in peers:
                try:
                    if p == "numpy":
                        rows += run_numpy(mdp, tau, a.ref_max_sweeps)
                    elif p == "reference":
                        rows += run_reference(mdp, tau, a.ref_max_sweeps)
                    elif p == "quantecon":
                        rows += run_quantecon(mdp, tau, a.qe_methods.split(","))
                    elif p == "mdpsolver":
                        rows += run_mdpsolver(mdp, tau, [tuple(m.split(":")) for m in
                                                         a.mdpsolver_methods.split(",")])
                    elif p == "mdptoolbox":
                        rows += run_mdptoolbox(mdp, tau)
                except ImportError as exc:
                    print(f"  (peer {p} not installed: {exc})")
            for label, n, dt, peak, V in rows:
                err = float(np.max(np.abs(np.asarray(V, float) - ours)))
                its = f"{n:7d}" if n >= 0 else f"{'-':>7s}"
                mb = f"{peak / 2**20:8.1f}" if np.isfinite(peak) else f"{'-':>8s}"
                print(f"{pname:22s} {tau:4.1f} {label:58s} {its} {dt:9.4f} {mb} {err:13.2e}",
                      flush=True)
            t_ours = rows[0][2]
            t_best = min(r[2] for r in rows[:n_ours])
            peer = [r for r in rows[n_ours:] if not r[0].startswith(("numpy", "~numpy"))]
            npy = [r for r in rows[n_ours:] if r[0].startswith(("numpy", "~numpy"))]
            msg = f"  -> {pname} tau={tau}: auto/best fastsoft method {t_ours / t_best:.2f}"
            if peer:
                best = min(peer, key=lambda r: r[2])
                msg += f"; best peer {best[0]} {best[2] / t_ours:.1f}x slower than fastsoft"
            if npy:
                msg += f"; numpy VI {npy[0][2] / t_ours:.1f}x"
            print(msg, flush=True)


if __name__ == "__main__":
    main()
