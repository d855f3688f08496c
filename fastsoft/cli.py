"""The ``fastsoft`` command line (also ``python -m fastsoft``).

Commands::

    fastsoft solve SOURCE [options]   solve an MDP, print a summary, save V, Q, policy
    fastsoft dra {maze,huys} [opts]   run a DRA experiment, save results and figures
    fastsoft bench [options]          time fastsoft against the NumPy/SciPy reference
                                      (--json FILE records a run, --compare FILE checks one)
    fastsoft info                     versions, threads and optional extras

``SOURCE`` is ``gridworld``, ``random``, ``maze``, ``gym:<id>`` (a toy-text
gymnasium environment such as ``gym:FrozenLake-v1``) or a ``.npz`` file:

- ``P`` (S, A, S) dense transitions, or ``indptr`` (S*A+1,), ``indices``
  (nnz,), ``probs`` (nnz,) in state-action-pair CSR (row ``s*A + a``);
- ``R`` (S, A) expected rewards (``-inf``: infeasible action), or (S, A, S)
  with dense ``P``;
- ``gamma`` (scalar; ``--gamma`` overrides it, one of the two is needed);
- optional ``terminal`` (S,) bool mask or state indices, ``initial`` (S,)
  start distribution, ``grid`` (rows, cols) for ``--plot``.

Errors in the arguments or the input (and ``ValueError``/``TypeError``/
``MemoryError`` from the library) print one line ``fastsoft: error: ...`` and
exit with status 2; unknown options and sources get a "did you mean"
suggestion; options are never abbreviated. ``bench --compare`` exits with
status 1 when a figure regressed beyond ``--fail-threshold``.
Ctrl-C during a solve stops it cleanly: the partial result is printed and
saved with its certificate, and the status is 130.
"""

from __future__ import annotations

import argparse
import difflib
import json
import os
import re
import signal
import sys
import time
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "build_parser", "load_npz", "CLIError", "VI_METHODS"]

#: Methods the command line runs itself, with a progress bar and a clean Ctrl-C
#: (:func:`fastsoft.solve` runs the same solver for these names; others go there).
VI_METHODS = {"vi": "jacobi", "vi-gs": "gauss-seidel"}

_SOURCES = ("gridworld", "random", "maze")
_SOURCE_OPTIONS = {
    "rows": ("gridworld",),
    "cols": ("gridworld",),
    "slip": ("gridworld",),
    "states": ("random",),
    "actions": ("random",),
    "successors": ("random",),
    "seed": ("random",),
    "env_arg": ("gym",),
}
_GRID_DEFAULT = (100, 100)
_DEFAULT_GAMMA = {"gridworld": 0.99, "random": 0.99, "maze": 0.9, "gym": 0.99}

EXIT_REGRESSION = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """A user error: reported as one line ``fastsoft: error: ...``, exit status 2."""


#: Numbers, including ``-1e-3`` (argparse's own pattern takes that for an option).
_NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class _Parser(argparse.ArgumentParser):
    """argparse without the usage dump or abbreviations: errors raise :class:`CLIError`.

    ``allow_abbrev=False``: ``--row 5`` is an error, never a silent ``--rows 5``;
    negative numbers such as ``--tol -1e-3`` are values (checked afterwards).
    """

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE_NUMBER

    def error(self, message: str):  # type: ignore[override]
        m = re.match(r"argument (\S+): invalid choice: '([^']*)'", message)
        if m:
            action = next((a for a in self._actions if m.group(1) in
                           (a.dest, a.metavar, *a.option_strings)), None)
            choices = list(getattr(action, "choices", None) or ())
            message += _did_you_mean(m.group(2), [str(c) for c in choices])
        raise CLIError(f"{message} (see '{self.prog} --help')")


