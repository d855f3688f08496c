"""FrozenLake 8x8 (gymnasium): solve the tabular model, then check it in the real environment.

``TabularMDP.from_gymnasium`` reads the environment's transition table
(``env.unwrapped.P``): holes and the goal become terminal states. The optimal
probability of reaching the goal within the episode's 200 steps (its
``TimeLimit``) is a finite-horizon problem (``gamma = 1``, backward
induction); the stationary discounted policy is then played in gymnasium
itself and its success rate compared with the rate the model predicts for it
(finite-horizon occupancy).
Runs in a few seconds::

    python examples/frozenlake.py
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

import fastsoft as fs

ARROWS = "<v>^"  # actions 0 left, 1 down, 2 right, 3 up

env = gym.make("FrozenLake8x8-v1", is_slippery=True)
H = env.spec.max_episode_steps  # 200: episodes are cut (truncated) after H steps
desc = env.unwrapped.desc.astype(str)
mdp = fs.TabularMDP.from_gymnasium(env, gamma=0.999)
print(mdp)
goal = int(np.flatnonzero(desc.ravel() == "G")[0])
start = int(np.argmax(mdp.initial))

# 1. Optimal probability of reaching the goal within H steps: reward 1 on
#    entering the goal, gamma = 1, horizon H (exact backward induction).
fh = fs.soft_value_iteration(mdp.with_gamma(1.0), 0.0, horizon=H)
p_opt = fh.V[0, start]
print(f"optimal P(goal within {H} steps) = {p_opt:.4f}  [{fh.method}]")

# 2. A stationary policy: discounted value iteration (gamma 0.999), certified.
res = fs.value_iteration(mdp, tol=1e-10, order="gauss-seidel")
print(res.summary())
policy = res.action

# 3. What the model predicts for that policy: P(s_t = goal) summed over t
#    (an episode enters the goal once), from the finite-horizon occupancy.
occ = fs.occupancy(mdp, policy, horizon=H)
p_model = occ.state[:, goal].sum()
print(f"model: P(goal within {H} steps | stationary policy) = {p_model:.4f}")
assert p_model <= p_opt + 1e-9  # the finite-horizon optimum is an upper bound

# 4. Play it in gymnasium.
n_episodes = 1000
wins = 0
for ep in range(n_episodes):
    s, _ = env.reset(seed=ep)
    done = False
    while not done:
        s, r, terminated, truncated, _ = env.step(int(policy[s]))
        done = terminated or truncated
    wins += r > 0
rate = wins / n_episodes
se = np.sqrt(p_model * (1 - p_model) / n_episodes)
print(f"gymnasium: {wins}/{n_episodes} episodes reached the goal: success rate {rate:.3f} "
      f"(model {p_model:.3f} +- {se:.3f})")
assert abs(rate - p_model) < 4 * se, "the model and the environment disagree"

# 5. The policy on the map (H: holes, G: goal).
print("\npolicy:")
for r in range(8):
    row = ""
    for c in range(8):
        ch = desc[r, c]
        row += ch if ch in "HG" else ARROWS[policy[r * 8 + c]]
    print("  " + row)

# 6. A little entropy: the soft policy hedges between near-equal moves; by
#    docs/theory.md §4 it loses at most tau log|A| / (1 - gamma) of discounted value.
tau = 1e-4
soft = fs.soft_value_iteration(mdp, tau, tol=1e-10, order="gauss-seidel")
v_soft = fs.policy_evaluation(mdp, soft.policy).V[start]
bound = fs.bounds.soft_policy_loss_bound(mdp.n_actions, tau, mdp.gamma)
print(f"\nsoft policy (temperature {tau:g}): discounted value {v_soft:.4f} vs optimal "
      f"{res.V[start]:.4f} (loss bound {bound:.4f})")
assert 0 <= res.V[start] - v_soft <= bound + 1e-9
env.close()
print(f"frozenlake ok: success rate {rate:.3f}")
