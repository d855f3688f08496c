"""Progress bars for long solves and DRA runs (the ``progress`` extra: tqdm).

:func:`progress_callback` builds a callback for the ``callback=`` argument of
:func:`fastsoft.soft_value_iteration`, the policy-iteration solvers and
:func:`fastsoft.solve`. It draws a tqdm bar whose position is the certified
error bound on a log scale, from the first bound reported down to ``tol``::

    >>> import fastsoft as fs
    >>> from fastsoft.progress import progress_callback
    >>> mdp = fs.gridworld(300, 300, slip=0.1)
    >>> with progress_callback("soft VI", tol=1e-8) as cb:  # doctest: +SKIP
    ...     res = fs.soft_value_iteration(mdp, 0.1, tol=1e-8, callback=cb)

The bar shows the elapsed time and an estimate of the time left (tqdm's
rate of progress along the log-scale bar: exact for linear convergence, the
rate of value iteration). The bar is drawn only when standard error is a terminal (and tqdm is
installed); otherwise the callback is silent and costs nothing. Used as a
context manager with ``catch_interrupt=True``, the first Ctrl-C asks the
solver to stop (the callback returns True at its next call, so the solver
returns its partial result with the certificate of its last completed
iteration and ``interrupted=True``); a second Ctrl-C, or one that comes
before the solver's first report, raises ``KeyboardInterrupt`` as usual.

Progress reports are dicts. Solvers report ``{"n_iter", "error_bound",
"residual", "elapsed"}``; loops that count towards a known total (DRA
episodes) report ``{"n": done}`` (or ``{"episode": done}``) and optional
figures to show, e.g. ``{"episode": 1200, "objective": -3.1}``.
"""

from __future__ import annotations

import contextlib
import math
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import IO, Any

from . import _driver

__all__ = ["ProgressCallback", "progress_callback", "solver_progress", "bound_fraction",
           "compile_notice", "kernels_cached"]

#: The one-line notice shown before a run that compiles the kernels.
COMPILE_NOTICE = "fastsoft: compiling kernels (first run only; later runs load them from disk)"


def kernels_cached() -> bool:
    """Whether Numba's on-disk cache holds fastsoft kernels (a cheap file-system check).

    Looks for Numba index files (``*.nbi``) in the package's ``__pycache__``
    folders and in ``NUMBA_CACHE_DIR`` when that is set. This is the seam for
    a backend hook: a backend that knows exactly which kernels a call needs
    can replace it.

    Returns
    -------
    bool

    Examples
    --------
    >>> isinstance(kernels_cached(), bool)
    True
    """
    import os
    from pathlib import Path

    pkg = Path(__file__).resolve().parent
    roots = [pkg]
    cache_dir = os.environ.get("NUMBA_CACHE_DIR")
    if cache_dir:
        roots.append(Path(cache_dir))
    for root in roots:
        try:
            for _ in root.rglob("*.nbi"):
                return True
        except OSError:
            continue
    return False


def compile_notice(*, quiet: bool = False, file: IO[str] | None = None) -> bool:
    """Print :data:`COMPILE_NOTICE` on a terminal when the kernels are not cached yet.

    Parameters
    ----------
    quiet : bool
        Print nothing.
    file : text stream, optional
        Default ``sys.stderr``; nothing is printed unless it is a terminal.

    Returns
    -------
    bool
        Whether the notice was printed.
    """
    stream = file if file is not None else sys.stderr
    if quiet or not _is_tty(stream):
        return False
    if kernels_cached():
        # a call may still need a kernel not compiled yet: say so when Numba starts
        from ._jit import on_first_compile

        on_first_compile(_late_notice)
        return False
    _NOTICE_SHOWN[0] = True
    print(COMPILE_NOTICE, file=stream, flush=True)
    return True


_NOTICE_SHOWN = [False]


def _late_notice() -> None:
    if _is_tty(sys.stderr) and not _NOTICE_SHOWN[0]:
        _NOTICE_SHOWN[0] = True
        print(COMPILE_NOTICE, file=sys.stderr, flush=True)

