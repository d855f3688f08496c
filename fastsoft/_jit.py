"""The one place that holds fastsoft's Numba JIT options and kernel dispatch.

Every kernel in the package is decorated with :data:`jit` (serial loops) or
:data:`pjit` (``prange`` loops). Both cache compiled code on disk
(``cache=True``) and use fastmath flags *without* ``nnan`` and ``ninf``:
``-inf`` marks infeasible actions and must propagate exactly.

Serial and parallel twins
-------------------------
Each decorated function becomes a :class:`Kernel` holding up to two compiled
twins of one source: ``serial`` (``prange`` runs as ``range``; every kernel it
calls is serial too) and ``parallel`` (its own ``prange`` loops on Numba's
thread pool, and the parallel twins of the kernels it calls). A call from
Python picks one:

* the serial twin when the largest array argument holds fewer than
  :data:`PARALLEL_MIN_SIZE` elements (a parallel region costs 5-50 us to
  start, more than a whole sweep of a small problem), when Numba has one
  thread, inside ``parallel_mode(False)``, or in a forked child (below);
* the parallel twin otherwise, or inside ``parallel_mode(True)``.

The twins compute the same bits: a ``prange`` loop of fastsoft writes
disjoint outputs per iteration and reduces nothing across iterations, so the
order of iterations does not matter. What the *algorithm* does on large
problems (chunked Jacobi, block Gauss-Seidel) is chosen by the solvers'
``parallel`` flag, not by the twin, so results never depend on which twin ran
or on the thread count. Only the twin a call needs is compiled: a small
problem never compiles a ``prange`` loop, which is most of the cold-start
time.

Threading layer and fork
------------------------
fastsoft keeps Numba's default threading layer (``tbb`` if installed, else
``omp``, else ``workqueue``; ``NUMBA_THREADING_LAYER`` still overrides it),
because the alternatives trade one failure for another: ``workqueue`` survives
``fork`` but aborts the process when two Python threads run parallel kernels
at once (dask's threaded workers, a thread pool of solves); ``tbb`` is safe
under both but is a separate package, and pip installs its library where a
virtual environment's loader does not look (Numba then falls back to
``omp``). GNU OpenMP (``omp``) is thread safe but not fork safe: a child
forked after the parent started OpenMP's threads is terminated by Numba as
soon as it enters a parallel region. fastsoft makes fork work another way: an
``os.register_at_fork`` hook marks such a child, and every kernel call in it
runs the serial twin (which never touches the OpenMP runtime) with the same
results. Worker pools thus get one thread per worker, which is what a pool of
processes on a shared machine wants anyway; under ``tbb`` or ``workqueue``
children keep their threads.
"""

from __future__ import annotations

import contextvars
import os
import threading
import time
import types
from collections.abc import Callable
from typing import Any

import numba
import numpy as np
from numba.core import event as _event
from numba.core import types as _nbtypes
from numba.core.types import unliteral as _unliteral  # type: ignore[attr-defined]
from numba.core.typing.typeof import typeof_impl

#: LLVM fast-math flags: contraction (FMA) and no signed zeros. Deliberately
#: *not* ``nnan``/``ninf`` (infinities are meaningful: ``-inf`` marks
#: infeasible actions), not ``afn``, not ``arcp`` (``x / lam`` as
#: ``x * (1 / lam)`` turns a subnormal temperature into ``0 * inf = nan``), and
#: not ``reassoc`` (it vectorises the 2-10 term sums over a CSR row, which
#: measured 20% slower on sparse sweeps).
FASTMATH = frozenset({"contract", "nsz"})

# NB: Numba's on-disk cache is keyed on the source file of each kernel, not on
# this module: after changing these options, delete the ``*.nbi``/``*.nbc``
# files under ``fastsoft/__pycache__`` (a new release changes the sources anyway).
#: ``cache=True``: compiled code is stored beside the sources (or under
#: ``NUMBA_CACHE_DIR``), so only the first run of a kernel compiles.
#: ``nogil=True``: kernels release the GIL, so Python threads can run solves
#: concurrently. ``error_model="numpy"``: division by zero gives inf/nan as in
#: NumPy instead of raising (and keeps the division branch-free).
_COMMON = dict(cache=True, nogil=True, fastmath=set(FASTMATH), error_model="numpy")

