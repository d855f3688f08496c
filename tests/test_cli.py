"""The fastsoft command line: results, files, and one-line errors with exit status 2."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import fastsoft as fs
from fastsoft import cli
from fastsoft.cli import main

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "MPLBACKEND": "Agg"}


def run_cli(*args, timeout=120):
    """``python -m fastsoft ARGS`` in a subprocess."""
    return subprocess.run([sys.executable, "-m", "fastsoft", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=ENV, cwd=ROOT)


def assert_one_line_error(err: str, *fragments: str):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fastsoft: error: "), err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def field(out: str, name: str) -> str:
    for line in out.splitlines():
        if line.startswith(name):
            return line[len(name):].strip()
    raise AssertionError(f"no line {name!r} in\n{out}")


# ---------------------------------------------------------------- solve: results
def test_solve_gridworld_writes_certified_solution(tmp_path, capsys):
    out = tmp_path / "r.npz"
    rc = main(["solve", "gridworld", "--rows", "6", "--cols", "7", "--slip", "0.2",
               "--gamma", "0.95", "--temperature", "0.3", "--tol", "1e-9", "--out", str(out),
               "--quiet"])
    text = capsys.readouterr().out
    assert rc == 0
    assert field(text, "source") == "gridworld 6x7 slip 0.2"
    assert field(text, "states").startswith("42   actions 4")
    assert "soft" in field(text, "method")
    assert int(field(text, "iterations")) > 0
    assert field(text, "certified bound").split()[0] == f"{np.load(out)['error_bound']:.3e}"
    assert field(text, "time").endswith("s")
    d = np.load(out)
    ref = fs.soft_value_iteration(fs.gridworld(6, 7, slip=0.2, gamma=0.95), 0.3, tol=1e-10)
    assert d["V"].shape == (42,) and d["Q"].shape == (42, 4) and d["policy"].shape == (42, 4)
    assert float(d["error_bound"]) <= 1e-9 and bool(d["converged"])
    assert not bool(d["interrupted"])
    np.testing.assert_allclose(d["V"], ref.V, atol=2e-9)
    np.testing.assert_allclose(d["policy"], ref.policy, atol=1e-8)
    np.testing.assert_array_equal(d["grid"], [6, 7])
    assert float(d["temperature"]) == 0.3 and float(d["gamma"]) == 0.95
    assert d["history_error_bound"].shape == (int(d["n_iter"]),)
    assert str(d["method"]) == field(text, "method")


@pytest.mark.parametrize("method", ["auto", "vi", "vi-gs", "pi", "pi-iterative", "mpi"])
@pytest.mark.parametrize("kl", ["0", "0.3"])
def test_solve_methods_agree(method, kl, tmp_path):
    out = tmp_path / "r.npz"
    assert main(["solve", "maze", "--temperature", "0.5", "--kl-weight", kl, "--method", method,
                 "--tol", "1e-9", "--out", str(out), "-q"]) == 0
    d = np.load(out)
    ref = fs.soft_value_iteration(fs.mattar_daw_maze(), 0.5, kl_weight=float(kl), tol=1e-11)
    np.testing.assert_allclose(d["V"], ref.V, atol=3e-9)
    assert float(d["gamma"]) == 0.9  # the maze's default discount
    if method in ("pi", "mpi"):
        assert "policy_iteration" in str(d["method"])
    if method == "vi":
        assert str(d["method"]) == "soft_value_iteration[jacobi]"


def test_auto_and_named_methods_go_through_fastsoft_solve(monkeypatch, tmp_path):
    solve_module = sys.modules["fastsoft.solver"]  # fastsoft.solve is the function

    calls = []

    def fake_solve(mdp, temperature=0.0, *, kl_weight=0.0, prior=None, tol=1e-8,
                   method="auto", callback=None, max_iter=None):
        calls.append(dict(temperature=temperature, kl_weight=kl_weight, tol=tol,
                          method=method, callback=callback, max_iter=max_iter))
        if method not in ("auto", "special"):
            raise ValueError(f"unknown method {method!r}")
        return fs.soft_value_iteration(mdp, temperature, kl_weight=kl_weight, tol=tol,
                                       callback=callback)

    monkeypatch.setattr(solve_module, "solve", fake_solve)
    out = tmp_path / "r.npz"
    assert main(["solve", "maze", "--temperature", "0.3", "--kl-weight", "0.2", "--tol",
                 "1e-7", "--method", "special", "--out", str(out), "-q"]) == 0
    assert calls[-1]["method"] == "special" and calls[-1]["tol"] == 1e-7
    assert (calls[-1]["temperature"], calls[-1]["kl_weight"]) == (0.3, 0.2)
    assert callable(calls[-1]["callback"])  # progress and Ctrl-C handling
    ref = fs.soft_value_iteration(fs.mattar_daw_maze(), 0.3, kl_weight=0.2, tol=1e-9)
    np.testing.assert_allclose(np.load(out)["V"], ref.V, atol=1e-6)
    # solve's own errors are one line, exit status 2
    assert main(["solve", "maze", "--method", "bogus", "-q"]) == 2
    assert main(["solve", "maze", "--method", "special", "--max-iter", "5", "-q"]) == 0
    assert calls[-1]["max_iter"] == 5


def test_solve_kl_weight_matches_library(tmp_path):
    out = tmp_path / "r.npz"
    assert main(["solve", "random", "--states", "50", "--actions", "3", "--successors", "4",
                 "--seed", "3", "--gamma", "0.9", "--temperature", "0.1", "--kl-weight", "0.4",
                 "--out", str(out), "-q"]) == 0
    mdp = fs.random_mdp(50, 3, 4, gamma=0.9, seed=3)
    ref = fs.soft_value_iteration(mdp, 0.1, kl_weight=0.4, tol=1e-10)
    d = np.load(out)
    np.testing.assert_allclose(d["V"], ref.V, atol=2e-8)
    assert float(d["kl_weight"]) == 0.4


def test_solve_max_iter_and_horizon(tmp_path, capsys):
    out = tmp_path / "r.npz"
    assert main(["solve", "gridworld", "--rows", "20", "--cols", "20", "--method", "vi",
                 "--max-iter", "3", "--out", str(out), "-q"]) == 0
    d = np.load(out)
    assert int(d["n_iter"]) == 3 and not bool(d["converged"]) and float(d["error_bound"]) > 1e-8
    assert "converged=False" in capsys.readouterr().out
    assert main(["solve", "maze", "--horizon", "5", "--gamma", "1", "--out", str(out),
                 "-q"]) == 0
    d = np.load(out)
    ref = fs.soft_value_iteration(fs.mattar_daw_maze(gamma=1.0), 0.0, horizon=5)
    assert d["V"].shape == (6, 54) and int(d["horizon"]) == 5
    np.testing.assert_allclose(d["V"], ref.V)


def test_solve_gym_frozenlake(tmp_path, capsys):
    import gymnasium

    out = tmp_path / "fl.npz"
    assert main(["solve", "gym:FrozenLake-v1", "--env-arg", "map_name='8x8'", "--gamma", "0.99",
                 "--out", str(out), "-q"]) == 0
    assert field(capsys.readouterr().out, "source") == "gym:FrozenLake-v1"
    mdp = fs.TabularMDP.from_gymnasium(gymnasium.make("FrozenLake-v1", map_name="8x8"), 0.99)
    ref = fs.soft_value_iteration(mdp, 0.0, tol=1e-10)
    d = np.load(out)
    np.testing.assert_allclose(d["V"], ref.V, atol=2e-8)
    assert d["V"][0] == pytest.approx(ref.V[0]) and 0.3 < d["V"][0] < 1.0
    np.testing.assert_array_equal(d["grid"], [8, 8])


@pytest.mark.parametrize("layout", ["dense", "csr"])
def test_solve_npz_file(layout, tmp_path):
    mdp = fs.gridworld(4, 5, slip=0.1, gamma=0.9)
    src = tmp_path / "mdp.npz"
    extra = dict(terminal=mdp.terminal, initial=mdp.initial, grid=np.array([4, 5]))
    if layout == "dense":
        P, R = mdp.to_dense()
        np.savez(src, P=P, R=R, gamma=0.9, **extra)
    else:
        np.savez(src, indptr=mdp.indptr, indices=mdp.indices, probs=mdp.probs, R=mdp.rewards,
                 gamma=np.array(0.9), **extra)
    loaded = cli.load_npz(src)
    assert loaded.allclose(mdp) and loaded.info["grid"] == (4, 5)
    assert cli.load_npz(src, gamma=0.5).gamma == 0.5  # --gamma overrides the file
    out = tmp_path / "r"  # .npz is appended
    assert main(["solve", str(src), "--temperature", "0.2", "--out", str(out), "-q"]) == 0
    d = np.load(tmp_path / "r.npz")
    np.testing.assert_allclose(d["V"], fs.soft_value_iteration(mdp, 0.2, tol=1e-10).V,
                               atol=2e-8)
    assert np.all(d["V"][mdp.terminal] == 0)


def test_solve_plots(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    import matplotlib.image as mpimg

    grid_png = tmp_path / "grid.png"
    rand_png = tmp_path / "rand.png"
    assert main(["solve", "gridworld", "--rows", "8", "--cols", "8", "--plot", str(grid_png),
                 "-q"]) == 0
    assert field(capsys.readouterr().out, "figure") == str(grid_png)
    assert main(["solve", "random", "--states", "100", "--plot", str(rand_png), "-q"]) == 0
    assert field(capsys.readouterr().out, "figure") == str(rand_png)
    for p in (grid_png, rand_png):
        img = mpimg.imread(p)
        assert len(np.unique((img[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)) > 20


def test_version_help_info(capsys):
    assert main(["--version"]) == 0
    assert fs.__version__ in capsys.readouterr().out
    assert main(["solve", "--help"]) == 0
    assert "--temperature" in capsys.readouterr().out
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert field(out, "fastsoft") == fs.__version__
    assert "threads" in field(out, "numba")


# ---------------------------------------------------------------- dra, bench
def test_dra_maze_results_and_figure(tmp_path, capsys):
    out, fig = tmp_path / "dra.npz", tmp_path / "dra.png"
    assert main(["dra", "maze", "--episodes", "400", "--runs", "2", "--seed", "1",
                 "--n-eval", "20", "--out", str(out), "--plot", str(fig), "-q"]) == 0
    text = capsys.readouterr().out
    d = np.load(out)
    assert d["sigma"].shape == (2, 54, 4) and d["qbar"].shape == (2, 54, 4)
    assert d["returns"].shape == (2, 400)
    assert d["history_episode"][-1] == 400 and d["history_episode"].size == 50
    assert d["history_state_entropy"].shape == (2, 50, 54)
    assert str(d["task"]) == "maze"
    obj = d["history_objective"][:, -1].mean()
    assert field(text, "final objective").split()[0] == f"{obj:.4g}"
    np.testing.assert_allclose(d["history_objective"],
                               d["history_reward"] - d["history_cost"]
                               + d["history_entropy_term"])
    # memories are learned: sigma moved away from sigma0 = 3 on the memories
    mem = d["memories"]
    assert np.abs(d["sigma"][:, mem] - 3.0).max() > 0.1
    import json

    params = json.loads(str(d["params_json"]))
    assert params["beta"] == 10.0 and params["n_episodes"] == 400
    assert float(field(text, "sigma on route").split()[0]) > 0
    assert fig.stat().st_size > 10_000
    # same seed, same results
    out2 = tmp_path / "dra2.npz"
    assert main(["dra", "maze", "--episodes", "400", "--runs", "2", "--seed", "1",
                 "--n-eval", "20", "--out", str(out2), "-q"]) == 0
    np.testing.assert_array_equal(np.load(out2)["sigma"], d["sigma"])


def test_dra_maze_switch(tmp_path, capsys):
    out = tmp_path / "sw.npz"
    assert main(["dra", "maze", "--episodes", "200", "--switch-episode", "100", "--runs", "1",
                 "--n-eval", "10", "--out", str(out), "-q"]) == 0
    d = np.load(out)
    # after the switch, (0, 7) is open: it holds memories, the old goal (0, 8) too
    assert d["memories"][0 * 9 + 7].all() and d["memories"][0 * 9 + 8].all()
    assert not d["memories"][0 * 9 + 6].any()  # the new goal is terminal
    assert "runs x episodes 1 x 200" in capsys.readouterr().out


def test_dra_huys_overrides(tmp_path, capsys):
    out = tmp_path / "h.npz"
    assert main(["dra", "huys", "--depth", "2", "--episodes", "100", "--runs", "1",
                 "--lam", "0.5", "--sigma0", "50", "--sigma-base", "60", "--n-eval", "10",
                 "--out", str(out), "-q"]) == 0
    d = np.load(out)
    assert d["sigma"].shape == (1, 18, 2)
    import json

    p = json.loads(str(d["params_json"]))
    assert (p["lam"], p["sigma0"], p["sigma_base"]) == (0.5, 50.0, 60.0)
    assert "task            huys" in capsys.readouterr().out


def test_bench_prints_ratios(capsys):
    assert main(["bench", "--grid", "10", "--states", "200", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith(("gridworld", "random_mdp"))]
    assert len(rows) >= 4
    sweep = [ln for ln in rows if "soft sweep" in ln]
    assert len(sweep) == 2
    for ln in sweep:  # "-": below the timer's noise on this loaded machine
        last = ln.split()[-1]
        assert last == "-" or float(last.rstrip("x")) > 0
    assert "max|dV|" in out


def test_benchmarking_row_and_table():
    from fastsoft.benchmarking import BenchRow, bench_problems, format_table

    r = BenchRow("p", "w", 0.5, 2.0)
    assert r.ratio == 4.0
    assert np.isnan(BenchRow("p", "w", 0.5, float("nan")).ratio)
    table = format_table([r])
    assert "4.0x" in table and "500.0ms" in table and "2.00s" in table
    probs = bench_problems("tiny")
    assert [m.n_states for m in probs.values()] == [900, 2000]
    with pytest.raises(ValueError):
        bench_problems("huge")
    with pytest.raises(ValueError):
        bench_problems("tiny", grid=0, states=0)


# ---------------------------------------------------------------- errors
def _write(tmp_path, name, **arrays):
    p = tmp_path / name
    np.savez(p, **arrays)
    return p


@pytest.fixture
def bad_files(tmp_path):
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file at all")
    np.save(tmp_path / "array.npy", np.ones(3))
    ok_P = np.full((2, 1, 2), 0.5)
    return {
        "garbage": tmp_path / "garbage.npz",
        "npy": tmp_path / "array.npy",
        "no_R": _write(tmp_path, "no_r.npz", P=ok_P, gamma=0.9),
        "no_P": _write(tmp_path, "no_p.npz", R=np.zeros((2, 1)), gamma=0.9),
        "no_gamma": _write(tmp_path, "no_gamma.npz", P=ok_P, R=np.zeros((2, 1))),
        "bad_gamma": _write(tmp_path, "bad_gamma.npz", P=ok_P, R=np.zeros((2, 1)),
                            gamma=np.ones(3)),
        "not_stochastic": _write(tmp_path, "ns.npz", P=np.ones((2, 1, 2)), R=np.zeros((2, 1)),
                                 gamma=0.9),
        "bad_shape": _write(tmp_path, "shape.npz", P=ok_P, R=np.zeros((3, 1)), gamma=0.9),
        "bad_grid": _write(tmp_path, "grid.npz", P=ok_P, R=np.zeros((2, 1)), gamma=0.9,
                           grid=np.array([3, 3])),
        "gamma_one": _write(tmp_path, "g1.npz", P=ok_P, R=np.zeros((2, 1)), gamma=1.0),
        "dir": tmp_path,
    }


ERROR_CASES = [
    ([], "choose a command"),
    (["frobnicate"], "invalid choice"),
    (["solve"], "required: source"),
    (["solve", "nowhere"], "unknown source 'nowhere'"),
    (["solve", "missing.npz"], "no such file: missing.npz"),
    (["solve", "gridworld", "--rows", "0"], "--rows: expected an integer >= 1"),
    (["solve", "gridworld", "--rows", "abc"], "--rows: expected an integer"),
    (["solve", "gridworld", "--slip", "1.5"], "slip must lie in [0, 1]"),
    (["solve", "gridworld", "--gamma", "nan"], "--gamma: expected a finite number"),
    (["solve", "gridworld", "--gamma", "1.5"], "gamma must lie in [0, 1]"),
    (["solve", "gridworld", "--rows", "3", "--gamma", "1"], "gamma = 1 needs a finite horizon"),
    (["solve", "gridworld", "--states", "10"], "--states applies to source random"),
    (["solve", "random", "--rows", "10"], "--rows applies to source gridworld"),
    (["solve", "maze", "--env-arg", "a=1"], "--env-arg applies to source gym"),
    (["solve", "maze", "--env-arg", "1x"], "expected KEY=VALUE"),
    (["solve", "random", "--states", "5", "--successors", "9"], "n_successors must lie in"),
    (["solve", "maze", "--tol", "0"], "--tol must be > 0"),
    (["solve", "maze", "--temperature", "-1"], "must be >= 0"),
    (["solve", "maze", "--method", "nope"], "nope"),
    (["solve", "maze", "--method", "pi", "--horizon", "3"], "--horizon"),
    (["solve", "maze", "--out", "/no/such/dir/r.npz"], "directory /no/such/dir does not exist"),
    (["solve", "maze", "--plot", "fig.unknownext"], "choose an extension"),
    (["solve", "gym:"], "needs an environment id"),
    (["solve", "gym:NoSuchEnv-v0"], "cannot make gymnasium environment 'NoSuchEnv-v0'"),
    (["solve", "gym:CartPole-v1"], "not a tabular environment"),
    (["solve", "gym:FrozenLake-v1", "--env-arg", "colour=1"], "unexpected keyword"),
    (["dra", "labyrinth"], "invalid choice"),
    (["dra", "maze", "--depth", "4"], "--depth applies to the huys task"),
    (["dra", "huys", "--switch-episode", "3"], "--switch-episode applies to the maze"),
    (["dra", "maze", "--beta", "-1", "--episodes", "5"], "beta must be > 0"),
    (["dra", "maze", "--sigma0", "1000", "--episodes", "5"], "sigma0 must lie in sigma_clip"),
    (["dra", "maze", "--episodes", "5", "--switch-episode", "9"], "switch_episode must be <="),
    (["dra", "maze", "--runs", "0"], "--runs: expected an integer >= 1"),
    (["dra", "maze", "--out", "/no/such/dir/d.npz"], "does not exist"),
    (["bench", "--size", "enormous"], "invalid choice"),
    (["bench", "--grid", "0", "--states", "0"], "nothing to benchmark"),
    (["bench", "--temperature", "-1"], "--temperature must be >= 0"),
    # no abbreviations, suggestions, the right thing named
    (["solve", "gridworld", "--row", "5"], "unrecognized option --row; did you mean --rows?"),
    (["solve", "maze", "--temprature", "0.1"],
     "unrecognized option --temprature; did you mean --temperature? "
     "(see 'fastsoft solve --help')"),
    (["solve", "gridwrold", "--rows", "5"], "unknown source 'gridwrold'"),
    (["solve", "gridwrold", "--rows", "5"], "did you mean gridworld?"),
    (["slove", "maze"], "did you mean solve?"),
    (["dra", "maze", "--episode", "5"], "did you mean --episodes?"),
    (["bench", "--repeats", "2"], "did you mean --repeat? (see 'fastsoft bench --help')"),
    (["solve", "maze", "--tol", "-1e-3"], "--tol must be > 0, got -0.001"),
    (["solve", "gym:FrozenLak-v1"], "FrozenLake"),
    (["solve", "gym:CartPole-v1"], "no transition table env.unwrapped.P"),
    # sizes that cannot fit: refused up front, one line
    (["solve", "gridworld", "--rows", "100000", "--cols", "100000"], "needs about"),
    (["solve", "random", "--states", "3000000000"], "needs about"),
    (["solve", "maze", "--horizon", "100000000"], "--horizon 100000000 on 54 states needs"),
    (["solve", "maze", "--max-iter", "1000000000000"], "--max-iter 1000000000000 is more"),
    (["solve", "maze", "--out", "/proc/r.npz"], "cannot write /proc/r.npz"),
    (["bench", "--compare", "missing.json"], "--compare: no such file: missing.json"),
    (["bench", "--fail-threshold", "ten"], "--fail-threshold"),
]


@pytest.mark.parametrize("argv, fragment", ERROR_CASES, ids=[" ".join(a) or "<none>"
                                                            for a, _ in ERROR_CASES])
def test_errors_in_process(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert_one_line_error(captured.err, fragment)


@pytest.mark.parametrize("key, fragment", [
    ("garbage", "is not an .npz archive"),
    ("npy", "is not an .npz archive"),
    ("no_R", "missing key 'R'"),
    ("no_P", "need 'P'"),
    ("no_gamma", "pass --gamma"),
    ("bad_gamma", "'gamma' must be a number"),
    ("not_stochastic", "sums to"),
    ("bad_shape", "R must have shape"),
    ("bad_grid", "does not match 2 states"),
    ("gamma_one", "gamma = 1 needs a finite horizon: pass --horizon"),
    ("dir", "is a directory"),
])
def test_bad_input_files(key, fragment, bad_files, capsys):
    assert main(["solve", str(bad_files[key]), "-q"]) == 2
    assert_one_line_error(capsys.readouterr().err, fragment)


def test_os_error_is_one_line(monkeypatch, tmp_path, capsys):
    def full(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    assert main(["solve", "maze", "--out", str(tmp_path / "r.npz"), "-q"]) == 2
    assert_one_line_error(capsys.readouterr().err, "No space left on device")
    assert not list(tmp_path.iterdir())  # no temporary file left behind


def test_errors_in_a_subprocess(bad_files):
    for args, fragment in [(["solve", "gridworld", "--rows", "-3"], "--rows"),
                           (["solve", str(bad_files["garbage"])], "not an .npz archive"),
                           (["dra", "maze", "--lam", "-1", "--episodes", "3"], "lam")]:
        p = run_cli(*args)
        assert p.returncode == 2, p.stderr
        assert_one_line_error(p.stderr, fragment)
        assert p.stdout == ""


def test_help_on_every_option_and_subcommand():
    parser = cli.build_parser()
    sub = cli._subparser(parser, "solve")
    assert sub.allow_abbrev is False and parser.allow_abbrev is False
    for name in ("solve", "dra", "bench", "info"):
        sp = cli._subparser(parser, name)
        assert sp.description, name
        for action in sp._actions:
            assert action.help, (name, action.dest)


def test_memory_error_is_one_line(monkeypatch, capsys):
    def oom(*a, **k):
        raise MemoryError

    monkeypatch.setattr(cli, "_run_solver", oom)
    assert main(["solve", "maze", "-q"]) == 2
    assert_one_line_error(capsys.readouterr().err, "out of memory")


def test_kill_during_write_leaves_no_temporary_file(tmp_path):
    """SIGKILL while the .npz is written: the old file is intact and nothing else is left."""
    out = tmp_path / "r.npz"
    np.savez(out, V=np.zeros(3))
    code = (
        "import os, signal, numpy as np\n"
        "from fastsoft import cli\n"
        "real = np.savez\n"
        "def dying(f, **a):\n"
        "    real(f, **a)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "np.savez = dying\n"
        f"cli._save_npz(__import__('pathlib').Path({str(out)!r}), {{'V': np.ones(3)}})\n"
    )
    p = subprocess.run([sys.executable, "-c", code], env=ENV, cwd=ROOT, timeout=120)
    assert p.returncode == -signal.SIGKILL
    assert sorted(x.name for x in tmp_path.iterdir()) == ["r.npz"]
    np.testing.assert_array_equal(np.load(out)["V"], np.zeros(3))


def test_bench_json_and_compare(monkeypatch, tmp_path, capsys):
    import json

    from fastsoft import benchmarking
    from fastsoft.benchmarking import BenchRow

    times = {"sweep": 1e-3, "solve": 0.1}

    def fake(problems, **kw):
        rows = [BenchRow("p", "sweep", times["sweep"], 2e-3),
                BenchRow("p", "solve", times["solve"], float("nan"), "note")]
        for r in rows:
            kw["report"](r)
        return rows

    monkeypatch.setattr(benchmarking, "measure_ratios", fake)
    base = tmp_path / "base.json"
    assert main(["bench", "--size", "tiny", "--json", str(base)]) == 0
    rec = json.loads(base.read_text())
    mi = rec["machine_info"]
    for key in ("cpu", "cpu_count", "numba_threads", "load_average", "python", "numpy",
                "numba", "fastsoft"):
        assert key in mi
    assert [b["name"] for b in rec["benchmarks"]] == ["p | sweep", "p | solve"]
    assert rec["benchmarks"][0]["stats"]["median"] == 1e-3
    assert rec["benchmarks"][0]["ratio"] == 2.0 and rec["benchmarks"][1]["ratio"] is None
    assert rec["settings"]["size"] == "tiny"
    capsys.readouterr()
    # 10% slower: within a 20% threshold, beyond 5%
    times["solve"] = 0.11
    assert main(["bench", "--size", "tiny", "--compare", str(base)]) == 0
    out = capsys.readouterr().out
    assert "1.10x" in out and "REGRESSION" not in out
    assert main(["bench", "--size", "tiny", "--compare", str(base),
                 "--fail-threshold", "5%"]) == 1
    out = capsys.readouterr().out
    line = [ln for ln in out.splitlines() if ln.startswith("p | solve")][0]
    assert line.endswith("REGRESSION")
    assert "1 of 2 figures slower" in out
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    assert main(["bench", "--compare", str(bad)]) == 2


def test_compare_runs_unit():
    from fastsoft.benchmarking import compare_runs, parse_threshold

    base = {"benchmarks": [{"name": "a", "stats": {"median": 1.0}},
                           {"name": "b", "stats": {"median": 2.0}}]}
    cur = {"benchmarks": [{"name": "a", "stats": {"median": 1.5}},
                          {"name": "b", "stats": {"median": 1.0}},
                          {"name": "c", "stats": {"median": 1.0}}]}
    out = {c["name"]: c for c in compare_runs(cur, base, "40%")}
    assert out["a"]["ratio"] == 1.5 and out["a"]["regressed"]
    assert out["b"]["ratio"] == 0.5 and not out["b"]["regressed"]
    assert out["c"]["ratio"] is None and not out["c"]["regressed"]
    assert parse_threshold("20%") == 0.2 and parse_threshold(0.3) == 0.3
    with pytest.raises(ValueError):
        parse_threshold("-1")
    with pytest.raises(ValueError, match="benchmarks"):
        compare_runs({}, base)


def test_console_script():
    exe = shutil.which("fastsoft", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("the fastsoft console script is not installed in this environment")
    p = subprocess.run([exe, "solve", "gridworld", "--rows", "5", "--cols", "5", "-q"],
                       capture_output=True, text=True, timeout=120, env=ENV)
    assert p.returncode == 0, p.stderr
    assert field(p.stdout, "states").startswith("25 ")
    assert p.stderr == ""  # --quiet
    p = subprocess.run([exe, "solve", "gridworld", "--cols", "x"], capture_output=True,
                       text=True, timeout=120, env=ENV)
    assert p.returncode == 2
    assert_one_line_error(p.stderr, "--cols")


# ---------------------------------------------------------------- Ctrl-C
def test_interrupt_in_process_keeps_certified_partial_result(monkeypatch, tmp_path, capsys):
    """A Ctrl-C (SIGINT) at sweep 4: exit 130, the partial result is saved and certified."""
    import fastsoft.progress as progress

    real = progress.progress_callback

    def interrupting(*args, **kwargs):
        def at_4(info):
            if info["n_iter"] >= 4:
                os.kill(os.getpid(), signal.SIGINT)

        return real(*args, **kwargs, callback=at_4)

    monkeypatch.setattr(progress, "progress_callback", interrupting)
    out = tmp_path / "part.npz"
    rc = main(["solve", "gridworld", "--rows", "30", "--cols", "30", "--temperature", "0.2",
               "--method", "vi", "--tol", "1e-12", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 130
    assert "interrupted after" in captured.err and str(out) in captured.err
    assert "interrupted     yes" in captured.out
    d = np.load(out)
    assert bool(d["interrupted"]) and not bool(d["converged"])
    assert 4 <= int(d["n_iter"]) < 100
    bound = float(d["error_bound"])
    assert np.isfinite(bound) and bound > 1e-12
    full = fs.soft_value_iteration(fs.gridworld(30, 30, slip=0.1, gamma=0.99), 0.2, tol=1e-11)
    assert np.max(np.abs(d["V"] - full.V)) <= bound + 1e-9
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.skipif(os.name == "nt", reason="POSIX signals and pseudo-terminals")
def test_interrupt_subprocess_with_progress_bar_on_a_terminal():
    """A real Ctrl-C on a long solve whose stderr is a terminal: the bar shows the bound,
    the exit status is 130 and the partial result is on disk."""
    import fcntl
    import pty
    import select
    import struct
    import tempfile
    import termios

    master, slave = pty.openpty()
    # a 24 x 120 terminal (a fresh pty is 0 x 0, where tqdm draws nothing)
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "part.npz"
        p = subprocess.Popen(
            [sys.executable, "-m", "fastsoft", "solve", "gridworld", "--rows", "300", "--cols",
             "300", "--gamma", "0.999", "--temperature", "0.5", "--method", "vi", "--tol",
             "1e-13", "--out", str(out)],
            stdout=subprocess.PIPE, stderr=slave, text=True, env=ENV, cwd=ROOT)
        os.close(slave)
        seen = b""
        try:
            deadline = time.time() + 90
            while b"bound=" not in seen and time.time() < deadline and p.poll() is None:
                ready, _, _ = select.select([master], [], [], 1.0)
                if ready:
                    try:
                        seen += os.read(master, 4096)
                    except OSError:  # EIO: the child closed the terminal
                        break
            assert b"fastsoft: solving" in seen, seen
            assert b"bound=" in seen, seen  # the bar shows the certified bound
            p.send_signal(signal.SIGINT)
            stdout, _ = p.communicate(timeout=60)
            while True:  # the rest of the terminal output
                ready, _, _ = select.select([master], [], [], 0.5)
                if not ready:
                    break
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
        finally:
            p.kill()
            os.close(master)
        err = seen.decode(errors="replace")
        assert p.returncode == 130, err
        assert "Traceback" not in err
        assert "interrupted after" in err
        d = np.load(out)
        assert bool(d["interrupted"]) and np.isfinite(float(d["error_bound"]))
        assert field(stdout, "interrupted") == "yes (partial result)"
