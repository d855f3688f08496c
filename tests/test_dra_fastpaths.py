"""The speed devices of the DRA kernels: the inline exp, the branch-free action draw, the
per-MDP caches of the public layer."""

import math

import numba
import numpy as np
import pytest

import fastsoft as fs
from fastsoft import dra
from fastsoft.dra import _exp, _kernels
from fastsoft.reference import dra as rdra

OK = dict(dra.MAZE_PARAMS, n_episodes=2, n_traj=2, max_steps=50, n_eval=0)


@numba.njit
def _inline_exp(x, out):
    for i in range(x.shape[0]):
        out[i] = _exp.exp(x[i])


@numba.njit
def _libm_exp(x, out):
    for i in range(x.shape[0]):
        out[i] = math.exp(x[i])


def _ulps(a, b):
    """Distance in units in the last place (finite, same sign)."""
    return np.abs(a.view(np.int64) - b.view(np.int64))


def test_inline_exp_matches_libm():
    rng = np.random.default_rng(0)
    x = np.concatenate([
        -rng.random(200_000) * 60.0,      # the softmax range
        -rng.random(50_000) * 745.5,      # down to underflow
        rng.uniform(-1e-9, 1e-9, 10_000),  # near 0
        rng.uniform(-520.0, 520.0, 10_000),  # across the fallback bounds
        [0.0, -0.0, 1.0, -1.0, -512.0, 512.0, -708.5, -745.2, -746.0, 709.0, 710.0],
    ])
    got, ref = np.empty_like(x), np.empty_like(x)
    _inline_exp(x, got)
    _libm_exp(x, ref)
    pos = ref > 0
    assert np.array_equal(got == 0, ref == 0) and np.array_equal(np.isinf(got), np.isinf(ref))
    fin = pos & np.isfinite(ref)
    # glibc >= 2.28 (same algorithm): identical; another libm: within an ulp
    assert _ulps(got[fin], ref[fin]).max() <= 1
    assert _ulps(got[fin], np.exp(x[fin])).max() <= 1
    special = np.array([0.0, -0.0, -np.inf, np.inf, np.nan])
    out = np.empty_like(special)
    _inline_exp(special, out)
    assert out[0] == 1.0 and out[1] == 1.0 and out[2] == 0.0 and out[3] == np.inf
    assert np.isnan(out[4])


def test_exp_table():
    """``2^(j/N) = scale (1 + tail)``: the table rebuilt in decimal arithmetic."""
    scale = (_exp._SBITS + (np.arange(_exp.N, dtype=np.uint64) << np.uint64(45))).view(
        np.float64)
    exact = 2.0 ** (np.arange(_exp.N) / _exp.N)  # within an ulp
    np.testing.assert_allclose(scale, exact, rtol=2.3e-16, atol=0)  # scale: the nearest double
    np.testing.assert_allclose(scale * (1.0 + _exp._TAIL), exact, rtol=2.3e-16, atol=0)
    assert np.all(np.abs(_exp._TAIL) <= 2.0**-53)
    assert _exp._SBITS[0] == np.float64(1.0).view(np.uint64) and _exp._TAIL[0] == 0.0


def test_sample_action_matches_reference():
    """The branch-free draw picks the first ``b`` with ``u < p_0 + ... + p_b``, zeros included."""
    rng = np.random.default_rng(3)
    for _ in range(2000):
        A = int(rng.integers(1, 7))
        p = rng.random(A) * (rng.random(A) < 0.7)
        if not np.any(p > 0):
            p[rng.integers(A)] = 1.0
        cum = np.cumsum(p)
        for u in (*(rng.random(3) * cum[-1]), 0.0, *cum, cum[-1] * (1 + 1e-15)):
            assert _kernels._sample_action(p, u) == rdra._sample(p, u), (p, u)


def test_cached_environment_is_not_shared_with_results():
    maze = fs.mattar_daw_maze()
    a = dra.train(maze, **OK, seed=1)
    a.memories[:] = False  # the result owns its copy
    b = dra.train(maze, **OK, seed=1)
    np.testing.assert_array_equal(a.qbar, b.qbar)
    np.testing.assert_array_equal(b.memories, ~maze.terminal[:, None] & np.ones((1, 4), bool))


def test_trap_check_is_cached_per_mdp():
    P = np.zeros((3, 2, 3))
    P[0, 0, 1] = P[0, 1, 2] = 1.0
    P[1, :, 1] = P[2, :, 2] = 1.0
    trap = fs.TabularMDP.from_dense(P, np.zeros((3, 2)), 0.9,
                                    terminal=np.array([False, True, False]),
                                    initial=[1.0, 0.0, 0.0])
    kw = {**OK, "max_steps": None}
    for _ in range(2):  # computed, then from the cache
        with pytest.raises(ValueError, match="no terminal state can be reached from state 2"):
            dra.train(trap, **kw)
    # a new initial distribution is a new MDP: checked again (state 1 is terminal)
    dra.train(trap.with_initial([0.0, 1.0, 0.0]), **kw)
