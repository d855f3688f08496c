"""Gymnasium's Blackjack as an exact tabular MDP (it has no ``P`` table).

Blackjack-v1 draws from an infinite deck (each of 1..9 with probability 1/13,
10 with 4/13), so its dynamics can be enumerated exactly: the observation
``(player_sum, dealer_card, usable_ace)`` is a sufficient state (a hand whose
ace is not usable can never use it again), hitting draws one card (a bust ends
the episode with reward -1) and sticking ends it with the expected outcome of
the dealer's play (the dealer draws while below 17, standing on soft 17; a
bust scores 0), computed by recursion over the dealer's hands.

States are ``np.ravel_multi_index(obs, (32, 11, 2))`` (704 of them, most never
reached), one terminal state (index 704) and, for the ``sab`` (the default of
Blackjack-v1) and ``natural`` rules, which pay for a two-card 21, ten start
states 705..714 "natural 21 against dealer card d": their observation is the
same ``(21, d, 1)`` as a longer 21, so ``info["observation_of_state"]`` maps
every state to its observation index and policies over the 704 observations
are accepted by :mod:`fastsoft.groundtruth`.
"""

from __future__ import annotations

import functools

import numpy as np

from ..mdp import TabularMDP

__all__ = ["blackjack_mdp", "blackjack_state", "OBS_SHAPE"]

#: Shape of Blackjack's observation space (player sum, dealer card, usable ace).
OBS_SHAPE = (32, 11, 2)
_CARDS = np.arange(1, 11)
_P_CARD = np.array([1, 1, 1, 1, 1, 1, 1, 1, 1, 4], dtype=np.float64) / 13.0


def blackjack_state(obs) -> int:
    """The state index of an observation ``(player_sum, dealer_card, usable_ace)``.

    Examples
    --------
    >>> blackjack_state((21, 10, 1))
    483
    """
    return int(np.ravel_multi_index(tuple(int(x) for x in obs), OBS_SHAPE))


def _hand(raw: int, ace: bool) -> tuple[int, int]:
    """(sum, usable ace) of a hand with card total ``raw`` (aces as 1)."""
    if ace and raw + 10 <= 21:
        return raw + 10, 1
    return raw, 0


@functools.cache
def _dealer_final(raw: int, ace: bool) -> tuple[float, ...]:
    """Distribution of the dealer's final score from a hand: P(17), ..., P(21), P(bust)."""
    total, _ = _hand(raw, ace)
    if total > 21:
        return (0.0,) * 5 + (1.0,)
    if total >= 17:
        out = [0.0] * 6
        out[total - 17] = 1.0
        return tuple(out)
    acc = np.zeros(6)
    for c, p in zip(_CARDS, _P_CARD, strict=True):
        acc += p * np.array(_dealer_final(raw + int(c), ace or c == 1))
    return tuple(acc)


def _stick_reward(player: int, dealer_card: int, natural: str = "") -> float:
    """Expected reward when the player sticks on ``player <= 21``.

    ``natural``: ``""`` (no two-card 21), ``"sab"`` (a natural wins 1 unless the
    dealer has one too) or ``"natural"`` (a natural that wins pays 1.5).
    """
    scores = np.arange(17, 22)
    win = lose = 0.0
    for c, p in zip(_CARDS, _P_CARD, strict=True):  # the hidden card
        dist = np.array(_dealer_final(dealer_card + int(c), dealer_card == 1 or c == 1))
        w = dist[5] + dist[:5][scores < player].sum()
        lo = dist[:5][scores > player].sum()
        if natural == "sab" and sorted((dealer_card, int(c))) != [1, 10]:
            w, lo = 1.0, 0.0  # the player's natural wins outright
        win += p * w
        lose += p * lo
    return float((1.5 if natural == "natural" else 1.0) * win - lose)


