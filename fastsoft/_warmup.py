"""``fastsoft.warmup``: compile (or load from the disk cache) every kernel ahead of use.

Each group runs its public functions on tiny problems built with the same
constructors users call, so the kernels compile for exactly the argument
types real calls have. Afterwards Numba's disk cache holds them and a fresh
process only loads them (about a second instead of minutes of compiling).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

#: Warm-up groups, in the order :func:`warmup` runs them.
GROUPS = ("solve", "sampling", "inference", "dra", "envs")


def _solve_group() -> None:
    import fastsoft as fs

    grid = fs.gridworld(3, 4, slip=0.1, gamma=0.9)  # terminal states, coded rows
    rand = fs.random_mdp(12, 3, 3, gamma=0.9, seed=0)  # no terminal states
    for m in (grid, rand, rand.astype(np.float32)):
        prior = np.full((m.n_states, m.n_actions), 1.0 / m.n_actions)
        for tau, eta in ((0.0, 0.0), (0.1, 0.0), (0.0, 0.5), (0.1, 0.5)):
            kw: dict[str, Any] = dict(kl_weight=eta, prior=prior if eta else None)
            for method in ("vi", "vi-gs", "pi", "pi-iterative", "mpi"):
                fs.solve(m, tau, method=method, tol=1e-6, **kw)
            fs.soft_value_iteration(m, tau, horizon=3, **kw)
            fs.soft_value_iteration(m, tau, tol=1e-6, order="gauss-seidel",
                                    acceleration="anderson", **kw)
            fs.soft_value_iteration(m, tau, tol=1e-6, order="jacobi", acceleration="anderson",
                                    **kw)
            fs.solve(m, tau, tol=1e-6, callback=lambda info: None, **kw)
        res = fs.solve(m, 0.1, tol=1e-6)
        fs.policy_evaluation(m, res.policy, temperature=0.1)
        fs.bellman_backup(m, res.V, 0.1)


def _sampling_group() -> None:
    import fastsoft as fs

    for m in (fs.gridworld(3, 4, slip=0.1, gamma=0.9), fs.random_mdp(12, 3, 3, gamma=0.9,
                                                                      seed=0)):
        pol = fs.solve(m, 0.1, tol=1e-6).policy
        init = np.full(m.n_states, 1.0 / m.n_states)
        fs.sample_trajectories(m, pol, n_episodes=4, horizon=5, seed=0, initial=init)
        fs.monte_carlo_evaluation(m, pol, n_episodes=4, horizon=5, seed=0, initial=init,
                                  temperature=0.1)
        fs.occupancy(m, pol, initial=init)
        fs.occupancy(m, pol, initial=init, horizon=3)


def _inference_group() -> None:
    import fastsoft as fs
    from fastsoft import inference

    m = fs.gridworld(3, 3, slip=0.1, gamma=0.9)
    init = np.zeros(m.n_states)
    init[0] = 1.0
    inference.backward_pass(m, 3, initial=init, shift=True)


def _dra_group() -> None:
    import fastsoft as fs
    from fastsoft import dra

    m = fs.mattar_daw_maze()
    dra.train(m, beta=10.0, lam=0.1, sigma_base=5.0, sigma0=3.0, alpha_q=0.1,
              alpha_sigma=0.1, n_episodes=2, n_traj=2, seed=0, max_steps=20)


def _envs_group() -> None:
    import fastsoft as fs
    import fastsoft.envs as fe

    m = fs.gridworld(3, 4, slip=0.1, gamma=0.9)
    env = fe.TabularVectorEnv(m, num_envs=2)
    env.reset(seed=0)
    env.step(np.zeros(2, dtype=np.int64))
    env.close()


_RUNNERS: dict[str, Callable[[], None]] = {
    "solve": _solve_group, "sampling": _sampling_group, "inference": _inference_group,
    "dra": _dra_group, "envs": _envs_group,
}


def warmup(groups: Iterable[str] | None = None, *, parallel: bool | None = None,
           report: Callable[[str, float], None] | None = None) -> dict[str, float]:
    """Compile fastsoft's kernels ahead of use (e.g. in a Docker build or a CI cache step).

    Compiled code goes to Numba's disk cache (beside the package, or under
    ``NUMBA_CACHE_DIR``), so later processes load it instead of compiling.
    Running it again only loads the cache (seconds).

    Parameters
    ----------
    groups : iterable of str, optional
        Any of ``"solve", "sampling", "inference", "dra", "envs"``; default all.
    parallel : bool, optional
        Compile the serial (False) or the parallel (True) twins of the
        kernels; default both (the parallel ones only where Numba has more
        than one thread).
    report : callable, optional
        Called as ``report(group, seconds)`` after each group.

    Returns
    -------
    dict
        Seconds per group.

    Examples
    --------
    >>> import fastsoft
    >>> times = fastsoft.warmup(["inference"], parallel=False)
    >>> list(times)
    ['inference']
    """
    from . import _jit

    names = list(GROUPS if groups is None else groups)
    for g in names:
        if g not in _RUNNERS:
            raise ValueError(f"groups: unknown group {g!r}; choose from {GROUPS}")
    if parallel is None:
        modes = [False, True] if _jit.get_num_threads() > 1 else [False]
    else:
        modes = [bool(parallel)]
    out: dict[str, float] = {}
    for g in names:
        t = time.perf_counter()
        for mode in modes:
            with _jit.parallel_mode(mode):
                _RUNNERS[g]()
        out[g] = time.perf_counter() - t
        if report is not None:
            report(g, out[g])
    return out
