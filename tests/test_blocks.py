"""Block builders (rows identical to the whole-MDP builds) and the block kernels of
fastsoft.distributed against their NumPy references (no Dask needed)."""

import numpy as np
import pytest
from conftest import dense_random_mdp

import fastsoft as fs
from fastsoft.distributed import GarnetBlocks, GridBlocks, SliceBlocks, partition
from fastsoft.distributed._block import BlockState
from fastsoft.reference import blocks as ref


def _rows(mdp, lo, hi):
    A = mdp.n_actions
    a, b = mdp.indptr[lo * A], mdp.indptr[hi * A]
    term = None if mdp.terminal is None else mdp.terminal[lo:hi]
    return (mdp.indptr[lo * A:hi * A + 1] - a, mdp.indices[a:b], mdp.probs[a:b],
            mdp.rewards[lo:hi], term)


def _same_rows(block, mdp):
    ip, idx, p, R, term = _rows(mdp, block.lo, block.hi)
    assert np.array_equal(block.indptr, ip)
    assert np.array_equal(block.indices, idx)
    assert block.probs.tobytes() == p.astype(np.float64).tobytes()
    assert block.rewards.tobytes() == R.astype(np.float64).tobytes()
    if term is None or not term.any():
        assert block.terminal is None
    else:
        assert np.array_equal(block.terminal, term)


@pytest.mark.parametrize("kw", [
    dict(rows=7, cols=9, slip=0.2, walls=[(2, 2), (3, 3), (0, 1)], gamma=0.95),
    dict(rows=5, cols=6, slip=0.0, goals={(0, 3): 5.0, (4, 5): 1.0}, step_reward=-0.5),
    dict(rows=1, cols=13, slip=0.3, goals=[(0, 0)], goal_reward=2.0),
])
def test_grid_blocks_are_gridworld_rows(kw, monkeypatch):
    import fastsoft.distributed.blocks as blocks_mod

    monkeypatch.setattr(blocks_mod, "BUILD_PIECE", 7)  # blocks built in several pieces
    b = GridBlocks(**kw)
    whole = fs.gridworld(start=None, **kw)
    assert b.whole() == whole
    for n_parts in (1, 2, 3, 7):
        cuts = partition(whole.n_states, n_parts)
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
            _same_rows(b(lo, hi), whole)


def test_garnet_blocks_do_not_depend_on_the_partition(monkeypatch):
    import fastsoft.distributed.blocks as blocks_mod

    monkeypatch.setattr(blocks_mod, "GARNET_CHUNK", 50)  # several chunks per block
    for K, S in ((3, 230), (60, 200)):  # rejection draws, and the argsort path
        g = GarnetBlocks(S, 3, K, gamma=0.9, seed=7)
        whole = g.whole()
        assert whole.n_states == S and whole.nnz == S * 3 * K
        for n_parts in (1, 2, 5, 9):
            cuts = partition(S, n_parts)
            for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
                _same_rows(g(lo, hi), whole)
    assert not np.array_equal(GarnetBlocks(100, 2, 3, gamma=0.9, seed=1)(0, 100).probs,
                              GarnetBlocks(100, 2, 3, gamma=0.9, seed=2)(0, 100).probs)


def test_builders_refuse_bad_input():
    with pytest.raises(ValueError, match="block"):
        GridBlocks(3, 3)(2, 2)
    with pytest.raises(ValueError, match="outside"):
        GridBlocks(3, 3, walls=[(5, 5)])
    with pytest.raises(ValueError, match="overlap"):
        GridBlocks(3, 3, walls=[(2, 2)])
    with pytest.raises(ValueError, match="n_successors"):
        GarnetBlocks(10, 2, 11, gamma=0.9)
    with pytest.raises(TypeError, match="seed"):
        GarnetBlocks(10, 2, 3, gamma=0.9, seed=-1)


def _cases():
    yield "dense_terminal", dense_random_mdp(23, 3, 0.9, 0, terminal=0.2, infeasible=0.3)
    yield "garnet", fs.random_mdp(60, 4, 5, gamma=0.95, seed=3)
    yield "grid", fs.gridworld(6, 8, slip=0.2, walls=[(2, 3)], gamma=0.9)


