"""A linear-chain CRF in NumPy: the forward algorithm with a hand-written backward, the path score,
and Viterbi decoding (EQUATIONS.md, "Tagging").

Dimension letters: T time (tokens of one sequence), K tags. One sequence at a time; float64.

    score(x, y) = s[y_1] + Σ_t e_t[y_t] + Σ_{t>1} A[y_{t-1}, y_t] + e[y_T]
    α_1 = s + e_1,   α_t[j] = logsumexp_i(α_{t-1}[i] + A[i, j]) + e_t[j],   log Z = logsumexp(α_T + end)

Names follow torch's CRF in rnnkit.nn: `transitions` is A, `start` is s, `end` is e (the vector).
"""

from __future__ import annotations

import numpy as np


def logsumexp(a: np.ndarray, axis: int) -> np.ndarray:
    peak = a.max(axis=axis, keepdims=True)
    return (peak + np.log(np.exp(a - peak).sum(axis=axis, keepdims=True))).squeeze(axis)


def crf_log_partition(emissions: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray):
    """log Z of one sequence's emissions (T, K), and the cache its backward needs."""
    alphas = [start + emissions[0]]  # each (K,)
    for t in range(1, len(emissions)):
        alphas.append(logsumexp(alphas[-1][:, None] + transitions, axis=0) + emissions[t])  # (K,)
    log_z = float(logsumexp(alphas[-1] + end, axis=0))
    return log_z, (emissions, transitions, start, end, alphas, log_z)


def crf_log_partition_backward(d_log_z: float, cache) -> dict[str, np.ndarray]:
    """The gradients of log Z: the tag marginals for the emissions and start and end, the pairwise
    marginals for the transitions, by the backward recursion β_t[i] = logsumexp_j(A[i, j] + e_{t+1}[j] + β_{t+1}[j])."""
    emissions, transitions, start, end, alphas, log_z = cache
    betas = [end]  # β_T = end
    for t in range(len(emissions) - 1, 0, -1):
        betas.append(logsumexp(transitions + (emissions[t] + betas[-1])[None, :], axis=1))  # (K,)
    betas.reverse()
    d_emissions = np.stack([np.exp(alpha + beta - log_z) for alpha, beta in zip(alphas, betas)])  # (T, K)
    d_transitions = np.zeros_like(transitions)
    for t in range(1, len(emissions)):
        pair = alphas[t - 1][:, None] + transitions + (emissions[t] + betas[t])[None, :]  # (K, K)
        d_transitions += np.exp(pair - log_z)
    return {
        "emissions": d_log_z * d_emissions,
        "transitions": d_log_z * d_transitions,
        "start": d_log_z * d_emissions[0],
        "end": d_log_z * np.exp(alphas[-1] + end - log_z),
    }


def crf_score(
    emissions: np.ndarray, tags: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray
) -> float:
    """The score of one tag path (T,)."""
    steps = np.arange(len(tags))
    return float(start[tags[0]] + emissions[steps, tags].sum() + transitions[tags[:-1], tags[1:]].sum() + end[tags[-1]])


def crf_viterbi(emissions: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """The best tag path (T,): the forward recursion with max, then backtracking."""
    best = start + emissions[0]  # (K,)
    pointers = []
    for t in range(1, len(emissions)):
        candidates = best[:, None] + transitions  # (K, K): from i to j
        pointers.append(candidates.argmax(axis=0))
        best = candidates.max(axis=0) + emissions[t]
    path = [int(np.argmax(best + end))]
    for pointer in reversed(pointers):
        path.append(int(pointer[path[-1]]))
    return np.array(path[::-1])
