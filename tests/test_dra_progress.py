"""Progress reports and clean early stops of ``fastsoft.dra.train`` (``callback=``)."""

import math
import os
import signal

import numpy as np
import pytest

import fastsoft as fs
from fastsoft import dra
from fastsoft.cli import main
from fastsoft.dra import _core

RESULT_FIELDS = ("qbar", "sigma", "sigma_scalar", "n_steps", "returns", "state_visits",
                 "memories")
HISTORY_FIELDS = ("episode", "reward", "cost", "entropy_term", "objective", "state_entropy")


def maze_switch():
    kw = dict(dra.MAZE_PARAMS, n_episodes=90, n_runs=2, seed=5, eval_every=20, n_eval=10,
              switch_episode=45)
    return fs.mattar_daw_maze(), kw


def maze_frequency():  # the baseline whose weights come from the accumulated visit counts
    kw = dict(dra.MAZE_PARAMS, n_episodes=60, n_runs=2, seed=6, eval_every=15, n_eval=10,
              allocation="frequency")
    return fs.mattar_daw_maze(), kw


def huys_access_entropy():
    kw = dict(dra.HUYS_PARAMS, alpha_q=0.1, alpha_sigma=1.0, n_episodes=50, n_runs=3, seed=7,
              eval_every=10, n_eval=10, n_traj=4, cost="access", entropy_bonus=True,
              psi="return", allocation="stakes", beta=[10.0, 5.0, 2.0])
    return fs.huys_planning_task(2), kw


CASES = {"maze_switch": maze_switch, "maze_frequency": maze_frequency,
         "huys_access_entropy": huys_access_entropy}


def assert_same(a, b):
    for f in RESULT_FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)
    for f in HISTORY_FIELDS:
        np.testing.assert_array_equal(getattr(a.history, f), getattr(b.history, f), err_msg=f)


@pytest.fixture
def chunk(monkeypatch):
    def set_chunk(n):
        monkeypatch.setattr(_core, "_CHUNK_EPISODES", n)

    return set_chunk


@pytest.mark.parametrize("case", sorted(CASES))
def test_identical_with_and_without_callback(case, chunk):
    mdp, kw = CASES[case]()
    ref = dra.train(mdp, **kw)
    assert not ref.interrupted
    for size in (None, 1, 7, 45, 10_000):
        chunk(size)
        seen = []
        res = dra.train(mdp, callback=seen.append, **kw)
        assert_same(ref, res)
        assert not res.interrupted
        assert seen[-1]["episode"] == kw["n_episodes"]
        if size is not None:  # a report before the first chunk and after every chunk
            assert len(seen) == 1 + math.ceil(kw["n_episodes"] / size)


def test_reports_increase(chunk):
    chunk(8)
    mdp, kw = maze_switch()
    seen = []
    res = dra.train(mdp, callback=seen.append, **kw)
    episodes = [i["episode"] for i in seen]
    assert episodes[0] == 0 and episodes[-1] == kw["n_episodes"]
    assert all(b > a for a, b in zip(episodes[:-1], episodes[1:], strict=True))
    assert all(i["n_episodes"] == kw["n_episodes"] for i in seen)
    elapsed = [i["elapsed"] for i in seen]
    assert all(b >= a >= 0 for a, b in zip(elapsed[:-1], elapsed[1:], strict=True))
    h = res.history
    for info in seen:  # the objective at the last evaluation point passed
        passed = np.flatnonzero(h.episode <= info["episode"])
        if passed.size == 0:
            assert math.isnan(info["objective"])
        else:
            assert info["objective"] == np.mean(h.objective[:, passed[-1]])


def test_adaptive_chunks_grow():
    mdp, kw = maze_frequency()
    seen = []
    dra.train(mdp, callback=seen.append, **kw)
    steps = np.diff([i["episode"] for i in seen])
    assert steps[0] == 1  # a first chunk of one episode, then about CHUNK_SECONDS each
    assert len(seen) < kw["n_episodes"] + 1