#: Resolution of the bar (the bar counts in thousandths of the way to ``tol``).
_STEPS = 1000


def bound_fraction(bound: float, start: float, tol: float) -> float:
    """Fraction of the way from ``start`` down to ``tol`` on a log scale.

    Parameters
    ----------
    bound : float
        The certified bound now.
    start : float
        The first certified bound seen (the bar's 0%).
    tol : float
        The target (the bar's 100%).

    Returns
    -------
    float
        ``log(start / bound) / log(start / tol)`` clipped to ``[0, 1]``; 1 when
        ``bound <= tol``, 0 when ``bound`` is not finite.

    Examples
    --------
    >>> bound_fraction(1e-4, 1.0, 1e-8)
    0.5
    """
    if not (bound == bound) or math.isinf(bound):  # NaN or inf
        return 0.0
    if bound <= tol:
        return 1.0
    if not (math.isfinite(start) and start > tol > 0):
        return 0.0
    frac = math.log(start / bound) / math.log(start / tol)
    return min(1.0, max(0.0, frac))


def _load_tqdm():
    try:
        from tqdm import tqdm
    except ImportError:  # the progress extra is optional
        return None
    return tqdm


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


class ProgressCallback:
    """A solver callback that draws a progress bar; see :func:`progress_callback`.

    Attributes
    ----------
    enabled : bool
        Whether a bar is drawn.
    last : dict or None
        The last progress report received.
    n_calls : int
        Reports received.
    stop_requested : bool
        Set by Ctrl-C (with ``catch_interrupt``) or :meth:`request_stop`; the
        next call then returns True.
    interrupted : bool
        Whether a Ctrl-C was caught.
    """

    def __init__(
        self,
        desc: str = "solve",
        tol: float | None = None,
        *,
        total: int | None = None,
        quiet: bool = False,
        enabled: bool | None = None,
        file: IO[str] | None = None,
        callback: Callable[[dict], bool | None] | None = None,
        catch_interrupt: bool = False,
        unit: str = "it",
    ) -> None:
        if tol is not None:
            tol = float(tol)
            if not (tol > 0 and math.isfinite(tol)):
                raise ValueError(f"tol must be a finite number > 0, got {tol}")
        if total is not None:
            if isinstance(total, bool) or not isinstance(total, int) or total < 0:
                raise ValueError(f"total must be a non-negative integer, got {total!r}")
        if tol is None and total is None:
            raise ValueError("give tol (a solver's target bound) or total (a count to reach)")
        if callback is not None and not callable(callback):
            raise TypeError("callback must be callable")
        self.desc = str(desc)
        self.tol = tol
        self.total = total
        self.file = file if file is not None else sys.stderr
        self.callback = callback
        self.catch_interrupt = bool(catch_interrupt)
        self.unit = unit
        self.last: dict[str, Any] | None = None
        self.n_calls = 0
        self.stop_requested = False
        self.interrupted = False
        self._start: float | None = None
        self._pos = 0
        self._bar = None
        self._shown: dict[str, Any] = {}
        self._old_handler = None
        if enabled is None:
            enabled = not quiet and _is_tty(self.file)
        self._tqdm = _load_tqdm() if (enabled and not quiet) else None
        self.enabled = self._tqdm is not None

    # ----------------------------------------------------------------- the bar
    def _open(self) -> None:
        if self._bar is not None or not self.enabled:
            return
        total = _STEPS if self.tol is not None else self.total
        self._bar = self._tqdm(total=total, desc=self.desc, file=self.file,
                               bar_format=self._format(""), leave=True, dynamic_ncols=True,
                               mininterval=0.1)

    def _format(self, text: str) -> str:
        """tqdm's bar_format with ``text`` (the bound, counts) in place."""
        text = text.replace("{", "{{").replace("}", "}}")
        if self.tol is not None:  # ETA: linear convergence is linear on this log scale
            return "{desc}: {percentage:3.0f}%|{bar}| " + text + " [{elapsed}<{remaining}]"
        return ("{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} " + self.unit
                + (" " + text if text else "") + " [{elapsed}<{remaining}]")

    def _postfix(self, info: dict) -> str:
        parts = []
        if "error_bound" in info:
            parts.append(f"bound={float(info['error_bound']):.2e}")
            if self.tol is not None:
                parts.append(f"tol={self.tol:.0e}")
        if "n_iter" in info:
            parts.append(f"{self.unit}={int(info['n_iter'])}")
        for key in ("objective", "reward", "cost"):
            if key in info:
                parts.append(f"{key}={float(info[key]):.3g}")
        return " ".join(parts)

    def fraction(self, info: dict) -> float:
        """Progress in ``[0, 1]`` for a report (log scale of the bound, or ``n / total``)."""
        if self.tol is not None and "error_bound" in info:
            b = float(info["error_bound"])
            if self._start is None and math.isfinite(b):
                self._start = b
            return bound_fraction(b, self._start if self._start is not None else math.inf,
                                  self.tol)
        n = info.get("n", info.get("episode", info.get("n_iter")))
        if self.total and n is not None:
            return min(1.0, max(0.0, float(n) / self.total))
        return 0.0

    def __call__(self, info: dict) -> bool:
        """Record a progress report, update the bar, and say whether to stop.

        Returns
        -------
        bool
            True when a stop was requested (Ctrl-C caught, :meth:`request_stop`)
            or the chained ``callback`` returned True.
        """
        self.n_calls += 1
        self.last = dict(info)
        frac = self.fraction(info)
        if self.enabled:
            self._open()
            if self.tol is not None:
                pos = int(round(frac * _STEPS))
            else:
                pos = int(info.get("n", info.get("episode", info.get("n_iter", self._pos))))
                pos = min(pos, self.total or pos)
            pos = max(pos, self._pos)  # never move backwards
            self._shown.update(info)  # keep the last known figures on display
            self._bar.bar_format = self._format(self._postfix(self._shown))
            self._bar.update(pos - self._pos)
            self._pos = pos
        stop = False
        if self.callback is not None:
            stop = bool(self.callback(info))
        return stop or self.stop_requested

    def finish(self, result: Any = None) -> None:
        """Show a solver's final state (its ``error_bound`` and ``n_iter``), then :meth:`close`.

        Solvers stop as soon as the bound reaches ``tol``, before reporting it;
        passing the returned :class:`~fastsoft.SolveResult` completes the bar.
        """
        if result is not None and self.enabled and self.tol is not None:
            bound = getattr(result, "error_bound", None)
            if bound is not None:
                info = {"error_bound": float(bound)}
                n = getattr(result, "n_iter", None)
                if n is not None:
                    info["n_iter"] = int(n)
                self.n_calls -= 1  # not a report from the solver
                self(info)
        self.close()

    def request_stop(self) -> None:
        """Make the next call return True (the solver then stops with its partial result)."""
        self.stop_requested = True

    def close(self) -> None:
        """Close the bar (idempotent) and restore the Ctrl-C handler."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        self._restore_handler()

    # ----------------------------------------------------------------- Ctrl-C
    def _on_sigint(self, signum, frame) -> None:
        # a second Ctrl-C, or one before any report (the solver may not call us at
        # all): give up at once
        if self.stop_requested or self.n_calls == 0:
            self._restore_handler()
            raise KeyboardInterrupt
        self.interrupted = True
        self.stop_requested = True

    def _install_handler(self) -> None:
        if not self.catch_interrupt or threading.current_thread() is not threading.main_thread():
            return
        self._old_handler = signal.getsignal(signal.SIGINT)
        signal.signal(signal.SIGINT, self._on_sigint)

    def _restore_handler(self) -> None:
        if self._old_handler is not None:
            signal.signal(signal.SIGINT, self._old_handler)
            self._old_handler = None

    def __enter__(self) -> ProgressCallback:
        self._install_handler()
        if self.enabled:  # before the solver's first call compiles its kernels
            compile_notice(file=self.file)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"ProgressCallback(desc={self.desc!r}, tol={self.tol}, total={self.total}, "
                f"enabled={self.enabled}, n_calls={self.n_calls})")


def progress_callback(
    desc: str = "solve",
    tol: float | None = None,
    *,
    total: int | None = None,
    quiet: bool = False,
    enabled: bool | None = None,
    file: IO[str] | None = None,
    callback: Callable[[dict], bool | None] | None = None,
    catch_interrupt: bool = False,
    unit: str = "it",
) -> ProgressCallback:
    """A solver callback that shows the certified bound falling on a tqdm bar.

    Parameters
    ----------
    desc : str
        Label of the bar.
    tol : float, optional
        The solver's target bound: the bar goes from the first bound reported
        (0%) to ``tol`` (100%) on a log scale, and shows the bound itself.
    total : int, optional
        For counting loops (DRA episodes) instead of ``tol``: the count that
        fills the bar; reports carry ``"n"`` (or ``"episode"``).
    quiet : bool
        No bar at all.
    enabled : bool, optional
        Force the bar on or off; by default on when ``file`` is a terminal.
    file : text stream, optional
        Where to draw (default ``sys.stderr``).
    callback : callable, optional
        Another callback to chain: it receives every report, and its returning
        True stops the solver.
    catch_interrupt : bool
        While used as a context manager (in the main thread), turn the first
        Ctrl-C into a clean stop request; a second one, or one before the
        first report, raises ``KeyboardInterrupt``.
    unit : str
        Name of the iteration count shown on the bar.

    Returns
    -------
    ProgressCallback
        Pass it as ``callback=``; close it (or use ``with``) when done.

    Raises
    ------
    ValueError
        If neither ``tol`` nor ``total`` is given, or either is invalid.
    TypeError
        If ``callback`` is not callable.

    Notes
    -----
    Without tqdm (``pip install fastsoft[progress]``) the callback works the
    same but draws nothing.
    """
    return ProgressCallback(desc, tol, total=total, quiet=quiet, enabled=enabled, file=file,
                            callback=callback, catch_interrupt=catch_interrupt, unit=unit)


@contextlib.contextmanager
def solver_progress(
    progress: bool,
    desc: str,
    *,
    tol: float | None = None,
    total: int | None = None,
    callback: Callable[[dict], bool | None] | None = None,
) -> Iterator[Callable[[dict], bool | None] | None]:
    """The callback a solver with a ``progress=`` argument should use.

    For solver authors: wrap the run in this context manager and pass what it
    yields as the callback::

        with solver_progress(progress, "soft value iteration", tol=tol,
                             callback=callback) as cb:
            out = _run_sweeps(..., cb, ...)

    Parameters
    ----------
    progress : bool
        False: yield ``callback`` unchanged (no bar, no signal handling).
        True: yield a :class:`ProgressCallback` chaining ``callback`` that
        draws a bar when stderr is a terminal and turns the first Ctrl-C into
        a clean stop (the solver returns its partial result with
        ``interrupted=True``).
    desc : str
        Label of the bar.
    tol, total : optional
        As in :func:`progress_callback` (give one).
    callback : callable, optional
        The user's own callback.

    Yields
    ------
    callable or None
    """
    if not progress:
        yield callback
        return
    with ProgressCallback(desc, tol, total=total, callback=callback,
                          catch_interrupt=True) as cb:
        yield cb


def _bar_factory(desc: str, *, tol: float | None = None, total: int | None = None,
                 callback: Callable[[dict], bool | None] | None = None) -> ProgressCallback:
    return ProgressCallback(desc, tol, total=total, callback=callback, catch_interrupt=True)


# the solvers reach the bar through this hook; they never import this module
_driver.register_progress(_bar_factory)
