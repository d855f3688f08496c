"""Steps per second of ``fastsoft.sample_trajectories`` vs a Python loop over the gymnasium env.

Usage::

    python benchmarks/sampling_speed.py             # garnet MDP, 20k episodes x 1000 steps
    python benchmarks/sampling_speed.py --small     # quick check
    python benchmarks/sampling_speed.py --mdp grid  # a 100 x 100 slippery gridworld

Both sides sample the same policy (uniform over actions) on the same MDP, in
one run: the kernel with all Numba threads (and with one), the Python loop by
drawing the action from the policy with the env's ``np_random`` and calling
``TabularEnv.step`` (resetting at the end of an episode), once on the raw
environment and once through ``gymnasium.make``'s default wrappers. The
kernel is timed allocating fresh output arrays (every call pays the page
faults of new memory) and writing into reused ones (``out=``). Times are
medians of repeated runs after a warm-up (compilation).
"""

from __future__ import annotations

import argparse
import os

import gymnasium as gym
import numba
import numpy as np

import fastsoft as fs
import fastsoft.envs  # noqa: F401  (registers the ids)
from fastsoft.benchmarking import median_time
from fastsoft.envs import TabularEnv
from fastsoft.sampling import monte_carlo_evaluation, sample_trajectories


def python_loop(env, policy, n_steps, seed=0):
    """Step ``env`` ``n_steps`` times under ``policy``; returns the steps taken."""
    cum = np.cumsum(policy, axis=1)
    cum[:, -1] = np.inf
    s, _ = env.reset(seed=seed)
    rng = env.unwrapped.np_random
    for _ in range(n_steps):
        a = int(np.searchsorted(cum[s], rng.random(), side="right"))
        s, _r, term, trunc, _ = env.step(a)
        if term or trunc:
            s, _ = env.reset()
    return n_steps


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mdp", choices=["garnet", "grid"], default="garnet")
    ap.add_argument("--episodes", type=int, default=20_000)
    ap.add_argument("--horizon", type=int, default=1_000)
    ap.add_argument("--python-steps", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--small", action="store_true", help="2000 episodes, 20k Python steps")
    args = ap.parse_args(argv)
    if args.small:
        args.episodes, args.python_steps, args.repeat = 2_000, 20_000, 3
    if args.mdp == "garnet":
        mdp = fs.random_mdp(1000, 4, 8, gamma=0.99, seed=0)
        label = "random_mdp(1000 states, 4 actions, 8 successors), no terminal states"
    else:
        mdp = fs.gridworld(100, 100, slip=0.1, gamma=0.99)
        label = "gridworld(100 x 100, slip 0.1), goal terminal"
    pi = np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)
    threads = numba.get_num_threads()
    print(f"MDP: {label}")
    print(f"CPU cores visible: {os.cpu_count()}, Numba threads: {threads}, "
          f"load average: {os.getloadavg()[0]:.2f}")

    out = {}

    def kernel():
        out["tr"] = sample_trajectories(mdp, pi, n_episodes=args.episodes, horizon=args.horizon,
                                        seed=1)

    def kernel_out():
        sample_trajectories(mdp, pi, n_episodes=args.episodes, horizon=args.horizon, seed=1,
                            out=out["tr"])

    t_all = median_time(kernel, args.repeat)
    steps = out["tr"].n_steps
    t_out = median_time(kernel_out, args.repeat)
    numba.set_num_threads(1)
    t_one = median_time(kernel, args.repeat)
    t_one_out = median_time(kernel_out, args.repeat)
    numba.set_num_threads(threads)

    def returns():
        out["mc"] = monte_carlo_evaluation(mdp, pi, n_episodes=args.episodes,
                                           horizon=args.horizon, seed=1)

    t_ret = median_time(returns, args.repeat)
    steps_ret = int(out["mc"].lengths.sum())

    raw = TabularEnv(mdp)
    t_py = median_time(lambda: python_loop(raw, pi, args.python_steps), 3)
    wrapped = gym.make("fastsoft/RandomMDP-v0" if args.mdp == "garnet" else
                       "fastsoft/GridWorld-v0",
                       **({"n_states": 1000, "n_actions": 4, "n_successors": 8}
                          if args.mdp == "garnet" else {"rows": 100, "cols": 100, "slip": 0.1}))
    t_wr = median_time(lambda: python_loop(wrapped, pi, args.python_steps), 3)

    rate_all = steps / t_all
    rate_one = steps / t_one
    rate_out = steps / t_out
    rate_one_out = steps / t_one_out
    rate_ret = steps_ret / t_ret
    rate_py = args.python_steps / t_py
    rate_wr = args.python_steps / t_wr
    tr = out["tr"]
    mib = (tr.states.nbytes + tr.actions.nbytes + tr.rewards.nbytes) >> 20
    print(f"sample_trajectories, {args.episodes} episodes x {args.horizon} steps "
          f"({steps} steps, {mib} MiB of output):")
    print(f"  {threads} threads, fresh arrays : {rate_all / 1e6:8.2f} M steps/s  "
          f"({t_all:.3f} s)")
    print(f"  {threads} threads, out= reused  : {rate_out / 1e6:8.2f} M steps/s  "
          f"({t_out:.3f} s)")
    print(f"  1 thread,  fresh arrays : {rate_one / 1e6:8.2f} M steps/s  ({t_one:.3f} s)")
    print(f"  1 thread,  out= reused  : {rate_one_out / 1e6:8.2f} M steps/s  "
          f"({t_one_out:.3f} s)")
    print(f"monte_carlo_evaluation (returns only), {threads} threads: "
          f"{rate_ret / 1e6:8.2f} M steps/s")
    print(f"Python loop over TabularEnv.step           : {rate_py / 1e3:8.1f} k steps/s")
    print(f"Python loop over gym.make(...) (wrappers)  : {rate_wr / 1e3:8.1f} k steps/s")
    print(f"ratio vs TabularEnv loop, fresh arrays / out= : {rate_all / rate_py:6.0f}x "
          f"/ {rate_out / rate_py:6.0f}x")
    print(f"ratio vs gym.make loop,   fresh arrays / out= : {rate_all / rate_wr:6.0f}x "
          f"/ {rate_out / rate_wr:6.0f}x")


if __name__ == "__main__":
    main()
