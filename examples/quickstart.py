"""fastsoft in two minutes: build an MDP, solve it hard and soft, check the certificate.

Runs in a few seconds::

    python examples/quickstart.py
"""

from __future__ import annotations

import numpy as np

import fastsoft as fs

# 1. An MDP: a 50 x 50 gridworld (2,500 states, actions up/down/left/right), a
#    10% chance that a random move replaces the chosen one, -1 per step, the
#    goal (bottom-right, terminal) pays 0. Stored as state-action-pair CSR.
mdp = fs.gridworld(50, 50, slip=0.1, walls=[(10, c) for c in range(5, 45)], gamma=0.99)
print(mdp)

# 2. Hard value iteration with a certified stopping rule: the returned V is
#    within error_bound of V* in the sup norm (MacQueen bounds, docs/theory.md §2.4).
hard = fs.value_iteration(mdp, tol=1e-8, order="gauss-seidel")
print("\nhard value iteration\n" + hard.summary())

# 3. Entropy-regularized ("soft", maximum-entropy) value iteration: temperature
#    tau is an entropy weight in reward units; the policy is pi ∝ exp(Q / tau).
tau = 0.5
soft = fs.soft_value_iteration(mdp, tau, tol=1e-8, order="gauss-seidel")
print(f"\nsoft value iteration (temperature {tau})\n" + soft.summary())

# fs.solve picks a method by size and structure (same operator, same certificate).
auto = fs.solve(mdp, tau, tol=1e-8)
print(f"fs.solve chose {auto.method}: {auto.n_iter} iterations, bound {auto.error_bound:.1e}")
assert np.max(np.abs(auto.V - soft.V)) <= auto.error_bound + soft.error_bound

# 4. Check the certificate independently: one more Bellman backup moves V by
#    at most (1 + gamma) * error_bound, and the soft policy sums to one.
TV, Q, pi = fs.bellman_backup(mdp, soft.V, tau)
live = ~mdp.terminal
assert np.max(np.abs(TV - soft.V)[live]) <= (1 + mdp.gamma) * soft.error_bound + 1e-12
assert np.allclose(pi.sum(axis=1), 1.0)

# 5. docs/theory.md §4: the soft-optimal policy loses at most tau log|A| / (1 - gamma)
#    of unregularized value. Evaluate it exactly (sparse direct solve) and compare.
ev = fs.policy_evaluation(mdp, soft.policy)  # temperature 0: the plain return
s0 = int(np.argmax(mdp.initial))
loss = hard.V[s0] - ev.V[s0]
bound = fs.bounds.soft_policy_loss_bound(mdp.n_actions, tau, mdp.gamma)
print(f"\nvalue of the start state: hard {hard.V[s0]:.4f}, soft policy {ev.V[s0]:.4f}")
print(f"soft policy loss {loss:.4f} <= bound tau log|A|/(1-gamma) = {bound:.1f}")
assert -1e-6 <= loss <= bound

# 6. KL regularization towards a default policy (here: mostly "right").
prior = np.array([0.1, 0.1, 0.1, 0.7])
kl = fs.soft_value_iteration(mdp, 0.0, kl_weight=1.0, prior=prior, tol=1e-8,
                             order="gauss-seidel")
print(f"\nKL-regularized towards the prior {prior}: V(start) = {kl.V[s0]:.4f}, "
      f"policy at the start {np.round(kl.policy[s0], 3)}")

# 7. Monte Carlo check of the soft policy's value from the start state.
mc = fs.monte_carlo_evaluation(mdp, soft.policy, n_episodes=4000, horizon=1500, seed=0)
print(f"Monte Carlo value of the soft policy: {mc.value:.3f} +- {mc.stderr:.3f} "
      f"(exact {ev.V[s0]:.3f})")
assert abs(mc.value - ev.V[s0]) < 5 * mc.stderr + 0.05

print(f"\nquickstart ok: certified bound {soft.error_bound:.2e}")