#: Below this many elements in its largest array argument a kernel call runs
#: its serial twin (20 000 is also the state-action count from which the
#: solvers choose their parallel algorithms, :data:`fastsoft._driver.PARALLEL_MIN_PAIRS`).
PARALLEL_MIN_SIZE = 20_000

_MODE: contextvars.ContextVar[bool | None] = contextvars.ContextVar("fastsoft_parallel",
                                                                    default=None)
_FORKED_FROM_OMP = False


def _after_fork_in_child() -> None:
    global _FORKED_FROM_OMP
    from numba.np.ufunc import parallel as _npp

    if _npp._is_initialized and _npp._threading_layer == "omp":
        _FORKED_FROM_OMP = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def forked_from_openmp() -> bool:
    """True in a process forked after its parent started GNU OpenMP's threads.

    Every kernel call in such a process runs serially (see the module notes).
    """
    return _FORKED_FROM_OMP


class parallel_mode:  # noqa: N801 - used like a function: ``with parallel_mode(True):``
    """Within the block, kernel calls use the parallel (True) or serial (False) twins.

    ``None`` keeps the default choice by size. The setting is per thread (and
    per asyncio task): a context variable. (A class rather than a generator
    context manager: solvers enter it on every call, and this costs a third.)

    Examples
    --------
    >>> import fastsoft as fs
    >>> from fastsoft._jit import parallel_mode
    >>> with parallel_mode(False):
    ...     res = fs.solve(fs.random_mdp(30_000, 2, 2, gamma=0.9, seed=0), 0.1, tol=1e-3)
    """

    __slots__ = ("_token", "_value")

    def __init__(self, parallel: bool | None) -> None:
        self._value = None if parallel is None else bool(parallel)
        self._token: contextvars.Token[bool | None] | None = None

    def __enter__(self) -> None:
        self._token = _MODE.set(self._value)

    def __exit__(self, *exc) -> None:
        if self._token is not None:
            _MODE.reset(self._token)


def _largest(args) -> int:
    n = 0
    for a in args:
        if isinstance(a, np.ndarray):
            s = a.size
        elif isinstance(a, tuple):
            s = _largest(a)
        else:
            continue
        if s > n:
            n = s
    return n


def _want_parallel(args) -> bool:
    mode = _MODE.get()
    if mode is False or _FORKED_FROM_OMP:
        return False
    if mode is None and _largest(args) < PARALLEL_MIN_SIZE:
        return False
    return numba.get_num_threads() > 1


def _no_literal_variants(disp):
    """Compile calls from Numba code for the plain argument types only.

    By default a call ``k(0, n, False)`` inside a kernel compiles ``k`` for
    ``Literal[int](0)`` and ``Literal[bool](False)``, so one kernel called from
    four places compiled eight times (most of the 35 s cold start); with the
    literals widened it compiles once per plain signature. The flags stay
    runtime branches on loop-invariant values.
    """
    template = disp.get_call_template

    def get_call_template(args, kws):
        return template(tuple(_unliteral(a) for a in args),
                        {k: _unliteral(v) for k, v in kws.items()})

    disp.get_call_template = get_call_template
    return disp


def _copy(f, globals_: dict, suffix: str):
    """``f`` with other globals, renamed ``qualname + suffix`` (its own disk-cache entry)."""
    twin = types.FunctionType(f.__code__, globals_, f.__name__, f.__defaults__, f.__closure__)
    twin.__kwdefaults__ = f.__kwdefaults__
    twin.__qualname__ = f.__qualname__ + suffix
    twin.__doc__ = f.__doc__
    return twin


