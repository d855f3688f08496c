"""Many solves on a Dask cluster: :func:`map_solve`, :func:`submit_solves`, :func:`iter_solves`."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from ..mdp import TabularMDP
from ..result import SolveResult

__all__ = ["map_solve", "submit_solves", "iter_solves", "FUNCTIONS"]

#: Functions :func:`submit_solves` can run on the workers (``function=``).
FUNCTIONS = ("solve", "soft_value_iteration", "policy_iteration",
             "regularized_policy_iteration", "solve_batch")

# One Numba thread pool per worker process: tasks of a worker with several Dask
# threads take turns, each with the worker's whole pool.
_NUMBA_LOCK = threading.Lock()


def _dask():
    try:
        import distributed
    except ImportError as exc:  # pragma: no cover - exercised without the extra
        raise ImportError(
            "fastsoft.distributed needs dask.distributed: pip install 'fastsoft[distributed]'"
        ) from exc
    return distributed


def _run_task(function: str, mdp: TabularMDP, kwargs: dict, numba_threads: int | None):
    """Worker side: run ``fastsoft.<function>(mdp, **kwargs)`` on the worker's Numba pool."""
    import numba

    import fastsoft

    fn = getattr(fastsoft, function)
    if numba_threads is None:
        try:
            from distributed import get_worker

            numba_threads = get_worker().state.nthreads
        except (ImportError, ValueError, AttributeError):
            numba_threads = numba.config.NUMBA_NUM_THREADS
    n = max(1, min(int(numba_threads), numba.config.NUMBA_NUM_THREADS))
    with _NUMBA_LOCK:
        numba.set_num_threads(n)
        return fn(mdp, **kwargs)


def _problems(problems) -> list[tuple[TabularMDP, dict]]:
    if isinstance(problems, TabularMDP):
        raise TypeError("problems must be a sequence of MDPs (or (mdp, kwargs) pairs), "
                        "got a single TabularMDP: wrap it in a list")
    out = []
    for i, p in enumerate(problems):
        if isinstance(p, TabularMDP):
            out.append((p, {}))
        elif (isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], TabularMDP)
              and isinstance(p[1], Mapping)):
            out.append((p[0], dict(p[1])))
        else:
            raise TypeError(f"problems[{i}] must be a TabularMDP or a (TabularMDP, dict of "
                            f"solve arguments) pair, got {type(p).__name__}")
    return out


def submit_solves(client, problems: Iterable, *, function: str = "solve",
                  numba_threads: int | None = None, **solve_kwargs) -> list:
    """Submit one solve per problem to a Dask cluster; returns their futures in order.

    Every distinct MDP is sent to the cluster once (``client.scatter``), however
    many problems use it (a parameter grid over one MDP ships it once); the
    tasks then refer to it by its future.

    Parameters
    ----------
    client : distributed.Client
        Any client (a ``LocalCluster``'s or a remote scheduler's).
    problems : iterable of TabularMDP or (TabularMDP, dict)
        An MDP, or an MDP and keyword arguments of this problem alone (they
        override ``solve_kwargs``), e.g. ``(mdp, {"temperature": 0.3})``.
    function : str
        The fastsoft function the workers run: one of :data:`FUNCTIONS`
        present in the installed fastsoft (default :func:`fastsoft.solve`).
    numba_threads : int, optional
        Threads of the Numba pool each task uses; default the worker's Dask
        thread count. A worker runs one solve at a time on its pool (its Dask
        threads take turns), and the results do not depend on this number.
    **solve_kwargs
        Keyword arguments of every solve (``temperature``, ``tol``, ``method``, ...).

    Returns
    -------
    list of distributed.Future
        ``futures[i]`` resolves to what ``fastsoft.<function>(mdp_i, **kwargs_i)``
        returns locally (the same bits).

    Examples
    --------
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> import fastsoft as fs
    >>> from fastsoft.distributed import submit_solves
    >>> with Client(LocalCluster(n_workers=2, threads_per_worker=1)) as client:  # doctest: +SKIP
    ...     futs = submit_solves(client, [fs.gridworld(30, 30)] * 3, temperature=0.1)
    ...     results = client.gather(futs)
    """
    _dask()
    if not isinstance(function, str) or function not in FUNCTIONS:
        raise ValueError(f"function must be one of {FUNCTIONS}, got {function!r}")
    import fastsoft

    if not hasattr(fastsoft, function):
        raise ValueError(f"function {function!r} is not in this version of fastsoft")
    if numba_threads is not None and (isinstance(numba_threads, bool)
                                      or not isinstance(numba_threads, int) or numba_threads < 1):
        raise ValueError(f"numba_threads must be a positive int or None, got {numba_threads!r}")
    items = _problems(problems)
    unique: dict[int, TabularMDP] = {}
    for mdp, _ in items:
        unique.setdefault(id(mdp), mdp)
    ids = list(unique)
    scattered = client.scatter([unique[i] for i in ids], hash=False) if ids else []
    where = dict(zip(ids, scattered, strict=True))
    tag = uuid.uuid4().hex[:8]
    return [client.submit(_run_task, function, where[id(mdp)], {**solve_kwargs, **kw},
                          numba_threads, key=f"fastsoft-{function}-{tag}-{i}", pure=False)
            for i, (mdp, kw) in enumerate(items)]


