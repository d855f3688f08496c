"""fastsoft vs :mod:`fastsoft.reference`: the measuring core of ``fastsoft bench``.

Two measurements per problem, both through public functions only:

- one soft Bellman sweep: fastsoft's time per Jacobi sweep (the difference
  between runs of ``2k`` and ``k`` sweeps of :func:`fastsoft.soft_value_iteration`,
  divided by ``k``, so set-up and the final greedy step cancel) against one
  call of :func:`fastsoft.reference.bellman_backup` (SciPy sparse product and a
  vectorised log-sum-exp);
- a full solve to ``tol``: :func:`fastsoft.soft_value_iteration` with Jacobi
  sweeps (the reference's algorithm: the ratio is the kernels'), and
  :func:`fastsoft.solve` with ``method="auto"`` (fastsoft's choice of
  algorithm), against :func:`fastsoft.reference.soft_value_iteration`.

Sweep times are medians over ``repeat`` runs after a warm-up run
(compilation); a fastsoft solve is timed up to three times (median) after a
warm-up run of one iteration, the reference's once.
``benchmarks/sweep_ratios.py`` measures the raw kernels instead.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from .generators import gridworld, random_mdp
from .mdp import TabularMDP

__all__ = ["BenchRow", "SIZES", "bench_problems", "measure_ratios", "format_table", "format_row",
           "median_time", "machine_info", "rows_to_json", "compare_runs", "format_comparison",
           "parse_threshold"]

#: ``size -> (grid side, random-MDP states)``; "large" is the issue's benchmark.
SIZES: dict[str, tuple[int, int]] = {
    "tiny": (30, 2_000),
    "small": (100, 10_000),
    "medium": (300, 30_000),
    "large": (1000, 100_000),
}

#: A reference full solve is skipped above this many state-action pairs
#: unless asked for (it takes minutes on the large grid).
REFERENCE_SOLVE_MAX_PAIRS = 200_000


@dataclass(frozen=True)
class BenchRow:
    """One line of the benchmark table.

    Attributes
    ----------
    problem : str
        The MDP, e.g. ``"gridworld 100x100 slip 0.1"``.
    what : str
        What was timed (``"soft sweep [jacobi]"``, ``"solve tol 1e-08 [gauss-seidel]"``).
    fastsoft_s : float
        Seconds taken by fastsoft.
    reference_s : float
        Seconds taken by the reference (NaN when skipped).
    note : str
        Extra information (iterations, agreement of the solutions).
    """

    problem: str
    what: str
    fastsoft_s: float
    reference_s: float
    note: str = ""

    @property
    def ratio(self) -> float:
        """``reference_s / fastsoft_s``: how many times faster fastsoft is (NaN if unknown)."""
        if not (self.fastsoft_s > 0) or not np.isfinite(self.reference_s):
            return float("nan")
        return self.reference_s / self.fastsoft_s


def median_time(fn: Callable[[], object], repeat: int, *, warmup: bool = True) -> float:
    """Median wall time of ``fn()`` over ``repeat`` calls.

    Parameters
    ----------
    fn : callable
        Called without arguments.
    repeat : int
        Timed calls (at least one).
    warmup : bool
        Make one untimed call first (compilation, caches).

    Returns
    -------
    float
        Seconds.
    """
    if warmup:
        fn()
    ts = []
    for _ in range(max(1, int(repeat))):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def bench_problems(size: str = "small", *, grid: int | None = None, states: int | None = None,
                   gamma: float = 0.99, seed: int = 0) -> dict[str, TabularMDP]:
    """The benchmark MDPs: a slippery gridworld and a sparse random MDP.

    Parameters
    ----------
    size : {"tiny", "small", "medium", "large"}
        Preset sizes (:data:`SIZES`); ``"large"`` is a 1000 x 1000 grid and a
        100,000-state random MDP with 8 actions and 10 successors.
    grid, states : int, optional
        Override the grid side and the random MDP's number of states (0 drops it).
    gamma : float
    seed : int
        Seed of the random MDP.

    Returns
    -------
    dict
        ``name -> TabularMDP``.
    """
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    n_grid, n_rand = SIZES[size]
    n_grid = n_grid if grid is None else int(grid)
    n_rand = n_rand if states is None else int(states)
    if n_grid < 0 or n_rand < 0:
        raise ValueError("grid and states must be >= 0")
    out: dict[str, TabularMDP] = {}
    if n_grid:
        out[f"gridworld {n_grid}x{n_grid} slip 0.1"] = gridworld(n_grid, n_grid, slip=0.1,
                                                                 gamma=gamma)
    if n_rand:
        k = min(10, n_rand)
        out[f"random_mdp({n_rand}, 8, {k})"] = random_mdp(n_rand, 8, k, gamma=gamma, seed=seed)
    if not out:
        raise ValueError("nothing to benchmark (grid and states are both 0)")
    return out


def _sweep_time(mdp: TabularMDP, tau: float, V: np.ndarray, repeat: int, k: int) -> float:
    """Seconds per Jacobi sweep: the time of ``2k`` minus ``k`` sweeps over the sweeps
    actually run (a solver may stop at the round-off floor before ``max_iter``)."""
    from .vi import soft_value_iteration

    def run(n):
        t = time.perf_counter()
        res = soft_value_iteration(mdp, tau, tol=1e-300, max_iter=n, V0=V, order="jacobi")
        return time.perf_counter() - t, res.n_iter

    run(1)  # compile
    # enough sweeps to rise above the per-call overhead and the timer's noise, but no
    # more than the solver runs before it stops at the round-off floor
    while k < 100_000:
        t1, n1 = run(k)
        if t1 > 5e-3 or run(4 * k)[1] < 4 * k:
            break
        k *= 4
    diffs = []
    for _ in range(max(1, repeat)):
        t1, n1 = run(k)
        t2, n2 = run(2 * k)
        if n2 > n1:
            diffs.append((t2 - t1) / (n2 - n1))
    med = statistics.median(diffs) if diffs else float("nan")
    return med if med > 0 else float("nan")  # below the timer's noise: not measurable


def _fastsoft_solvers(mdp: TabularMDP, tau: float):
    """``(label, run(tol, max_iter))`` pairs: Jacobi value iteration (the reference's
    algorithm, so the ratio is the kernels'), and fastsoft's own choice
    (:func:`fastsoft.solve` with ``method="auto"``)."""
    from .solver import solve
    from .vi import soft_value_iteration

    return [
        ("vi jacobi", lambda t, n: soft_value_iteration(mdp, tau, tol=t, max_iter=n,
                                                        order="jacobi")),
        ("auto", lambda t, n: solve(mdp, tau, tol=t, method="auto", max_iter=n)),
    ]


def measure_ratios(
    problems: Mapping[str, TabularMDP] | None = None,
    *,
    size: str = "small",
    temperature: float = 0.1,
    tol: float = 1e-8,
    repeat: int = 5,
    sweeps: int = 10,
    solve: bool = True,
    reference_solve_max_pairs: int | None = REFERENCE_SOLVE_MAX_PAIRS,
    report: Callable[[BenchRow], None] | None = None,
) -> list[BenchRow]:
    """Time fastsoft against the NumPy/SciPy reference.

    Parameters
    ----------
    problems : mapping name -> TabularMDP, optional
        Default :func:`bench_problems` of ``size``.
    size : str
        Preset of :func:`bench_problems` when ``problems`` is not given.
    temperature : float
        Entropy weight ``tau`` of the soft operator.
    tol : float
        Certified tolerance of the full solves.
    repeat : int
        Timed repetitions (medians are reported).
    sweeps : int
        ``k`` of the sweep measurement (runs of ``k`` and ``2k`` sweeps).
    solve : bool
        Also time full solves.
    reference_solve_max_pairs : int or None
        Skip the reference's full solve on larger problems (None: never skip).
    report : callable, optional
        Called with each row as soon as it is measured (to print as you go).

    Returns
    -------
    list of BenchRow
    """
    from . import reference as ref
    from .vi import pessimistic_start

    if problems is None:
        problems = bench_problems(size)
    repeat = int(repeat)
    sweeps = int(sweeps)
    if repeat < 1 or sweeps < 1:
        raise ValueError("repeat and sweeps must be >= 1")
    tau = float(temperature)
    if not tau >= 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    rows: list[BenchRow] = []

    def add(row: BenchRow) -> None:
        rows.append(row)
        if report is not None:
            report(row)

    for name, mdp in problems.items():
        V = pessimistic_start(mdp) + np.random.default_rng(0).random(mdp.n_states)
        if mdp.has_terminal:
            V[mdp.terminal] = 0.0
        P = ref.transition_matrix(mdp)
        t_ref = median_time(lambda mdp=mdp, V=V, P=P: ref.bellman_backup(mdp, V, tau, P=P),
                            max(3, repeat // 2))
        t_fs = _sweep_time(mdp, tau, V, repeat, sweeps)
        add(BenchRow(name, "soft sweep [jacobi]", t_fs, t_ref))
        if not solve:
            continue
        pairs = mdp.n_states * mdp.n_actions
        run_ref = reference_solve_max_pairs is None or pairs <= reference_solve_max_pairs
        t_r = float("nan")
        out = None
        if run_ref:
            t0 = time.perf_counter()
            out = ref.soft_value_iteration(mdp, tau, tol=tol)
            t_r = time.perf_counter() - t0
        for label, run in _fastsoft_solvers(mdp, tau):
            run(1e-300, 1)  # warm-up: compilation
            t0 = time.perf_counter()
            res = run(tol, None)
            t_k = time.perf_counter() - t0
            if t_k < 1.0:  # cheap: the median of up to three runs
                times = [t_k]
                for _ in range(min(repeat, 3) - 1):
                    t0 = time.perf_counter()
                    run(tol, None)
                    times.append(time.perf_counter() - t0)
                t_k = statistics.median(times)
            note = f"{res.method} {res.n_iter} it"
            if out is not None:
                err = float(np.max(np.abs(res.V - out["V"])))
                note += f"; reference {out['n_iter']} it, max|dV| {err:.1e}"
            else:
                note += "; reference skipped"
            add(BenchRow(name, f"solve tol {tol:.0e} [{label}]", t_k, t_r, note))
    return rows


def _fmt_time(t: float) -> str:
    if not np.isfinite(t):
        return "-"
    if t < 1e-3:
        return f"{t * 1e6:.0f}us"
    if t < 1.0:
        return f"{t * 1e3:.1f}ms"
    return f"{t:.2f}s"


def format_table(rows: list[BenchRow], *, header: bool = True) -> str:
    """Render rows as a fixed-width text table.

    Parameters
    ----------
    rows : list of BenchRow
    header : bool
        Start with the column names and a rule.

    Returns
    -------
    str
        Columns problem, what, fastsoft time, reference time, ratio
        (``reference / fastsoft``), note.
    """
    lines = []
    if header:
        h = (f"{'problem':32s} {'what':34s} {'fastsoft':>10s} {'reference':>10s} "
             f"{'ratio':>8s}  note")
        lines += [h, "-" * len(h)]
    for r in rows:
        ratio = f"{r.ratio:7.1f}x" if np.isfinite(r.ratio) else f"{'-':>8s}"
        lines.append(f"{r.problem:32s} {r.what:34s} {_fmt_time(r.fastsoft_s):>10s} "
                     f"{_fmt_time(r.reference_s):>10s} {ratio}  {r.note}".rstrip())
    return "\n".join(lines)


def format_row(row: BenchRow) -> str:
    """One row without the header."""
    return format_table([row], header=False)


# ---------------------------------------------------------------------- records
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def machine_info() -> dict:
    """Where and with what a benchmark ran: machine, CPU, threads, load, versions.

    Returns
    -------
    dict
        ``node``, ``system``, ``machine``, ``cpu``, ``cpu_count``,
        ``numba_threads``, ``threading_layer`` (when known), ``load_average``
        (1, 5, 15 min), and ``python``, ``numpy``, ``scipy``, ``numba``,
        ``fastsoft`` versions.

    Examples
    --------
    >>> sorted(machine_info())[:3]
    ['cpu', 'cpu_count', 'fastsoft']
    """
    import numba
    import scipy

    from . import __version__

    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        load = None
    info = {
        "node": platform.node(), "system": platform.platform(), "machine": platform.machine(),
        "cpu": _cpu_model(), "cpu_count": os.cpu_count(),
        "numba_threads": int(numba.get_num_threads()), "load_average": load,
        "python": sys.version.split()[0], "numpy": np.__version__, "scipy": scipy.__version__,
        "numba": numba.__version__, "fastsoft": __version__,
    }
    try:
        info["threading_layer"] = numba.threading_layer()
    except ValueError:  # no parallel kernel has run yet
        pass
    return info


def _row_name(row: BenchRow) -> str:
    return f"{row.problem} | {row.what}"


def rows_to_json(rows: list[BenchRow], settings: Mapping | None = None) -> dict:
    """A JSON-ready record of a benchmark run (pytest-benchmark's layout where it applies).

    Parameters
    ----------
    rows : list of BenchRow
    settings : mapping, optional
        The options of the run (size, temperature, tol, repeat).

    Returns
    -------
    dict
        ``machine_info`` (:func:`machine_info`), ``datetime`` (UTC, ISO 8601),
        ``settings``, and ``benchmarks``: one entry per figure with ``name``,
        ``problem``, ``what``, ``stats.median`` (fastsoft's seconds),
        ``reference_s``, ``ratio`` (reference / fastsoft; None when unknown) and
        ``note``.
    """
    import datetime

    def num(x: float):
        return float(x) if np.isfinite(x) else None

    return {
        "machine_info": machine_info(),
        "datetime": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "settings": dict(settings or {}),
        "benchmarks": [
            {"name": _row_name(r), "problem": r.problem, "what": r.what,
             "stats": {"median": num(r.fastsoft_s)}, "reference_s": num(r.reference_s),
             "ratio": num(r.ratio), "note": r.note}
            for r in rows
        ],
    }


def parse_threshold(text) -> float:
    """A regression threshold as a fraction: ``0.2``, ``"0.2"`` or ``"20%"`` give 0.2.

    Raises
    ------
    ValueError
        Unless it is a finite number >= 0.
    """
    t = str(text).strip()
    try:
        v = float(t[:-1]) / 100.0 if t.endswith("%") else float(t)
    except ValueError:
        raise ValueError(f"threshold must be a fraction such as 0.2 or a percentage such "
                         f"as 20%, got {text!r}") from None
    if not (np.isfinite(v) and v >= 0):
        raise ValueError(f"threshold must be >= 0, got {text!r}")
    return v


def compare_runs(current: Mapping, baseline: Mapping, threshold: float = 0.2) -> list[dict]:
    """Compare two records of :func:`rows_to_json` figure by figure.

    Parameters
    ----------
    current, baseline : mapping
        Records (``json.load`` of files written by ``fastsoft bench --json``).
    threshold : float
        A figure regresses when its median time exceeds the baseline's by more
        than this fraction (pytest-benchmark's ``--benchmark-compare-fail=median:20%``).

    Returns
    -------
    list of dict
        One per figure of ``current``: ``name``, ``baseline_s``, ``current_s``,
        ``ratio`` (current / baseline; None without a baseline figure) and
        ``regressed`` (bool).

    Raises
    ------
    ValueError
        If a record has no ``benchmarks`` list.
    """
    threshold = parse_threshold(threshold)

    def medians(rec: Mapping, label: str) -> dict[str, float | None]:
        b = rec.get("benchmarks") if isinstance(rec, Mapping) else None
        if not isinstance(b, list):
            raise ValueError(f"the {label} record has no 'benchmarks' list (write it with "
                             f"fastsoft bench --json)")
        out = {}
        for e in b:
            stats = e.get("stats") if isinstance(e, Mapping) else None
            if isinstance(stats, Mapping) and "name" in e:
                out[str(e["name"])] = stats.get("median")
        return out

    cur, base = medians(current, "current"), medians(baseline, "baseline")
    out = []
    for name, t in cur.items():
        b = base.get(name)
        ratio = (t / b) if (t is not None and b) else None
        out.append({"name": name, "baseline_s": b, "current_s": t, "ratio": ratio,
                    "regressed": bool(ratio is not None and ratio > 1.0 + threshold)})
    return out


def format_comparison(comparison: list[dict], threshold: float) -> str:
    """Text table of :func:`compare_runs` (``REGRESSION`` marks the failures)."""
    h = f"{'figure':68s} {'baseline':>10s} {'now':>10s} {'now/base':>9s}"
    lines = [h, "-" * len(h)]
    for c in comparison:
        b = _fmt_time(c["baseline_s"]) if c["baseline_s"] is not None else "-"
        t = _fmt_time(c["current_s"]) if c["current_s"] is not None else "-"
        r = f"{c['ratio']:8.2f}x" if c["ratio"] is not None else f"{'new':>9s}"
        flag = "  REGRESSION" if c["regressed"] else ""
        lines.append(f"{c['name'][:68]:68s} {b:>10s} {t:>10s} {r}{flag}")
    n_bad = sum(c["regressed"] for c in comparison)
    lines.append(f"{n_bad} of {len(comparison)} figures slower than the baseline by more "
                 f"than {threshold:.0%}")
    return "\n".join(lines)


def write_json(path, record: Mapping) -> None:
    """Write a record as indented JSON."""
    with open(path, "w", encoding="utf-8") as f:
        json.dump(record, f, indent=2)
        f.write("\n")
