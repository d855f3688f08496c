import os

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


def mdp_zoo():
    """Structured and random MDPs used across kernel-vs-reference tests."""
    return {
        "dense": dense_random_mdp(12, 3, 0.9, 0),
        "dense_infeasible": dense_random_mdp(15, 4, 0.95, 1, infeasible=0.3),
        "dense_terminal": dense_random_mdp(15, 3, 0.9, 2, terminal=0.2, infeasible=0.2),
        "sparse": dense_random_mdp(30, 5, 0.8, 3, density=0.1),
        # rows of 37 successors: the four-accumulator path for long rows
        "dense_long_rows": dense_random_mdp(37, 3, 0.95, 6, infeasible=0.2),
        "garnet": fs.random_mdp(200, 4, 5, gamma=0.95, seed=4),
        "grid": fs.gridworld(8, 9, slip=0.2, walls=[(2, 2), (3, 3)], gamma=0.95),
        "maze": fs.mattar_daw_maze(),
        "frozenlake": fs.TabularMDP.from_gymnasium(make_env("FrozenLake", map_name="4x4"), 0.95),
    }


@pytest.fixture(scope="session")
def zoo():
    return mdp_zoo()


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
