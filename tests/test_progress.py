"""fastsoft.progress: the progress-bar callback of solvers and DRA runs."""

import io
import os
import signal
import sys
import threading

import numpy as np
import pytest

import fastsoft as fs
from fastsoft.progress import ProgressCallback, bound_fraction, progress_callback


class _TTY(io.StringIO):
    def isatty(self):
        return True


def test_bound_fraction_is_log_scale():
    assert bound_fraction(1e-4, 1.0, 1e-8) == pytest.approx(0.5)
    assert bound_fraction(1.0, 1.0, 1e-8) == 0.0
    assert bound_fraction(1e-2, 1.0, 1e-8) == pytest.approx(0.25)
    assert bound_fraction(1e-9, 1.0, 1e-8) == 1.0  # below tol: done
    assert bound_fraction(10.0, 1.0, 1e-8) == 0.0  # above the start: clipped
    assert bound_fraction(np.inf, 1.0, 1e-8) == 0.0
    assert bound_fraction(np.nan, 1.0, 1e-8) == 0.0
    assert bound_fraction(1e-3, np.inf, 1e-8) == 0.0  # no finite start yet


def test_bar_draws_the_bound_on_a_terminal():
    out = _TTY()
    with progress_callback("VI", tol=1e-8, file=out) as cb:
        assert cb.enabled
        for k, b in enumerate([1.0, 1e-2, 1e-4], start=1):
            assert cb({"n_iter": k, "error_bound": b, "residual": b, "elapsed": 0.1 * k}) is False
    text = out.getvalue()
    assert "VI" in text
    assert "bound=1.00e-04" in text
    assert "tol=1e-08" in text
    assert "it=3" in text
    assert " 50%" in text  # log(1/1e-4) / log(1/1e-8)
    assert cb.n_calls == 3 and cb.last["n_iter"] == 3


def test_bar_never_moves_backwards():
    out = _TTY()
    cb = progress_callback("PI", tol=1e-8, file=out)
    cb({"n_iter": 1, "error_bound": 1.0})
    cb({"n_iter": 2, "error_bound": 1e-4})
    cb({"n_iter": 3, "error_bound": 1e-2})  # a certificate may rise
    assert cb._pos == 500
    cb.close()
    cb.close()  # idempotent


def test_disabled_when_not_a_terminal_or_quiet():
    out = io.StringIO()  # isatty() is False
    cb = progress_callback("x", tol=1e-6, file=out)
    assert not cb.enabled
    assert cb({"n_iter": 1, "error_bound": 1.0}) is False
    cb.close()
    assert out.getvalue() == ""
    cb = progress_callback("x", tol=1e-6, file=_TTY(), quiet=True)
    assert not cb.enabled
    cb = progress_callback("x", tol=1e-6, file=_TTY(), enabled=False)
    assert not cb.enabled


def test_default_stream_is_stderr_and_respects_isatty(monkeypatch):
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert not progress_callback("x", tol=1e-6).enabled
    monkeypatch.setattr(sys, "stderr", _TTY())
    assert progress_callback("x", tol=1e-6).enabled


def test_without_tqdm_no_bar_but_callback_works(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm -> ImportError
    out = _TTY()
    cb = progress_callback("x", tol=1e-6, file=out, enabled=True)
    assert not cb.enabled
    assert cb({"n_iter": 1, "error_bound": 1.0}) is False
    assert out.getvalue() == ""


def test_counting_bar_for_episodes():
    out = _TTY()
    with progress_callback("DRA", total=200, unit="episodes", file=out) as cb:
        cb({"episode": 50, "objective": -3.25})
        cb({"episode": 100})
        assert cb.fraction({"episode": 100}) == pytest.approx(0.5)
    text = out.getvalue()
    assert "100/200" in text and "episodes" in text and "objective=-3.25" in text


def test_chained_callback_and_request_stop():
    seen = []
    cb = progress_callback("x", tol=1e-6, enabled=False,
                           callback=lambda info: seen.append(info["n_iter"]) or info["n_iter"] >= 2)
    assert cb({"n_iter": 1, "error_bound": 1.0}) is False
    assert cb({"n_iter": 2, "error_bound": 0.5}) is True
    assert seen == [1, 2]
    cb2 = progress_callback("x", tol=1e-6, enabled=False)
    cb2.request_stop()
    assert cb2({"n_iter": 1, "error_bound": 1.0}) is True


@pytest.mark.parametrize("kwargs, exc", [
    ({}, ValueError),                                  # neither tol nor total
    ({"tol": 0.0}, ValueError),
    ({"tol": -1.0}, ValueError),
    ({"tol": float("inf")}, ValueError),
    ({"total": -1}, ValueError),
    ({"total": 2.5}, ValueError),
    ({"tol": 1e-6, "callback": 3}, TypeError),
])
def test_invalid_arguments(kwargs, exc):
    with pytest.raises(exc):
        progress_callback("x", **kwargs)


def test_stops_soft_value_iteration_with_certificate():
    mdp = fs.gridworld(30, 30, slip=0.1, gamma=0.99)
    cb = progress_callback("VI", tol=1e-10, enabled=False,
                           callback=lambda info: info["n_iter"] >= 5)
    res = fs.soft_value_iteration(mdp, 0.1, tol=1e-10, callback=cb)
    assert res.interrupted and not res.converged
    assert res.n_iter == cb.last["n_iter"] >= 5
    assert np.isfinite(res.error_bound) and res.error_bound > 1e-10
    # the certificate holds: compare with the converged solution
    full = fs.soft_value_iteration(mdp, 0.1, tol=1e-10)
    assert np.max(np.abs(res.V - full.V)) <= res.error_bound + 1e-9


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread()
                    or not hasattr(signal, "SIGINT") or os.name == "nt",
                    reason="needs POSIX signals in the main thread")