@pytest.mark.parametrize("how", ["true", "keyboard_interrupt"])
def test_early_stop_keeps_partial_result(how, chunk):
    chunk(10)
    mdp, kw = maze_frequency()

    def cb(info):
        if info["episode"] >= 30:
            if how == "true":
                return True
            raise KeyboardInterrupt
        return None

    res = dra.train(mdp, callback=cb, **kw)
    assert res.interrupted and res.n_episodes_done == 30
    R, S, A = kw["n_runs"], mdp.n_states, mdp.n_actions
    assert res.qbar.shape == res.sigma.shape == (R, S, A)
    assert res.returns.shape == (R, 30) and res.state_visits.shape == (R, S)
    h = res.history
    np.testing.assert_array_equal(h.episode, [15, 30])
    for f in ("reward", "cost", "entropy_term", "objective"):
        assert getattr(h, f).shape == (R, 2)
    assert h.state_entropy.shape == (R, 2, S)
    assert np.all(res.n_steps > 0)
    # the partial state is exactly that of a run of 30 episodes
    full = dra.train(mdp, **dict(kw, n_episodes=30))
    assert_same(full, res)
    assert res.final_objective == full.final_objective


def test_stop_before_the_first_episode(chunk):
    chunk(10)
    mdp, kw = maze_switch()
    res = dra.train(mdp, callback=lambda info: True, **kw)
    assert res.interrupted and res.n_episodes_done == 0
    assert res.returns.shape == (2, 0) and res.history.episode.size == 0
    assert np.all(res.qbar == 0) and np.all(res.sigma == kw["sigma0"])
    assert np.all(res.n_steps == 0) and np.all(res.state_visits == 0)
    np.testing.assert_array_equal(res.memories, dra.train(
        mdp, **dict(kw, n_episodes=1, switch_episode=None)).memories)  # before the switch


def test_stop_at_the_end_is_not_an_interruption(chunk):
    chunk(30)
    mdp, kw = maze_switch()
    res = dra.train(mdp, callback=lambda info: info["episode"] == kw["n_episodes"], **kw)
    assert not res.interrupted and res.n_episodes_done == kw["n_episodes"]
    assert_same(dra.train(mdp, **kw), res)


def test_progress_callback_end_to_end():
    from fastsoft.progress import progress_callback

    mdp, kw = maze_switch()
    with progress_callback("DRA", total=kw["n_episodes"], enabled=False) as cb:
        res = dra.train(mdp, callback=cb, **kw)
    assert cb.last["episode"] == kw["n_episodes"] and cb.n_calls >= 2
    assert_same(dra.train(mdp, **kw), res)


@pytest.mark.parametrize("bad", [1, "tqdm", True])
def test_callback_must_be_callable(bad):
    mdp, kw = maze_switch()
    with pytest.raises(TypeError, match="callback"):
        dra.train(mdp, callback=bad, **kw)


# ---------------------------------------------------------------- command line
def test_cli_dra_maze(capsys):
    assert main(["dra", "maze", "--episodes", "200", "--runs", "2", "--n-eval", "10",
                 "-q"]) == 0
    out = capsys.readouterr().out
    assert "runs x episodes 2 x 200" in out and "interrupted" not in out


def test_cli_dra_ctrl_c_keeps_partial_result(monkeypatch, tmp_path, capsys, chunk):
    """A Ctrl-C (SIGINT) after 50 episodes: exit 130, the partial result is saved."""
    import fastsoft.progress as progress

    chunk(25)
    real = progress.progress_callback

    def interrupting(*args, **kwargs):
        def at_50(info):
            if info["episode"] >= 50:
                os.kill(os.getpid(), signal.SIGINT)

        return real(*args, **kwargs, callback=at_50)

    monkeypatch.setattr(progress, "progress_callback", interrupting)
    out = tmp_path / "part.npz"
    rc = main(["dra", "maze", "--episodes", "200", "--runs", "2", "--n-eval", "10",
               "--eval-every", "10", "--seed", "2", "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 130
    assert "interrupted after" in captured.err and str(out) in captured.err
    assert "interrupted     yes" in captured.out
    d = np.load(out)
    assert bool(d["interrupted"])
    n = d["returns"].shape[1]
    assert 50 <= n < 200 and d["history_episode"][-1] <= n
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
