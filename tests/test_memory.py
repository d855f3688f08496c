"""Builders write their arrays without big temporaries, bitwise as the generic path does."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import fastsoft as fs
from fastsoft import _csr
from fastsoft import reference as ref
from fastsoft.generators import _grid_moves, _move_probs, grid_rows
from fastsoft.mdp import TabularMDP

GRIDS = [
    dict(rows=7, cols=9, slip=0.1, walls=[(1, 1), (2, 3)], goals={(0, 8): 5.0, (6, 0): -2.0}),
    dict(rows=20, cols=13, slip=0.3, walls=[(i, 5) for i in range(15)], gamma=0.95),
    dict(rows=12, cols=12),
    dict(rows=9, cols=31, slip=1.0, dtype=np.float32, goals=[(3, 3), (8, 10)], goal_reward=3.3),
    dict(rows=1, cols=7, slip=0.7, start=None, step_reward=-0.37),
    dict(rows=1, cols=1, goals={}),
    dict(rows=5, cols=4, slip=1 / 3),
]


def _ids(cells, cols):
    return np.unique(np.array([r * cols + c for r, c in cells], dtype=np.int64))


def _generic_gridworld(kw):
    """The grid through raw 16-entry rows and TabularMDP._build (validation, canonicalisation)."""
    rows, cols = kw["rows"], kw["cols"]
    goals = kw.get("goals")
    if goals is None:
        goals = {(rows - 1, cols - 1): kw.get("goal_reward", 0.0)}
    elif not isinstance(goals, dict):
        goals = {g: kw.get("goal_reward", 0.0) for g in goals}
    items = sorted((r * cols + c, v) for (r, c), v in goals.items())
    S = rows * cols
    idx, p, R, term = grid_rows(rows, cols, 0, S, kw.get("slip", 0.0),
                                _ids(kw.get("walls", []), cols),
                                np.array([k for k, _ in items], dtype=np.int64),
                                np.array([v for _, v in items]), kw.get("step_reward", -1.0))
    fast = fs.gridworld(**kw)
    return fast, TabularMDP._build(np.arange(0, S * 16 + 1, 4), idx, p, R, None, S, 4,
                                   fast.gamma, term, fast.initial, fast.dtype, {})


def _same_arrays(a, b):
    for f in ("indptr", "indices", "probs", "rewards", "terminal", "initial"):
        x, y = getattr(a, f), getattr(b, f)
        assert (x is None) == (y is None), f
        if x is not None:
            assert x.dtype == y.dtype and x.shape == y.shape, f
            assert np.array_equal(x, y), f


@pytest.mark.parametrize("kw", GRIDS)
def test_gridworld_bitwise_as_generic_build(kw):
    fast, slow = _generic_gridworld(kw)
    _same_arrays(fast, slow)


@pytest.mark.parametrize("slip", [0.0, 0.1, 0.25, 0.7, 1.0])
def test_grid_csr_matches_reference(slip):
    dest, _, _ = _grid_moves(11, 8, 0, 88, slip, np.array([9, 30]), np.array([87]),
                             np.array([1.0]), -1.0)
    pm = _move_probs(slip)
    for dt in (np.float64, np.float32):
        got = _csr.grid_csr(dest.astype(np.int32), pm, np.int32, dt)
        want = ref.grid_csr(dest, pm)
        assert np.array_equal(got[0], want[0])
        assert np.array_equal(got[1], want[1])
        assert got[2].dtype == dt
        assert np.array_equal(got[2], want[2].astype(dt))


@pytest.mark.parametrize("seed", range(5))
def test_normalize_rows_matches_reference(seed):
    rng = np.random.default_rng(seed)
    lens = rng.integers(0, 6, 200)
    indptr = np.concatenate([[0], np.cumsum(lens)])
    probs = rng.random(indptr[-1]) * rng.choice([0.0, 1.0, 1.3], indptr[-1])
    want = ref.normalize_rows(indptr, probs)
    assert np.array_equal(_csr.normalize_rows(indptr, probs), want)
    inplace = probs.copy()
    assert _csr.normalize_rows(indptr, inplace, inplace) is inplace
    assert np.array_equal(inplace, want)
    f32 = _csr.normalize_rows(indptr, probs, np.empty(probs.shape, np.float32))
    assert np.array_equal(f32, want.astype(np.float32))


@pytest.mark.parametrize("S,A,K,seed", [(1000, 4, 5, 0), (50, 3, 20, 3), (10, 2, 10, 5),
                                        (7, 3, 1, 2), (3000, 2, 7, 11)])
def test_random_mdp_bitwise_as_generic_build(S, A, K, seed):
    # the draws of random_mdp written out as np.diff of [0, sorted cuts, 1]
    rng = np.random.default_rng(seed)
    n = S * A
    if K * 4 > S:
        nxt = np.argsort(rng.random((n, S)), axis=1)[:, :K]
    else:
        nxt = rng.integers(0, S, size=(n, K))
        nxt.sort(axis=1)
        while True:
            redo = np.flatnonzero((np.diff(nxt, axis=1) == 0).any(axis=1))
            if not redo.size:
                break
            fresh = rng.integers(0, S, size=(redo.size, K))
            fresh.sort(axis=1)
            nxt[redo] = fresh
    nxt.sort(axis=1)
    cuts = np.sort(rng.random((n, K - 1)), axis=1)
    p = np.diff(np.concatenate([np.zeros((n, 1)), cuts, np.ones((n, 1))], axis=1))
    R = rng.uniform(0.0, 1.0, size=(S, A))
    slow = TabularMDP.from_csr(np.arange(0, n * K + 1, K), nxt.ravel(), p.ravel(), R, 0.9)
    _same_arrays(fs.random_mdp(S, A, K, gamma=0.9, seed=seed), slow)


def test_from_csr_leaves_inputs_untouched():
    rng = np.random.default_rng(4)
    indptr = np.arange(0, 3 * 40 + 1, 3)
    indices = rng.integers(0, 20, 120)
    probs = rng.random(120)
    probs /= np.add.reduceat(probs, indptr[:-1]).repeat(3) * 1.000000001
    for idx in (indices, indices.astype(np.int32)):
        keep_i, keep_p = idx.copy(), probs.copy()
        mdp = TabularMDP.from_csr(indptr, idx, probs, np.zeros((20, 2)), 0.9)
        assert np.array_equal(idx, keep_i) and np.array_equal(probs, keep_p)
        want = ref.canonicalize_csr(indptr, idx, probs)
        assert np.array_equal(mdp.indices, want[1])
        assert np.array_equal(mdp.probs, ref.normalize_rows(want[0], want[2]))


def test_gridworld_rejects_non_finite_rewards():
    with pytest.raises(ValueError, match="step_reward"):
        fs.gridworld(3, 3, step_reward=np.nan)
    with pytest.raises(ValueError, match="goals"):
        fs.gridworld(3, 3, goals={(0, 2): np.inf})


@pytest.mark.slow
def test_build_peak_memory_ratio():
    """A 300 x 300 slippery grid builds within 3x its arrays (measured: about 1.1x)."""
    code = ("import sys; sys.argv = ['x', '--quick', '--json']; "
            "import runpy; runpy.run_path('benchmarks/memory_peak.py', run_name='__main__')")
    root = pathlib.Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, check=True, timeout=300)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert {r["case"] for r in rows} == {"gridworld", "random_mdp"}
    for r in rows:
        assert r["mdp_mb"] > 1.0
        assert r["ratio"] < 3.0, r