def _bar(total: int, progress: bool):
    if not progress:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:  # the progress extra is optional
        return None
    return tqdm(total=total, desc="fastsoft map_solve", unit="solve")


def iter_solves(client, problems: Iterable, *, progress: bool = False,
                timeout: float | None = None, **kwargs) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, result)`` as the solves finish (``distributed.as_completed``).

    Same arguments as :func:`submit_solves`, plus ``progress`` (a tqdm bar over
    the tasks, when tqdm is installed) and ``timeout`` (seconds to wait for
    the whole batch before ``TimeoutError``). A failed solve raises its
    exception here, with its index in the message; the other tasks are
    cancelled.
    """
    distributed = _dask()
    futures = submit_solves(client, problems, **kwargs)
    index = {f.key: i for i, f in enumerate(futures)}
    bar = _bar(len(futures), progress)
    try:
        for fut in distributed.as_completed(futures, timeout=timeout):
            i = index[fut.key]
            try:
                res = fut.result()
            except Exception as exc:
                raise RuntimeError(f"solve of problems[{i}] failed: {exc!r}") from exc
            if bar is not None:
                bar.update(1)
            yield i, res
    finally:
        if bar is not None:
            bar.close()
        client.cancel([f for f in futures if not f.done()])


def map_solve(client, problems: Sequence, *, progress: bool = False,
              timeout: float | None = None, **kwargs) -> list[SolveResult]:
    """Solve many MDPs on a Dask cluster; returns the results in input order.

    Results stream back as they finish (:func:`iter_solves`) and are exactly
    what local solves return: ``map_solve(client, ps, **kw)[i]`` equals
    ``fastsoft.solve(ps[i], **kw)`` bit for bit (timings aside), whatever the
    number of workers or threads.

    Parameters
    ----------
    client : distributed.Client
    problems : sequence of TabularMDP or (TabularMDP, dict)
    progress : bool
        A tqdm progress bar over the tasks (when tqdm is installed).
    timeout : float, optional
        Seconds to wait for all results.
    **kwargs
        ``function``, ``numba_threads`` and the solve arguments of
        :func:`submit_solves`.

    Examples
    --------
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> import fastsoft as fs
    >>> from fastsoft.distributed import map_solve
    >>> mdps = [fs.random_mdp(500, 4, 5, gamma=0.95, seed=i) for i in range(20)]
    >>> with Client(LocalCluster(n_workers=2, threads_per_worker=1)) as client:  # doctest: +SKIP
    ...     results = map_solve(client, mdps, temperature=0.1, tol=1e-8)
    """
    problems = _problems(problems)
    out: list = [None] * len(problems)
    for i, res in iter_solves(client, problems, progress=progress, timeout=timeout, **kwargs):
        out[i] = res
    return out