class Kernel:
    """A Numba kernel with a serial and a parallel twin compiled on demand.

    Calling it from Python runs the twin chosen as the module notes say;
    ``.serial`` and ``.parallel`` are the two Numba dispatchers (the same one
    when nothing in the kernel's call tree has a ``prange`` loop). Numba code
    that calls a kernel calls the twin of its own kind.
    """

    def __init__(self, py_func: Callable, own_prange: bool) -> None:
        self.py_func = py_func
        self._own_prange = own_prange
        self._serial: Any = None
        self._parallel: Any = None
        self._tree: bool | None = None
        self.__name__ = py_func.__name__
        self.__qualname__ = py_func.__qualname__
        self.__module__ = py_func.__module__
        self.__doc__ = py_func.__doc__
        self.__wrapped__ = py_func
        _KERNELS.append(self)

    def _callees(self) -> dict[str, Kernel]:
        g = self.py_func.__globals__
        return {n: g[n] for n in self.py_func.__code__.co_names if isinstance(g.get(n), Kernel)}

    @property
    def has_parallel(self) -> bool:
        """Whether this kernel or one it calls has a ``prange`` loop."""
        if self._tree is None:
            self._tree = self._own_prange  # provisional, for (mutually) recursive kernels
            self._tree = self._own_prange or any(k.has_parallel
                                                 for k in self._callees().values())
        return bool(self._tree)

    @property
    def serial(self):
        """The serial twin (a Numba dispatcher)."""
        if self._serial is None:
            f = self.py_func
            if self.has_parallel:
                # Its own cache entry: a cache written before the twins existed holds
                # parallel code under the plain name, which must never run as the
                # serial twin (it would enter OpenMP in a forked child).
                f = _copy(f, f.__globals__, "__serial")
            self._serial = _no_literal_variants(numba.njit(**_COMMON)(f))
        return self._serial

    @property
    def parallel(self):
        """The parallel twin (a Numba dispatcher; the serial one if nothing is parallel)."""
        if not self.has_parallel:
            return self.serial
        if self._parallel is None:
            f = self.py_func
            g = dict(f.__globals__)
            for name, k in self._callees().items():
                g[name] = k.parallel
            self._parallel = _no_literal_variants(
                numba.njit(parallel=self._own_prange, **_COMMON)(_copy(f, g, "__parallel")))
        return self._parallel

    def __call__(self, *args):
        if self.has_parallel and _want_parallel(args):
            return self.parallel(*args)
        return self.serial(*args)

    def __repr__(self) -> str:
        return f"<fastsoft kernel {self.__module__}.{self.__qualname__}>"


_KERNELS: list[Kernel] = []


@typeof_impl.register(Kernel)
def _typeof_kernel(val, c):
    # a kernel named in Numba code (outside a parallel twin) is its serial twin
    return _nbtypes.Dispatcher(val.serial)


def jit(fn: Callable) -> Kernel:
    """Serial kernel decorator (loops run in order; callees may be parallel kernels)."""
    return Kernel(fn, own_prange=False)


def pjit(fn: Callable) -> Kernel:
    """Parallel kernel decorator (``prange`` loops run on Numba's thread pool when large)."""
    return Kernel(fn, own_prange=True)


#: Small helpers inlined into their callers at Numba-IR level (the per-row and
#: per-state bodies of the sweeps: a call per row costs more than the row).
ijit = numba.njit(inline="always", **_COMMON)

prange = numba.prange


# --- compile notices and compile time -------------------------------------------------

_NOTICES: list[Callable[[], None]] = []
_STATE = threading.local()
_TOTAL = {"seconds": 0.0, "count": 0}
_LOCK = threading.Lock()


