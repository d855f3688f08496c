"""Kernel dispatch: twins by size and mode, compile notices, compile time out of wall_time."""

import numba
import numpy as np
import pytest

import fastsoft as fs
from fastsoft import _jit
from fastsoft.cli import main


def _fresh_function():
    # a new function object each call: its first call always compiles (no disk cache)
    @numba.njit
    def f(x):
        return x * 2.0 + 1.0

    return f


def test_first_compile_notice_fires_once(monkeypatch):
    seen = []
    monkeypatch.setitem(_jit._TOTAL, "count", 0)
    monkeypatch.setattr(_jit, "_NOTICES", [])
    _jit.on_first_compile(lambda: seen.append(1))
    _jit.on_first_compile(_jit._NOTICES[0])  # registering twice keeps one
    assert _fresh_function()(1.0) == 3.0
    assert _fresh_function()(2.0) == 5.0
    assert seen == [1]
    assert _jit.compiled_anything()


def test_run_time_leaves_out_compilation():
    import time

    t0 = time.perf_counter()
    c0 = _jit.compile_seconds()
    _fresh_function()(1.0)
    elapsed = time.perf_counter() - t0
    spent = _jit.compile_seconds() - c0
    assert spent > 0.0
    assert _jit.run_time(t0) == pytest.approx(elapsed - spent, abs=0.05)
    assert _jit.run_time(t0) < elapsed


def test_kernel_twins_by_size_and_mode(monkeypatch):
    from fastsoft import _kernels as K

    k = K._greedy_step
    assert isinstance(k, _jit.Kernel) and k.has_parallel
    assert k.serial is not k.parallel
    # the choice itself, without running kernels
    small = (np.zeros(10), np.zeros((5, 2)))
    big = (np.zeros(_jit.PARALLEL_MIN_SIZE),)
    threads = numba.get_num_threads()
    assert not _jit._want_parallel(small)
    assert _jit._want_parallel(big) == (threads > 1)
    assert _jit._want_parallel(((np.zeros(3), big),)) == (threads > 1)  # inside tuples
    with _jit.parallel_mode(False):
        assert not _jit._want_parallel(big)
    with _jit.parallel_mode(True):
        assert _jit._want_parallel(small) == (threads > 1)
    monkeypatch.setattr(_jit, "_FORKED_FROM_OMP", True)
    with _jit.parallel_mode(True):
        assert not _jit._want_parallel(big)


def test_pure_serial_kernels_have_one_dispatcher():
    from fastsoft import _kernels as K

    assert not K._certificate.has_parallel
    assert K._certificate.serial is K._certificate.parallel
    assert K._vi_run.has_parallel  # calls the parallel sweeps


@pytest.mark.parametrize("parallel", [None, False, True])
def test_solve_parallel_argument_same_answer(parallel):
    m = fs.random_mdp(50, 3, 4, gamma=0.9, seed=1)
    ref = fs.reference.soft_value_iteration(m, 0.1, tol=1e-9)
    res = fs.solve(m, 0.1, tol=1e-9, method="vi", parallel=parallel)
    assert np.max(np.abs(res.V - ref["V"])) <= res.error_bound + 1e-9
    assert res.converged


def test_warmup_function_and_cli(capsys):
    times = fs.warmup(["inference"], parallel=False)
    assert list(times) == ["inference"] and times["inference"] >= 0.0
    with pytest.raises(ValueError, match="unknown group"):
        fs.warmup(["nope"])
    assert main(["warmup", "--only", "inference", "--serial"]) == 0
    out = capsys.readouterr().out
    assert "inference" in out and "warm:" in out
