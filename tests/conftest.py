"""Shared test fixtures: the hypothesis profiles, the one registry of test MDPs, and ``threads``.

Every named test MDP lives in one registry (built on first use, then shared: a
``TabularMDP`` is immutable). Test modules take the group they need: ``ZOO`` for
the kernel-vs-reference tests (value iteration, Anderson), ``PI_MDPS`` for policy
evaluation and iteration, ``SAMPLING_MDPS`` for sampling and occupancy.
:func:`small_mdp` builds the random MDP a hypothesis example draws.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator, Mapping

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import fastsoft as fs

# "ci" (the default) is derandomized: the same examples every run, so CI is
# reproducible; HYPOTHESIS_PROFILE=explore searches afresh with more examples.
settings.register_profile(
    "ci", max_examples=40, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "explore", max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def dense_random_mdp(S, A, gamma, seed, *, infeasible=0.0, terminal=0.0, density=1.0):
    """A dense random MDP (optionally with infeasible actions and terminal states)."""
    rng = np.random.default_rng(seed)
    P = rng.random((S, A, S)) * (rng.random((S, A, S)) < density)
    P[..., 0] += 1e-3  # no empty rows
    P /= P.sum(axis=2, keepdims=True)
    R = rng.normal(size=(S, A))
    if infeasible:
        mask = rng.random((S, A)) < infeasible
        mask[np.arange(S), rng.integers(0, A, S)] = False  # keep one feasible action
        R[mask] = -np.inf
    term = None
    if terminal:
        term = rng.random(S) < terminal
        term[0] = False
    return fs.TabularMDP.from_dense(P, R, gamma, terminal=term)


def small_mdp(size, gamma, infeasible=0.0, terminal=0.0):
    """The dense random MDP of a hypothesis draw ``size = (S, A, seed)``.

    ``infeasible`` is ignored when ``A == 1`` (every state keeps a feasible action).
    """
    S, A, seed = size
    return dense_random_mdp(S, A, gamma, seed, infeasible=infeasible if A > 1 else 0.0,
                            terminal=terminal)


def with_terminal(mdp, frac=0.2, seed=0):
    """``mdp`` with a random fraction ``frac`` of terminal states (never state 0)."""
    rng = np.random.default_rng(seed)
    term = rng.random(mdp.n_states) < frac
    term[0] = False
    return fs.TabularMDP.from_csr(mdp.indptr, mdp.indices, mdp.probs, mdp.rewards, mdp.gamma,
                                  terminal=term)


def with_infeasible(mdp, seed=0):
    """``mdp`` with a quarter of its actions made infeasible (action 0 always stays)."""
    rng = np.random.default_rng(seed)
    R = np.array(mdp.rewards)
    mask = rng.random(R.shape) < 0.25
    mask[:, 0] = False
    R[mask] = -np.inf
    return mdp.with_rewards(R)


def make_env(name, **kwargs):
    """gymnasium.make of the newest registered version of ``name`` (e.g. "Taxi")."""
    import gymnasium as gym

    versions = [
        spec.version for key, spec in gym.registry.items()
        if spec.name == name and spec.namespace is None and spec.version is not None
    ]
    return gym.make(f"{name}-v{max(versions)}", **kwargs)


#: Fields that measure time: the only ones allowed to differ between two runs.
TIMING_FIELDS = frozenset({"wall_time", "time"})


def assert_same_result(a, b, path="result"):
    """Assert two results equal bit for bit, field by field (timings excepted).

    Recurses through dataclasses, mappings and sequences; arrays must have the
    same dtype, shape and bits (NaNs in the same places).
    """
    import dataclasses
    from collections.abc import Mapping

    assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
    if dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            if f.name not in TIMING_FIELDS:
                assert_same_result(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, Mapping):
        assert set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            if k not in TIMING_FIELDS:
                assert_same_result(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{path}: dtype/shape differ"
        assert a.tobytes() == b.tobytes(), f"{path} differs"
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{path}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_result(x, y, f"{path}[{i}]")
    elif isinstance(a, float):
        assert np.float64(a).tobytes() == np.float64(b).tobytes(), f"{path}: {a!r} != {b!r}"
    else:
        assert a == b, f"{path}: {a!r} != {b!r}"


#: The one registry of named test MDPs: name -> (group, builder).
_REGISTRY: dict[str, tuple[str, Callable[[], fs.TabularMDP]]] = {
    # kernel-vs-reference zoo: structured and random MDPs
    "dense": ("zoo", lambda: dense_random_mdp(12, 3, 0.9, 0)),
    "dense_infeasible": ("zoo", lambda: dense_random_mdp(15, 4, 0.95, 1, infeasible=0.3)),
    "dense_terminal": ("zoo", lambda: dense_random_mdp(15, 3, 0.9, 2, terminal=0.2,
                                                       infeasible=0.2)),
    "sparse": ("zoo", lambda: dense_random_mdp(30, 5, 0.8, 3, density=0.1)),
    # rows of 37 successors: the four-accumulator path for long rows
    "dense_long_rows": ("zoo", lambda: dense_random_mdp(37, 3, 0.95, 6, infeasible=0.2)),
    "garnet": ("zoo", lambda: fs.random_mdp(200, 4, 5, gamma=0.95, seed=4)),
    "grid": ("zoo", lambda: fs.gridworld(8, 9, slip=0.2, walls=[(2, 2), (3, 3)], gamma=0.95)),
    "maze": ("zoo", fs.mattar_daw_maze),
    "frozenlake": ("zoo", lambda: fs.TabularMDP.from_gymnasium(
        make_env("FrozenLake", map_name="4x4"), 0.95)),
    # policy evaluation / iteration
    "pi/random": ("pi", lambda: fs.random_mdp(40, 3, 4, gamma=0.9, seed=3)),
    "pi/random_term": ("pi", lambda: with_terminal(fs.random_mdp(40, 3, 4, gamma=0.95, seed=4))),
    "pi/random_infeasible": ("pi", lambda: with_infeasible(
        fs.random_mdp(30, 4, 3, gamma=0.9, seed=5))),
    "pi/grid": ("pi", lambda: fs.gridworld(6, 7, slip=0.2, gamma=0.95, walls=[(2, 2), (3, 4)])),
    # trajectory sampling and occupancy
    "sampling/grid": ("sampling", lambda: fs.gridworld(4, 5, slip=0.2, walls=[(1, 1), (2, 3)],
                                                       gamma=0.9)),
    "sampling/terminal_infeasible": ("sampling", lambda: dense_random_mdp(
        9, 3, 0.85, 2, terminal=0.25, infeasible=0.3)),
    "sampling/garnet": ("sampling", lambda: fs.random_mdp(40, 3, 4, gamma=0.9, seed=3)),
    "sampling/huys": ("sampling", lambda: fs.huys_planning_task(3)),
}


@functools.cache
def user_zoo_module():
    """``benchmarks/zoo.py``: MDPs written from arrays as QuantEcon users write them."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "zoo.py"
    spec = importlib.util.spec_from_file_location("fastsoft_bench_zoo", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# the user-written zoo at test size (400 states; the toy-text ones at their own size)
for _name in ("grid_absorbing", "grid_terminal", "maze", "chain", "riverswim", "banded",
              "garnet", "dense", "frozenlake", "cliffwalking"):
    _REGISTRY[f"user/{_name}"] = ("user", lambda n=_name: user_zoo_module().build(n, 400))


@functools.cache
def get_mdp(name: str) -> fs.TabularMDP:
    """The registered test MDP ``name``, built once per session."""
    return _REGISTRY[name][1]()


class _Group(Mapping):
    """Read-only view of one group of the registry, keyed by the name without its prefix."""

    def __init__(self, group: str):
        self._names = {name.split("/")[-1]: name for name, (g, _) in _REGISTRY.items()
                       if g == group}

    def __getitem__(self, key: str) -> fs.TabularMDP:
        return get_mdp(self._names[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


#: Structured and random MDPs used across kernel-vs-reference tests.
ZOO = _Group("zoo")
#: The MDPs of the policy evaluation / iteration tests.
PI_MDPS = _Group("pi")
#: The MDPs of the sampling and occupancy tests.
SAMPLING_MDPS = _Group("sampling")
#: The user-written zoo of ``benchmarks/zoo.py`` at test size.
USER_ZOO = _Group("user")


class _Threads:
    """Sets Numba's thread count for the rest of a test (``threads(n)``); restored at teardown."""

    def __init__(self) -> None:
        self.before = numba.get_num_threads()
        #: the counts a thread-independence test compares: one thread and up to two
        self.counts = (1, min(2, numba.config.NUMBA_NUM_THREADS))

    def __call__(self, n: int) -> int:
        numba.set_num_threads(n)
        return n


@pytest.fixture
def threads():
    """Switch Numba's thread count inside a test: ``threads(n)``; ``threads.counts`` lists the
    counts to compare (1 and min(2, NUMBA_NUM_THREADS)); ``threads.before`` the count at entry,
    restored afterwards."""
    t = _Threads()
    try:
        yield t
    finally:
        numba.set_num_threads(t.before)