def blackjack_mdp(env=None, gamma: float = 0.99) -> TabularMDP:
    """The exact MDP of gymnasium's Blackjack-v1 (default rules).

    Parameters
    ----------
    env : gymnasium.Env, optional
        A Blackjack environment (checked for the ``natural``/``sab`` variants).
    gamma : float
        Discount (episodes last at most 11 decisions).

    Returns
    -------
    TabularMDP
        :func:`blackjack_state` of each observation, a terminal state 704,
        and (``sab``/``natural`` rules of ``env``) ten natural-21 start
        states; actions 0 stick and 1 hit; the start distribution of ``reset``.

    Examples
    --------
    >>> mdp = blackjack_mdp()  # no env: plain rules, no bonus for a natural
    >>> mdp.n_states, mdp.n_actions
    (705, 2)
    """
    u = getattr(env, "unwrapped", env)
    rule = ("sab" if getattr(u, "sab", False) else
            "natural" if getattr(u, "natural", False) else "") if u is not None else ""
    n_obs = int(np.prod(OBS_SHAPE))
    end = n_obs
    n_nat = 10 if rule else 0
    S, A = n_obs + 1 + n_nat, 2
    R = np.zeros((S, A))
    rows: list[list[tuple[int, float]]] = []
    for s in range(n_obs):
        ps, dc, ua = np.unravel_index(s, OBS_SHAPE)
        ps, dc, ua = int(ps), int(dc), int(ua)
        valid = 4 <= ps <= 21 and 1 <= dc <= 10 and (not ua or ps >= 12)
        if not valid:  # never observed: a harmless zero-reward exit
            rows += [[(end, 1.0)], [(end, 1.0)]]
            continue
        R[s, 0] = _stick_reward(ps, dc)
        rows.append([(end, 1.0)])
        raw = ps - 10 if ua else ps
        hit: dict[int, float] = {}
        bust = 0.0
        for c, p in zip(_CARDS, _P_CARD, strict=True):
            total, usable = _hand(raw + int(c), bool(ua) or c == 1)
            if total > 21:
                bust += p
            else:
                t = blackjack_state((total, dc, usable))
                hit[t] = hit.get(t, 0.0) + p
        if bust:
            hit[end] = hit.get(end, 0.0) + bust
        R[s, 1] = -bust
        rows.append(sorted(hit.items()))
    rows += [[(end, 1.0)], [(end, 1.0)]]  # the terminal state
    for d in range(1, n_nat + 1):  # natural 21 against dealer card d: hit as any soft 21
        s = end + d
        generic = blackjack_state((21, d, 1))
        R[s, 0] = _stick_reward(21, d, rule)
        R[s, 1] = R[generic, 1]
        rows += [[(end, 1.0)], rows[2 * generic + 1]]
    indptr = np.zeros(S * A + 1, dtype=np.int64)
    indptr[1:] = np.cumsum([len(r) for r in rows])
    indices = np.array([t for r in rows for t, _ in r], dtype=np.int64)
    probs = np.array([p for r in rows for _, p in r], dtype=np.float64)
    # the start: two player cards and the dealer's face-up card
    initial = np.zeros(S)
    for c1, p1 in zip(_CARDS, _P_CARD, strict=True):
        for c2, p2 in zip(_CARDS, _P_CARD, strict=True):
            total, usable = _hand(int(c1 + c2), c1 == 1 or c2 == 1)
            natural = rule and sorted((int(c1), int(c2))) == [1, 10]
            for d, pd in zip(_CARDS, _P_CARD, strict=True):
                s = end + int(d) if natural else blackjack_state((total, d, usable))
                initial[s] += p1 * p2 * pd
    terminal = np.zeros(S, dtype=bool)
    terminal[end] = True
    obs_of = np.arange(S, dtype=np.int64)
    obs_of[end] = -1
    obs_of[end + 1:] = [blackjack_state((21, d, 1)) for d in range(1, n_nat + 1)]
    info = {"source": "gymnasium:Blackjack-v1", "observation_shape": OBS_SHAPE,
            "actions": ("stick", "hit"), "rule": rule or "plain",
            "observation_of_state": obs_of, "n_observations": n_obs}
    return TabularMDP.from_csr(indptr, indices, probs, R, gamma, terminal=terminal,
                               initial=initial / initial.sum(), info=info)