def _did_you_mean(word: str, candidates: Sequence[str]) -> str:
    """``"; did you mean X?"`` for the closest candidate (difflib), else ``""``."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    if not close:
        return ""
    return f"; did you mean {close[0]}?"


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults, except ``None`` (those options describe their default in words)."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
    return v


def _nonneg_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {v}")
    return v


def _real(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not np.isfinite(v):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def _threshold(text: str) -> float:
    from .benchmarking import parse_threshold

    try:
        return parse_threshold(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _env_arg(text: str) -> tuple[str, Any]:
    import ast

    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a bare string


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``fastsoft`` command (errors raise :class:`CLIError`)."""
    from . import __version__

    p = _Parser(prog="fastsoft",
                description="Entropy/KL-regularized dynamic programming for big tabular MDPs.")
    p.add_argument("--version", action="version", version=f"fastsoft {__version__}")
    sub = p.add_subparsers(dest="command", metavar="{solve,dra,bench,info,warmup}")

    s = sub.add_parser(
        "solve", help="solve an MDP and save V, Q, policy",
        description="Solve an MDP with a certified error bound; print a summary and save "
                    "V, Q and policy. SOURCE: gridworld, random, maze, gym:<id> or a .npz "
                    "file (keys P (S,A,S) or indptr/indices/probs, R (S,A), gamma; optional "
                    "terminal, initial, grid).",
        formatter_class=_Help)
    s.add_argument("source", help="gridworld | random | maze | gym:<id> (a toy-text "
                   "gymnasium id, e.g. gym:FrozenLake-v1) | file.npz")
    g = s.add_argument_group("gridworld")
    g.add_argument("--rows", type=_positive_int, default=None,
                   help=f"grid rows (default {_GRID_DEFAULT[0]})")
    g.add_argument("--cols", type=_positive_int, default=None,
                   help=f"grid columns (default {_GRID_DEFAULT[1]})")
    g.add_argument("--slip", type=_real, default=None,
                   help="probability that a random move replaces the chosen one (default 0.1)")
    r = s.add_argument_group("random")
    r.add_argument("--states", type=_positive_int, default=None, help="states (default 10000)")
    r.add_argument("--actions", type=_positive_int, default=None, help="actions (default 4)")
    r.add_argument("--successors", type=_positive_int, default=None,
                   help="successors per state-action pair (default 5)")
    r.add_argument("--seed", type=int, default=None, help="random seed (default 0)")
    e = s.add_argument_group("gym")
    e.add_argument("--env-arg", type=_env_arg, action="append", default=None,
                   metavar="KEY=VALUE", help="keyword for gymnasium.make (repeatable), "
                   "e.g. map_name=8x8")
    o = s.add_argument_group("solver")
    o.add_argument("--gamma", type=_real, default=None,
                   help="discount (default 0.99; maze 0.9; a file's own gamma)")
    o.add_argument("--temperature", type=_real, default=0.0,
                   help="entropy weight tau >= 0 (0: hard max)")
    o.add_argument("--kl-weight", type=_real, default=0.0,
                   help="KL weight eta >= 0 towards the uniform prior")
    o.add_argument("--method", default="auto",
                   help="a method of fastsoft.solve: auto (chosen by size and structure), "
                        "vi, vi-gs (value iteration, Jacobi or Gauss-Seidel sweeps), pi "
                        "(policy iteration), pi-iterative, mpi (modified policy iteration); "
                        "vi and vi-gs show a progress bar and stop cleanly on Ctrl-C")
    o.add_argument("--tol", type=_real, default=1e-8, help="certified sup-norm error to reach")
    o.add_argument("--max-iter", type=_positive_int, default=None, help="iteration limit")
    o.add_argument("--horizon", type=_positive_int, default=None,
                   help="finite horizon H (exact backward induction)")
    o.add_argument("--out", type=Path, default=None, help="save V, Q, policy, ... to this .npz")
    o.add_argument("--plot", type=Path, default=None,
                   help="save a figure (value map for grids, else convergence curve)")
    o.add_argument("--quiet", "-q", action="store_true", help="no progress bar or messages")
    s.set_defaults(func=_cmd_solve)

    d = sub.add_parser(
        "dra", help="run a DRA experiment (Patel, Acerbi & Pouget 2020)",
        description="Train DRA agents on the Mattar & Daw maze or the Huys et al. planning "
                    "task; print final reward, cost and objective; save results (--out) and "
                    "figures (--plot). Defaults: the paper's hyperparameters "
                    "(docs/theory.md §6.7).",
        formatter_class=_Help)
    d.add_argument("task", choices=("maze", "huys"),
                   help="maze: the Mattar & Daw maze (6x9); huys: the Huys et al. planning "
                        "task")
    d.add_argument("--episodes", type=_nonneg_int, default=None,
                   help="learning episodes (default: maze 5000, huys 2000)")
    d.add_argument("--runs", type=_positive_int, default=5, help="independent runs")
    d.add_argument("--seed", type=int, default=0,
                   help="random seed (every run gets its own streams)")
    d.add_argument("--beta", type=_real, default=None, help="inverse temperature (paper: 10)")
    d.add_argument("--lam", type=_real, default=None,
                   help="cost weight (paper: maze 0.1, huys 1)")
    d.add_argument("--sigma-base", type=_real, default=None,
                   help="base noise level (paper: maze 5, huys 100)")
    d.add_argument("--sigma0", type=_real, default=None,
                   help="initial noise level (paper: maze 3, huys 100)")
    d.add_argument("--alpha-q", type=_real, default=None, help="learning rate of qbar (0.1)")
    d.add_argument("--alpha-sigma", type=_real, default=None,
                   help="learning rate of sigma (maze 0.1, huys 1)")
    d.add_argument("--n-traj", type=_positive_int, default=None,
                   help="gradient rollouts per episode (10)")
    d.add_argument("--allocation", choices=("dra", "equal", "frequency", "stakes"),
                   default="dra", help="DRA or a baseline allocation")
    d.add_argument("--depth", type=_positive_int, default=3, help="huys: planning depth")
    d.add_argument("--switch-episode", type=_nonneg_int, default=None,
                   help="maze: episodes before the environment switch (paper: 3000)")
    d.add_argument("--eval-every", type=_positive_int, default=None,
                   help="evaluation period in episodes (default episodes/50)")
    d.add_argument("--n-eval", type=_positive_int, default=100, help="rollouts per evaluation")
    d.add_argument("--out", type=Path, default=None, help="save results to this .npz")
    d.add_argument("--plot", type=Path, default=None,
                   help="save sigma / choice-entropy maps and learning curves (PNG, PDF, ...)")
    d.add_argument("--quiet", "-q", action="store_true", help="no progress or messages")
    d.set_defaults(func=_cmd_dra)

    b = sub.add_parser(
        "bench", help="time fastsoft against the NumPy/SciPy reference",
        description="Print fastsoft vs fastsoft.reference times and ratios: one soft sweep "
                    "and a full solve, on a slippery gridworld and a sparse random MDP.",
        formatter_class=_Help)
    b.add_argument("--size", choices=("tiny", "small", "medium", "large"), default="small",
                   help="preset sizes: grid side / random states = tiny 30/2000, small "
                        "100/10000, medium 300/30000, large 1000/100000")
    b.add_argument("--grid", type=_nonneg_int, default=None, help="grid side (0: skip)")
    b.add_argument("--states", type=_nonneg_int, default=None,
                   help="random-MDP states (0: skip)")
    b.add_argument("--temperature", type=_real, default=0.1,
                   help="entropy weight tau >= 0 of the timed soft operator")
    b.add_argument("--tol", type=_real, default=1e-8,
                   help="certified tolerance of the timed full solves (> 0)")
    b.add_argument("--repeat", type=_positive_int, default=5,
                   help="timed repetitions per figure (medians are reported)")
    b.add_argument("--json", type=Path, default=None, metavar="FILE",
                   help="also write every figure with the machine, CPU, threads, load and "
                        "versions to this JSON file (a baseline for --compare)")
    b.add_argument("--compare", type=Path, default=None, metavar="BASELINE",
                   help="compare every figure with a JSON file written by --json: print "
                        "the ratio new/baseline and exit 1 when one is slower than "
                        "--fail-threshold allows")
    b.add_argument("--fail-threshold", type=_threshold, default=0.2, metavar="FRACTION",
                   help="with --compare: fail when a time grows by more than this fraction "
                        "of the baseline's (0.2 or 20%%)")
    b.add_argument("--no-solve", action="store_true", help="time the sweep only")
    b.add_argument("--full", action="store_true",
                   help="also run the reference's full solve on large problems (minutes)")
    b.set_defaults(func=_cmd_bench)

    i = sub.add_parser("info", help="versions, threads and optional extras",
                       description="Print the versions of fastsoft, Python, NumPy and Numba, "
                                   "the Numba thread count, and which optional extras "
                                   "(plot, progress) are installed.")
    i.set_defaults(func=_cmd_info)

    w = sub.add_parser("warmup", help="compile every kernel ahead (e.g. in a Docker build)")
    w.add_argument("--only", nargs="+", metavar="GROUP",
                   help="groups to compile: solve sampling inference dra envs (default all)")
    w.add_argument("--serial", action="store_true", help="only the serial kernels")
    w.set_defaults(func=_cmd_warmup)
    return p