def test_first_ctrl_c_requests_a_clean_stop_second_raises():
    previous = signal.getsignal(signal.SIGINT)
    mdp = fs.gridworld(30, 30, slip=0.1, gamma=0.99)

    def interrupt(info):
        if info["n_iter"] >= 3:
            os.kill(os.getpid(), signal.SIGINT)  # handled: sets stop_requested

    with progress_callback("VI", tol=1e-12, enabled=False, callback=interrupt,
                           catch_interrupt=True) as cb:
        res = fs.soft_value_iteration(mdp, 0.1, tol=1e-12, callback=cb)
        assert cb.interrupted and cb.stop_requested
        assert res.interrupted and np.isfinite(res.error_bound)
        with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C is not swallowed
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is previous


def test_repr_and_type():
    cb = progress_callback("abc", tol=1e-3, enabled=False)
    assert isinstance(cb, ProgressCallback)
    assert "abc" in repr(cb)


def test_finish_completes_the_bar_with_the_result():
    mdp = fs.gridworld(10, 10, slip=0.1, gamma=0.9)
    out = _TTY()
    cb = progress_callback("VI", tol=1e-8, file=out)
    res = fs.soft_value_iteration(mdp, 0.1, tol=1e-8, callback=cb)
    n_reports = cb.n_calls
    cb.finish(res)
    assert cb.n_calls == n_reports  # finish is not counted as a solver report
    text = out.getvalue()
    assert "100%" in text
    assert f"bound={res.error_bound:.2e}" in text and f"it={res.n_iter}" in text
    assert cb._bar is None  # closed


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread()
                    or os.name == "nt", reason="needs POSIX signals in the main thread")
def test_ctrl_c_before_any_report_raises_at_once():
    """A solver that never calls the callback must still be interruptible."""
    with progress_callback("x", tol=1e-6, enabled=False, catch_interrupt=True) as cb:
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
        assert cb.n_calls == 0


def test_solver_progress_helper(monkeypatch):
    from fastsoft.progress import solver_progress

    def user(info):
        return None

    with solver_progress(False, "x", tol=1e-6, callback=user) as cb:
        assert cb is user
    with solver_progress(False, "x", tol=1e-6) as cb:
        assert cb is None
    out = _TTY()
    monkeypatch.setattr(sys, "stderr", out)
    previous = signal.getsignal(signal.SIGINT)
    mdp = fs.gridworld(20, 20, slip=0.1, gamma=0.99)
    seen = []
    with solver_progress(True, "soft VI", tol=1e-9, callback=seen.append) as cb:
        assert isinstance(cb, ProgressCallback) and cb.enabled
        if threading.current_thread() is threading.main_thread():
            assert signal.getsignal(signal.SIGINT) == cb._on_sigint
        res = fs.soft_value_iteration(mdp, 0.2, tol=1e-9, callback=cb)
    assert signal.getsignal(signal.SIGINT) is previous
    assert res.converged and seen and seen[-1] == cb.last
    assert "soft VI" in out.getvalue() and "bound=" in out.getvalue()


def test_bar_shows_eta_and_compile_notice(tmp_path, monkeypatch):
    import io

    from fastsoft import progress

    cb = progress.ProgressCallback("solve", tol=1e-8, enabled=True, file=io.StringIO())
    assert "{remaining}" in cb._format("x")  # the ETA field of the bar
    # the cache check: index files under the package or NUMBA_CACHE_DIR
    monkeypatch.setattr(progress, "__file__", str(tmp_path / "pkg" / "progress.py"))
    (tmp_path / "pkg").mkdir()
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    assert progress.kernels_cached() is False

    class Tty(io.StringIO):
        def isatty(self):
            return True

    out = Tty()
    assert progress.compile_notice(file=out) is True
    assert out.getvalue() == progress.COMPILE_NOTICE + "\n"
    assert progress.compile_notice(file=Tty(), quiet=True) is False
    assert progress.compile_notice(file=io.StringIO()) is False  # not a terminal
    cache = tmp_path / "cache"
    (cache / "x").mkdir(parents=True)
    (cache / "x" / "k.nbi").write_bytes(b"")
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(cache))
    assert progress.kernels_cached() is True
    assert progress.compile_notice(file=Tty()) is False