@pytest.mark.parametrize("tau,eta,prior", [(0.0, 0.0, None), (0.3, 0.0, None),
                                           (0.2, 0.5, None), (0.0, 0.4, "vec")])
def test_block_kernels_match_reference(tau, eta, prior):
    rng = np.random.default_rng(0)
    for _name, mdp in _cases():
        A = mdp.n_actions
        mu = None
        if prior == "vec":
            mu = rng.random(A) + 0.1
            mu /= mu.sum()
        log_mu = None if mu is None else np.log(mu)
        V = rng.normal(size=mdp.n_states) * 3
        if mdp.terminal is not None:
            V[mdp.terminal] = 0.0
        TV, Q, pi = fs.bellman_backup(mdp, V, tau, kl_weight=eta, prior=mu)
        cuts = partition(mdp.n_states, 3)
        for lo, hi in zip(cuts[:-1], cuts[1:], strict=True):
            bs = BlockState(SliceBlocks(mdp)(lo, hi))
            bs.regularize(tau, eta, log_mu)
            n = hi - lo
            ext = np.concatenate([V[lo:hi], V[bs.halo]])
            term = None if mdp.terminal is None else mdp.terminal[lo:hi]
            # kernel greedy step == reference == whole-MDP backup
            bs.V[:] = ext
            bs.set_send(bs.halo[:0])
            Vb, Qb, pib, dmin, dmax, _ = bs.finish(ext[n:])
            rTV, rQ, rpi = ref.block_backup(bs.indptr, bs.indices, bs.probs, bs.R, mdp.gamma,
                                            ext, tau, eta, mu, term)
            np.testing.assert_allclose(Qb, rQ, rtol=0, atol=1e-12)
            np.testing.assert_allclose(pib, rpi, rtol=0, atol=1e-12)
            np.testing.assert_allclose(Qb, Q[lo:hi], rtol=0, atol=1e-12)
            np.testing.assert_allclose(pib, pi[lo:hi], rtol=0, atol=1e-12)
            live = slice(None) if term is None else ~term
            d = (TV[lo:hi] - V[lo:hi])[live]
            assert abs(dmin - d.min()) < 1e-12 and abs(dmax - d.max()) < 1e-12
            # one round of 1, 3 Jacobi or 4 Gauss-Seidel sweeps == reference
            for k, gs, it0 in ((1, False, 0), (3, False, 0), (4, True, 1), (4, True, 2)):
                bs.V[:] = ext
                bs.set_send(np.arange(lo, hi))
                out, dmin, dmax = bs.round(ext[n:], k, gs, it0)
                C, Vr, rmin, rmax = ref.block_round(k, gs, it0, bs.indptr, bs.indices,
                                                    bs.probs, bs.R, mdp.gamma, ext, tau, eta,
                                                    mu, term)
                np.testing.assert_allclose(bs.C, C, rtol=0, atol=1e-12)
                np.testing.assert_allclose(bs.C, TV[lo:hi], rtol=0, atol=1e-12)
                np.testing.assert_allclose(out, Vr[:n], rtol=0, atol=1e-11)
                assert abs(dmin - rmin) < 1e-12 and abs(dmax - rmax) < 1e-12


def test_block_halo_is_exactly_the_outside_successors():
    mdp = fs.gridworld(10, 10, slip=0.1)
    bs = BlockState(GridBlocks(10, 10, slip=0.1)(30, 60))
    A = mdp.n_actions
    succ = mdp.indices[mdp.indptr[30 * A]:mdp.indptr[60 * A]]
    expect = np.unique(succ[(succ < 30) | (succ >= 60)])
    assert np.array_equal(bs.halo, expect)
    assert np.array_equal(bs.halo, np.r_[20:30, 60:70])  # one grid row on each side


def test_dask_is_imported_lazily():
    import subprocess
    import sys

    code = ("import sys, fastsoft, fastsoft.distributed; "
            "assert 'distributed' not in sys.modules and 'dask' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