# ---------------------------------------------------------------------- helpers
def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _say(args, *lines: str) -> None:
    """Status messages on a terminal (never in pipes and logs, where errors stay one line)."""
    if not getattr(args, "quiet", False) and _isatty(sys.stderr):
        for line in lines:
            print(line, file=sys.stderr, flush=True)


def load_npz(path: str | os.PathLike, gamma: float | None = None):
    """Read an MDP from a ``.npz`` file (format in the module docstring).

    Parameters
    ----------
    path : path-like
    gamma : float, optional
        Discount; overrides the file's ``gamma``.

    Returns
    -------
    TabularMDP

    Raises
    ------
    CLIError
        When the file cannot be read or lacks keys; the library's ``ValueError``
        and ``TypeError`` for invalid contents.
    """
    from .mdp import TabularMDP

    path = Path(path)
    if not path.exists():
        raise CLIError(f"no such file: {path}")
    if path.is_dir():
        raise CLIError(f"{path} is a directory, not an .npz file")
    if not zipfile.is_zipfile(path):
        raise CLIError(f"{path} is not an .npz archive (np.savez writes one)")
    try:
        with np.load(path, allow_pickle=False) as f:
            data = {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise CLIError(f"cannot read {path} as an .npz file ({exc})") from None
    if "R" not in data:
        raise CLIError(f"{path}: missing key 'R' (expected rewards, shape (S, A)); "
                       f"found keys {sorted(data)}")
    if gamma is None:
        if "gamma" not in data:
            raise CLIError(f"{path}: no 'gamma' key; pass --gamma")
        g = data["gamma"]
        if g.shape not in ((), (1,)) or not np.issubdtype(g.dtype, np.number):
            raise CLIError(f"{path}: 'gamma' must be a number, got shape {g.shape} "
                           f"dtype {g.dtype}")
        gamma = float(g.reshape(()))
    info: dict[str, Any] = {"source": str(path)}
    if "grid" in data:
        grid = data["grid"]
        if grid.shape != (2,) or not np.issubdtype(grid.dtype, np.integer):
            raise CLIError(f"{path}: 'grid' must be two integers (rows, cols)")
        info["grid"] = (int(grid[0]), int(grid[1]))
    extra = {k: data[k] for k in ("terminal", "initial") if k in data}
    if "P" in data:
        mdp = TabularMDP.from_dense(data["P"], data["R"], gamma, info=info, **extra)
    elif all(k in data for k in ("indptr", "indices", "probs")):
        mdp = TabularMDP.from_csr(data["indptr"], data["indices"], data["probs"], data["R"],
                                  gamma, info=info, **extra)
    else:
        missing = [k for k in ("indptr", "indices", "probs") if k not in data]
        raise CLIError(f"{path}: need 'P' (S, A, S) or 'indptr', 'indices', 'probs' "
                       f"(missing {missing}); found keys {sorted(data)}")
    if "grid" in info and info["grid"][0] * info["grid"][1] != mdp.n_states:
        raise CLIError(f"{path}: grid {info['grid']} does not match {mdp.n_states} states")
    return mdp


def _gym_mdp(env_id: str, gamma: float, kwargs: dict):
    from ._validation import as_tabular

    if not env_id:
        raise CLIError("gym: needs an environment id, e.g. gym:FrozenLake-v1")
    try:
        import gymnasium
    except ImportError:
        raise CLIError("gym:<id> needs gymnasium (pip install gymnasium)") from None
    try:
        env = gymnasium.make(env_id, **kwargs)
    except Exception as exc:  # gymnasium raises many kinds (NameNotFound, TypeError, ...)
        hint = "" if (env_id in gymnasium.registry or "did you mean" in str(exc).lower()) \
            else _did_you_mean(env_id, list(gymnasium.registry))
        raise CLIError(f"cannot make gymnasium environment {env_id!r}: {exc}{hint}") from None
    try:  # the grid layout (FrozenLake, CliffWalking, Taxi) comes with the MDP
        return as_tabular(env, gamma, "gym:" + env_id)
    except TypeError as exc:
        raise CLIError(f"{env_id} is not a tabular environment: {exc}") from None
    finally:
        env.close()


def _check_source_options(args, kind: str) -> None:
    for opt, kinds in _SOURCE_OPTIONS.items():
        if getattr(args, opt) is not None and kind not in kinds:
            flag = "--" + opt.replace("_", "-")
            raise CLIError(f"{flag} applies to source {' / '.join(kinds)}, not {kind}")


def _make_mdp(args):
    """The MDP named by ``args.source`` and a one-line description of it."""
    from .generators import gridworld, mattar_daw_maze, random_mdp

    src = args.source
    kind = ("gym" if src.startswith("gym:") else src if src in _SOURCES else "file")
    if kind == "file" and not Path(src).exists() and Path(src).suffix != ".npz":
        # not a file: a misspelt source (before any complaint about its options)
        raise CLIError(f"unknown source {src!r}: choose gridworld, random, maze, gym:<id> "
                       f"or an existing .npz file" + _did_you_mean(src, _SOURCES))
    _check_source_options(args, kind)
    gamma = args.gamma if args.gamma is not None else _DEFAULT_GAMMA.get(kind)
    if kind == "gridworld":
        rows = args.rows if args.rows is not None else _GRID_DEFAULT[0]
        cols = args.cols if args.cols is not None else _GRID_DEFAULT[1]
        slip = 0.1 if args.slip is None else args.slip
        return gridworld(rows, cols, slip=slip, gamma=gamma), \
            f"gridworld {rows}x{cols} slip {slip:g}"
    if kind == "random":
        S = 10_000 if args.states is None else args.states
        A = 4 if args.actions is None else args.actions
        K = 5 if args.successors is None else args.successors
        seed = 0 if args.seed is None else args.seed
        return random_mdp(S, A, K, gamma=gamma, seed=seed), \
            f"random_mdp({S}, {A}, {K}, seed={seed})"
    if kind == "maze":
        return mattar_daw_maze(gamma=gamma), "Mattar & Daw maze"
    if kind == "gym":
        kwargs = dict(args.env_arg or [])
        return _gym_mdp(src[4:], gamma, kwargs), src
    return load_npz(Path(src), args.gamma), src


def _check_solve_args(args) -> None:
    """Checks that need no MDP (so that a big MDP is not built for nothing)."""
    if args.temperature < 0 or args.kl_weight < 0:
        raise CLIError("--temperature and --kl-weight must be >= 0")
    if not args.tol > 0:
        raise CLIError(f"--tol must be > 0, got {args.tol}")
    if args.horizon is not None and args.method not in ("auto", "vi", "vi-gs"):
        raise CLIError("--horizon runs backward induction; use --method auto")
    if args.max_iter is not None and args.max_iter > _MAX_ITER:
        raise CLIError(f"--max-iter {args.max_iter} is more than fastsoft runs in one call "
                       f"(at most {_MAX_ITER}); a run that long would take days")
    _check_writable(_npz_path(args.out))
    if args.plot is not None:
        _check_figure_path(args.plot)


#: The largest --max-iter accepted (a sweep of even a tiny MDP takes ~1 us: 1e9
#: sweeps are a quarter of an hour at the very least).
_MAX_ITER = 10**9
#: Bytes per state-action pair and per stored transition of a TabularMDP (float64
#: rewards; int64 indptr; int64 indices and float64 probs), and the factor the
#: builders and solvers need on top of the arrays (temporaries, V, Q, policy).
_PAIR_BYTES, _NNZ_BYTES, _WORK_FACTOR = 16, 16, 6


def _memory_bytes() -> int | None:
    """Physical memory of this machine (None if unknown)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def _refuse_if_too_big(need: float, what: str) -> None:
    mem = _memory_bytes()
    if mem is not None and need > mem:
        raise CLIError(f"{what} needs about {need / 2**30:,.1f} GiB, more than this "
                       f"machine's {mem / 2**30:,.1f} GiB of memory; choose a smaller size")


def _check_sizes(args) -> None:
    """Refuse sources that cannot fit in memory before building them."""
    src = args.source
    if src == "gridworld":
        rows = args.rows if args.rows is not None else _GRID_DEFAULT[0]
        cols = args.cols if args.cols is not None else _GRID_DEFAULT[1]
        S, A, K = rows * cols, 4, 5
        what = f"gridworld {rows}x{cols} ({S:,} states)"
    elif src == "random":
        S = 10_000 if args.states is None else args.states
        A = 4 if args.actions is None else args.actions
        K = 5 if args.successors is None else min(args.successors, S)
        what = f"random_mdp with {S:,} states x {A} actions x {K} successors"
    else:
        return
    _refuse_if_too_big(_WORK_FACTOR * (S * A * _PAIR_BYTES + S * A * K * _NNZ_BYTES), what)


def _check_horizon_size(args, mdp) -> None:
    if args.horizon is not None:  # V (H+1, S), Q and policy (H, S, A)
        need = 8.0 * args.horizon * mdp.n_states * (1 + 2 * mdp.n_actions)
        _refuse_if_too_big(need, f"--horizon {args.horizon} on {mdp.n_states:,} states")


def _npz_path(path: Path | None) -> Path | None:
    """The file ``--out`` writes: ``.npz`` appended when missing (as np.savez does)."""
    if path is None:
        return None
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


def _check_writable(path: Path | None) -> None:
    """Fail before any work when ``path`` cannot be written (naming ``path`` itself)."""
    if path is None:
        return
    parent = path.parent
    if not parent.exists():
        raise CLIError(f"cannot write {path}: directory {parent} does not exist")
    if not parent.is_dir():
        raise CLIError(f"cannot write {path}: {parent} is not a directory")
    if path.is_dir():
        raise CLIError(f"cannot write {path}: it is a directory")
    if path.exists() and not os.access(path, os.W_OK):
        raise CLIError(f"cannot write {path}: permission denied")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CLIError(f"cannot write {path}: directory {parent} is not writable")
    try:  # the real test (root passes os.access everywhere, /proc refuses files)
        fd = _anonymous_file(parent)
        if fd is not None:
            os.close(fd)
        else:
            import tempfile

            with tempfile.TemporaryFile(dir=parent):
                pass
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror or exc}") from None


def _check_figure_path(path: Path) -> None:
    plt = _pyplot_agg()
    _check_writable(path)
    fmt = path.suffix.lstrip(".").lower()
    fig = plt.figure()
    try:
        supported = fig.canvas.get_supported_filetypes()
    finally:
        plt.close(fig)
    if fmt not in supported:
        raise CLIError(f"cannot save a figure as {path}: choose an extension among "
                       f"{', '.join(sorted(supported))}")


def _run_solver(mdp, args, callback):
    """Run the solver named by ``args.method`` with the progress callback.

    A finite ``--horizon`` runs backward induction
    (:func:`fastsoft.soft_value_iteration`); everything else goes to
    :func:`fastsoft.solve` (``auto`` resolved there by ``choose_method``).
    """
    from . import solver
    from .vi import soft_value_iteration

    tau, eta = args.temperature, args.kl_weight
    if args.horizon is not None:
        return soft_value_iteration(mdp, tau, kl_weight=eta, horizon=args.horizon)
    return solver.solve(mdp, tau, kl_weight=eta, tol=args.tol, method=args.method,
                        max_iter=args.max_iter, callback=callback)


def _save_npz(path: Path, arrays: dict[str, Any]) -> Path:
    """Write ``arrays`` to ``path`` (``.npz`` added if missing) atomically.

    The data go to an anonymous file in the target directory (``O_TMPFILE``:
    a kill at any moment leaves nothing behind), which is then linked under a
    temporary name and renamed over ``path`` (the old file stays intact until
    the rename). Where ``O_TMPFILE`` is missing, a named temporary file is
    used and removed on any error, SIGTERM included. Errors name ``path``.
    """
    path = _npz_path(path)
    _check_writable(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    old_term = None
    if _in_main_thread():
        old_term = signal.signal(signal.SIGTERM, _sigterm_to_exit)
    try:
        fd = _anonymous_file(path.parent)
        linked = False
        if fd is not None:
            try:
                with os.fdopen(fd, "wb") as f:
                    np.savez(f, **arrays)
                    f.flush()
                    os.link(f"/proc/self/fd/{f.fileno()}", tmp)
                linked = True
            except OSError:  # e.g. overlay file systems refuse the link: use a named file
                pass
        if not linked:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
        os.replace(tmp, path)
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    return path


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _sigterm_to_exit(signum, frame):
    raise SystemExit(128 + signum)  # runs the ``finally`` that removes the temporary file


def _anonymous_file(directory: Path) -> int | None:
    """A file descriptor of an unnamed file in ``directory`` (Linux O_TMPFILE), or None."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.exists("/proc/self/fd"):
        return None
    try:
        return os.open(directory, flag | os.O_WRONLY, 0o644)
    except OSError:  # file system without O_TMPFILE support
        return None


def _result_arrays(res, mdp, source: str, gamma: float) -> dict[str, Any]:
    out = {
        "V": res.V, "Q": res.Q, "policy": res.policy, "action": res.action,
        "error_bound": np.float64(res.error_bound), "residual": np.float64(res.residual),
        "n_iter": np.int64(res.n_iter), "converged": np.bool_(res.converged),
        "interrupted": np.bool_(res.interrupted), "method": np.str_(res.method),
        "temperature": np.float64(res.temperature), "kl_weight": np.float64(res.kl_weight),
        "gamma": np.float64(gamma), "tol": np.float64(res.tol),
        "wall_time": np.float64(res.wall_time), "source": np.str_(source),
        "n_states": np.int64(mdp.n_states), "n_actions": np.int64(mdp.n_actions),
    }
    for key, val in res.history.items():
        out[f"history_{key}"] = np.asarray(val)
    if res.horizon is not None:
        out["horizon"] = np.int64(res.horizon)
    if "grid" in mdp.info:
        out["grid"] = np.asarray(mdp.info["grid"], dtype=np.int64)
    return out


def _save_figure(fig, path: Path) -> Path:
    plt = _pyplot_agg()
    try:
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path


def _pyplot_agg():
    try:
        import matplotlib
    except ImportError:
        raise CLIError("--plot needs matplotlib: pip install fastsoft[plot]") from None
    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ---------------------------------------------------------------------- solve
def _cmd_solve(args) -> int:
    """``fastsoft solve``: returns the exit status."""
    from .progress import compile_notice, progress_callback

    _check_solve_args(args)
    _check_sizes(args)
    compile_notice(quiet=args.quiet)  # before building: the CSR kernels may compile too
    t0 = time.perf_counter()
    mdp, label = _make_mdp(args)
    t_build = time.perf_counter() - t0
    if mdp.gamma >= 1.0 and args.horizon is None:
        raise CLIError(f"gamma = {mdp.gamma:g} needs a finite horizon: pass --horizon H "
                       f"(or a discount below 1 with --gamma)")
    _check_horizon_size(args, mdp)
    _say(args, f"fastsoft: solving {label} ({mdp.n_states} states) with --method "
               f"{args.method}; Ctrl-C stops and keeps the partial result")
    with progress_callback("solve", tol=args.tol, quiet=args.quiet,
                           catch_interrupt=True) as cb:
        res = _run_solver(mdp, args, cb)
        cb.finish(res)
    interrupted = bool(res.interrupted)
    print(f"source          {label}")
    print(f"states          {mdp.n_states}   actions {mdp.n_actions}   transitions {mdp.nnz}"
          f"   gamma {mdp.gamma:g}   (built in {t_build:.2f} s)")
    print(res.summary())
    if args.out is not None:
        path = _save_npz(args.out, _result_arrays(res, mdp, label, mdp.gamma))
        print(f"saved           V, Q, policy -> {path}")
    if args.plot is not None:
        path = _save_figure(_solve_figure(mdp, res, label), args.plot)
        print(f"figure          {path}")
    if interrupted:
        print(f"fastsoft: interrupted after {res.n_iter} iterations; partial result with "
              f"certified bound {res.error_bound:.3e}"
              + (f" saved to {args.out}" if args.out is not None else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _solve_figure(mdp, res, label: str):
    from . import plot

    plt = _pyplot_agg()
    if mdp.info.get("grid") is not None:
        ax = plot.value_heatmap(mdp, res, title=f"{label}: values and policy")
        return ax.figure
    fig, ax = plt.subplots(figsize=(6, 4), constrained_layout=True)
    plot.convergence(res, ax=ax)
    ax.set_title(label)
    return fig


# ---------------------------------------------------------------------- dra
def _route_states(mdp) -> np.ndarray:
    """States on the greedy path of the hard-optimal policy from the start (a maze route)."""
    from .vi import value_iteration

    res = value_iteration(mdp, tol=1e-10)
    s = int(np.argmax(mdp.initial))
    route = [s]
    for _ in range(mdp.n_states):
        if mdp.terminal is not None and mdp.terminal[s]:
            break
        row = s * mdp.n_actions + int(res.action[s])
        lo, hi = mdp.indptr[row], mdp.indptr[row + 1]
        s = int(mdp.indices[lo + int(np.argmax(mdp.probs[lo:hi]))])
        route.append(s)
    return np.array(route)


def _cmd_dra(args) -> int:
    """``fastsoft dra``: returns the exit status."""
    from . import dra
    from .generators import huys_planning_task, mattar_daw_maze

    _check_writable(args.out)
    if args.plot is not None:
        _check_figure_path(args.plot)
    if args.task == "maze":
        if args.depth != 3:
            raise CLIError("--depth applies to the huys task")
        mdp = mattar_daw_maze()
        params = dict(dra.MAZE_PARAMS)
        label = "Mattar & Daw maze"
    else:
        if args.switch_episode is not None:
            raise CLIError("--switch-episode applies to the maze task")
        mdp = huys_planning_task(args.depth)
        params = dict(dra.HUYS_PARAMS, alpha_q=0.1, alpha_sigma=1.0, n_episodes=2000,
                      n_traj=10)
        label = f"Huys et al. planning task (depth {args.depth})"
    for opt in ("beta", "lam", "sigma_base", "sigma0", "alpha_q", "alpha_sigma", "n_traj"):
        val = getattr(args, opt)
        if val is not None:
            params[opt] = val
    if args.episodes is not None:
        params["n_episodes"] = args.episodes
    n_ep = params["n_episodes"]
    eval_every = args.eval_every or max(1, n_ep // 50)
    kwargs = dict(params, n_runs=args.runs, seed=args.seed, eval_every=eval_every,
                  n_eval=args.n_eval, allocation=args.allocation,
                  switch_episode=args.switch_episode)
    _say(args, f"fastsoft: DRA on the {label}: {args.runs} runs x {n_ep} episodes "
               f"(beta {params['beta']:g}, lam {params['lam']:g}, sigma_base "
               f"{params['sigma_base']:g}, sigma0 {params['sigma0']:g})")
    t0 = time.perf_counter()
    from .progress import compile_notice, progress_callback

    compile_notice(quiet=args.quiet)
    with progress_callback("DRA", total=n_ep, unit="episodes", quiet=args.quiet,
                           catch_interrupt=True) as cb:
        res = dra.train(mdp, callback=cb, **kwargs)
        cb.close()
    elapsed = time.perf_counter() - t0
    interrupted = bool(getattr(res, "interrupted", False))
    n_done = res.returns.shape[1]  # episodes completed (fewer if interrupted)
    if args.switch_episode is not None and args.switch_episode < n_done:
        label += f", switched after {args.switch_episode} episodes"
        mdp = mattar_daw_maze(switch=True)  # the maze the final memories live in
    _print_dra(mdp, res, args, elapsed)
    if args.out is not None:
        path = _save_npz(args.out, _dra_arrays(mdp, res, args.task))
        print(f"saved           results -> {path}")
    if args.plot is not None:
        path = _save_figure(_dra_figure(mdp, res, label, params), args.plot)
        print(f"figure          {path}")
    if interrupted:
        print(f"fastsoft: interrupted after {n_done} of {n_ep} episodes; partial result"
              + (f" saved to {args.out}" if args.out is not None else ""), file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _mean_sd(x) -> str:
    x = np.asarray(x, dtype=np.float64)
    if x.size == 0:
        return "n/a"
    return f"{x.mean():.4g} +- {x.std():.2g}" if x.size > 1 else f"{x.mean():.4g}"


def _print_dra(mdp, res, args, elapsed: float) -> None:
    h = res.history
    mem = res.memories
    print(f"task            {args.task} ({mdp.n_states} states, {mdp.n_actions} actions, "
          f"{int(mem.sum())} memories)")
    print(f"runs x episodes {res.n_runs} x {res.returns.shape[1]}   allocation "
          f"{args.allocation}")
    if getattr(res, "interrupted", False):
        print("interrupted     yes")
    if h.episode.size:
        print(f"final reward    {_mean_sd(h.reward[:, -1])}")
        print(f"final cost      {_mean_sd(h.cost[:, -1])}")
        print(f"final objective {_mean_sd(h.objective[:, -1])}")
    live = mem.any(axis=1)
    # mean sigma over the memories of each state: (n_runs, S), NaN without memories
    counts = np.maximum(mem.sum(axis=1), 1)
    per_state = np.where(live, np.where(mem, res.sigma, 0.0).sum(axis=2) / counts, np.nan)
    print(f"mean sigma      {res.sigma[:, mem].mean():.4g}   (over all memories)")
    if args.task == "maze" and mdp.initial is not None:
        route = _route_states(mdp)
        on = np.zeros(mdp.n_states, bool)
        on[route] = True
        on &= live
        off = live & ~on
        print(f"sigma on route  {per_state[:, on].mean():.4g}   (states on the shortest path "
              f"to the goal)")
        print(f"sigma off route {per_state[:, off].mean():.4g}")
    print(f"time            {elapsed:.2f} s")


def _dra_arrays(mdp, res, task: str) -> dict[str, Any]:
    h = res.history
    params = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
              for k, v in dict(res.params).items()}
    out = {
        "qbar": res.qbar, "sigma": res.sigma, "sigma_scalar": res.sigma_scalar,
        "n_steps": res.n_steps, "returns": res.returns, "state_visits": res.state_visits,
        "memories": res.memories, "history_episode": h.episode, "history_reward": h.reward,
        "history_cost": h.cost, "history_entropy_term": h.entropy_term,
        "history_objective": h.objective, "history_state_entropy": h.state_entropy,
        "task": np.str_(task), "params_json": np.str_(json.dumps(params, default=str)),
        "interrupted": np.bool_(getattr(res, "interrupted", False)),
    }
    if "grid" in mdp.info:
        out["grid"] = np.asarray(mdp.info["grid"], dtype=np.int64)
    return out


def _dra_figure(mdp, res, label: str, params: dict):
    from . import plot

    plt = _pyplot_agg()
    has_hist = res.history.episode.size > 0
    fig = plt.figure(figsize=(13, 3.8 if not has_hist else 7.6), constrained_layout=True)
    top, bottom = (fig.subfigures(2, 1, height_ratios=[1, 1]) if has_hist else (fig, None))
    plot.dra_maps(mdp, res, sigma_base=params.get("sigma_base"), fig=top, title=label)
    if bottom is not None:
        ax = bottom.subplots(1, 1)
        plot.dra_history(res, ax=ax)
    return fig


# ---------------------------------------------------------------------- bench, info
def _cmd_bench(args) -> int:
    """``fastsoft bench``: returns the exit status."""
    import numba

    from .benchmarking import (
        REFERENCE_SOLVE_MAX_PAIRS,
        bench_problems,
        compare_runs,
        format_comparison,
        format_row,
        format_table,
        measure_ratios,
        rows_to_json,
        write_json,
    )

    if args.temperature < 0:
        raise CLIError("--temperature must be >= 0")
    if not args.tol > 0:
        raise CLIError(f"--tol must be > 0, got {args.tol}")
    _check_writable(args.json)
    baseline = _load_baseline(args.compare) if args.compare is not None else None
    problems = bench_problems(args.size, grid=args.grid, states=args.states)
    print(f"fastsoft bench: size {args.size}, temperature {args.temperature:g}, "
          f"numba threads {numba.get_num_threads()}, medians of {args.repeat}")
    print(format_table([]))
    rows = measure_ratios(
        problems, temperature=args.temperature, tol=args.tol, repeat=args.repeat,
        solve=not args.no_solve,
        reference_solve_max_pairs=None if args.full else REFERENCE_SOLVE_MAX_PAIRS,
        report=lambda row: print(format_row(row), flush=True))
    print("ratio = reference time / fastsoft time (higher: fastsoft faster)")
    settings = {"size": args.size, "grid": args.grid, "states": args.states,
                "temperature": args.temperature, "tol": args.tol, "repeat": args.repeat,
                "solve": not args.no_solve, "full": args.full}
    record = rows_to_json(rows, settings)
    if args.json is not None:
        try:
            write_json(args.json, record)
        except OSError as exc:
            raise CLIError(f"cannot write {args.json}: {exc.strerror or exc}") from None
        print(f"saved           {len(rows)} figures and the machine record -> {args.json}")
    if baseline is not None:
        comparison = compare_runs(record, baseline, args.fail_threshold)
        print()
        print(f"compared with {args.compare} ({baseline.get('datetime', '?')}, load "
              f"{(baseline.get('machine_info') or {}).get('load_average')} then, "
              f"{record['machine_info']['load_average']} now)")
        print(format_comparison(comparison, args.fail_threshold))
        if any(c["regressed"] for c in comparison):
            return EXIT_REGRESSION
    return 0


def _load_baseline(path: Path) -> dict:
    """Read a ``--json`` record for ``--compare`` (before any timing)."""
    try:
        with open(path, encoding="utf-8") as f:
            rec = json.load(f)
    except FileNotFoundError:
        raise CLIError(f"--compare: no such file: {path}") from None
    except (OSError, ValueError) as exc:
        raise CLIError(f"--compare: cannot read {path} as JSON ({exc})") from None
    if not isinstance(rec, dict) or not isinstance(rec.get("benchmarks"), list):
        raise CLIError(f"--compare: {path} is not a record of 'fastsoft bench --json' "
                       f"(no 'benchmarks' list)")
    return rec


def _cmd_info(args) -> int:
    """``fastsoft info``: versions and optional extras."""
    import importlib

    import numba

    from . import __version__

    print(f"fastsoft        {__version__}")
    print(f"python          {sys.version.split()[0]}")
    print(f"numpy           {np.__version__}")
    print(f"numba           {numba.__version__} ({numba.get_num_threads()} threads)")
    from .progress import kernels_cached

    print("kernel cache    " + ("on disk" if kernels_cached() else
                                "empty (the first run compiles the kernels; tens of seconds)"))
    for mod, extra in (("scipy", "core"), ("gymnasium", "core"), ("matplotlib", "plot"),
                       ("tqdm", "progress")):
        try:
            m = importlib.import_module(mod)
            ver = getattr(m, "__version__", "?")
        except ImportError:
            ver = f"not installed (pip install fastsoft[{extra}])"
        print(f"{mod:15s} {ver}")
    return 0


def _cmd_warmup(args) -> int:
    """``fastsoft warmup``: compile every kernel into Numba's disk cache."""
    from ._warmup import warmup

    t = time.perf_counter()
    warmup(args.only, parallel=False if args.serial else None,
           report=lambda g, sec: print(f"{g:10s} {sec:7.1f} s", flush=True))
    print(f"warm: kernels compiled and cached ({time.perf_counter() - t:.1f} s)")
    return 0


# ---------------------------------------------------------------------- entry point
def _subparser(parser: argparse.ArgumentParser, command: str | None):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and command in action.choices:
            return action.choices[command]
    return parser


def _unrecognized(parser: argparse.ArgumentParser, args, extras: Sequence[str]) -> str:
    """The message for unknown arguments: the first unknown option, with suggestions
    among the options of the subcommand it was given to, and that subcommand's help."""
    sub = _subparser(parser, getattr(args, "command", None))
    options = [o for a in sub._actions for o in a.option_strings if o.startswith("--")]
    flags = [e for e in extras if e.startswith("-")]
    if flags:
        word = flags[0].split("=", 1)[0]
        return (f"unrecognized option {word}" + _did_you_mean(word, options)
                + f" (see '{sub.prog} --help')")
    return f"unexpected argument{'s' if len(extras) > 1 else ''} {' '.join(extras)} " \
           f"(see '{sub.prog} --help')"


def _error(message: str) -> int:
    msg = " ".join(str(message).split()) or "unknown error"
    print(f"fastsoft: error: {msg}", file=sys.stderr, flush=True)
    return EXIT_USAGE


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``fastsoft`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 success, 1 a benchmark regression (``bench --compare``),
        2 error in the arguments or input (one line ``fastsoft: error: ...`` on
        stderr), 130 interrupted by Ctrl-C.
    """
    parser = build_parser()
    try:
        args, extras = parser.parse_known_args(argv)
        if extras:
            raise CLIError(_unrecognized(parser, args, extras))
    except CLIError as exc:
        return _error(str(exc))
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0) if not isinstance(exc.code, str) else _error(exc.code)
    if args.command is None:
        return _error("choose a command: solve, dra, bench, info or warmup (see 'fastsoft --help')")
    try:
        return int(args.func(args))
    except CLIError as exc:
        return _error(str(exc))
    except (ValueError, TypeError) as exc:
        return _error(str(exc))
    except MemoryError as exc:
        return _error(f"out of memory{': ' + str(exc) if str(exc) else ''} (choose a smaller "
                      f"problem, --max-iter or --horizon)")
    except OSError as exc:
        return _error(f"{exc.strerror or exc}"
                      + (f": {exc.filename}" if getattr(exc, "filename", None) else ""))
    except ImportError as exc:
        return _error(str(exc))
    except KeyboardInterrupt:
        print("fastsoft: interrupted", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