class _CompileListener(_event.Listener):
    """Counts Numba compilations (cache misses only) and their wall time, per thread."""

    def on_start(self, event) -> None:
        depth = getattr(_STATE, "depth", 0)
        _STATE.depth = depth + 1
        if depth == 0:
            _STATE.t0 = time.perf_counter()
            with _LOCK:
                _TOTAL["count"] += 1
                due = tuple(_NOTICES)
                _NOTICES.clear()
            for fn in due:
                fn()

    def on_end(self, event) -> None:
        _STATE.depth -= 1
        if _STATE.depth == 0:
            t1 = time.perf_counter()
            dt = t1 - _STATE.t0
            _STATE.seconds = getattr(_STATE, "seconds", 0.0) + dt
            spans = getattr(_STATE, "spans", None)
            if spans is None:
                spans = _STATE.spans = []
            spans.append((_STATE.t0, t1))
            del spans[:-256]
            with _LOCK:
                _TOTAL["seconds"] += dt


_event.register("numba:compile", _CompileListener())


def on_first_compile(fn: Callable[[], None]) -> Callable[[], None]:
    """Call ``fn()`` once, when this process next starts compiling Numba code.

    A compilation happens only where the disk cache misses (a fresh
    environment, new sources, or a kernel variant not used before); the CLI
    arms this hook to print ``compiling kernels (first run only)`` the moment
    compiling starts. Arming the same ``fn`` twice before it fires keeps one
    registration. Returns ``fn``.
    """
    with _LOCK:
        if fn not in _NOTICES:
            _NOTICES.append(fn)
    return fn


def compile_seconds() -> float:
    """Wall time this thread has spent compiling Numba code (seconds, monotone)."""
    return getattr(_STATE, "seconds", 0.0)


def run_time(t_start: float) -> float:
    """Seconds since ``t_start`` (a ``time.perf_counter()`` reading) not spent compiling.

    Solvers report this as ``wall_time``, so that a first call's compilation
    (this thread's, since ``t_start``) is not counted as solve time.
    """
    now = time.perf_counter()
    spent = 0.0
    for a, b in getattr(_STATE, "spans", ()):
        if b > t_start:
            spent += b - max(a, t_start)
    return max(now - t_start - spent, 0.0)


def compiled_anything() -> bool:
    """Whether this process has compiled any Numba code (beyond loading its cache)."""
    return _TOTAL["count"] > 0


def set_num_threads(n: int) -> None:
    """Use ``n`` threads in parallel kernels (this thread; 1 <= n <= NUMBA_NUM_THREADS).

    Maps to :func:`numba.set_num_threads`; the maximum is fixed when Numba
    starts (environment variable ``NUMBA_NUM_THREADS``). With ``n = 1`` every
    kernel runs its serial twin. Results do not depend on ``n``.

    Parameters
    ----------
    n : int
        Threads, from 1 to :func:`max_threads`.

    Returns
    -------
    None

    Examples
    --------
    >>> import fastsoft
    >>> fastsoft.set_num_threads(1)
    >>> fastsoft.get_num_threads()
    1
    >>> fastsoft.set_num_threads(fastsoft.max_threads())
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    top = numba.config.NUMBA_NUM_THREADS
    if not 1 <= int(n) <= top:
        raise ValueError(f"n must be in [1, {top}] (NUMBA_NUM_THREADS), got {n}")
    numba.set_num_threads(int(n))


def get_num_threads() -> int:
    """Threads parallel kernels use in this thread (see :func:`set_num_threads`).

    Returns
    -------
    int

    Examples
    --------
    >>> import fastsoft
    >>> 1 <= fastsoft.get_num_threads() <= fastsoft.max_threads()
    True
    """
    return int(numba.get_num_threads())


def max_threads() -> int:
    """The most threads :func:`set_num_threads` accepts (``NUMBA_NUM_THREADS``).

    Returns
    -------
    int

    Examples
    --------
    >>> import fastsoft
    >>> fastsoft.max_threads() >= 1
    True
    """
    return int(numba.config.NUMBA_NUM_THREADS)


__all__ = ["FASTMATH", "Kernel", "PARALLEL_MIN_SIZE", "compile_seconds", "compiled_anything",
           "forked_from_openmp", "get_num_threads", "ijit", "jit", "max_threads",
           "on_first_compile", "parallel_mode", "pjit", "prange", "run_time", "set_num_threads"]
