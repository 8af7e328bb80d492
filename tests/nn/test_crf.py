"""The linear-chain CRF of both engines against brute-force enumeration of every tag path, and the
torch CRF (autograd) against the NumPy one (hand-written backward)."""

import itertools

import numpy as np
import pytest
import torch

from helpers import assert_close
from rnnkit import nn as rnn
from rnnkit.reference import crf_log_partition, crf_log_partition_backward, crf_score, crf_viterbi

K = 3


def random_crf(T, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(T, K)), rng.normal(size=(K, K)), rng.normal(size=K), rng.normal(size=K))


def brute_force(emissions, transitions, start, end):
    """(log Z, best path) over all K^T paths."""
    paths = [np.array(path) for path in itertools.product(range(K), repeat=len(emissions))]
    scores = np.array([crf_score(emissions, path, transitions, start, end) for path in paths])
    return float(np.log(np.exp(scores - scores.max()).sum()) + scores.max()), paths[int(np.argmax(scores))]


@pytest.mark.parametrize("T", [1, 2, 4, 5])
def test_numpy_forward_algorithm_and_viterbi_against_brute_force(T):
    parts = random_crf(T, seed=T)
    log_z, best = brute_force(*parts)
    assert_close(crf_log_partition(*parts)[0], log_z, "log Z", rtol=1e-12, atol=1e-12)
    assert crf_viterbi(*parts).tolist() == best.tolist()


def torch_crf(parts):
    emissions, transitions, start, end = parts
    crf = rnn.CRF(K).double()
    with torch.no_grad():
        crf.transitions.copy_(torch.from_numpy(transitions))
        crf.start.copy_(torch.from_numpy(start))
        crf.end.copy_(torch.from_numpy(end))
    return crf


@pytest.mark.parametrize("T", [1, 3, 5])
def test_numpy_backward_against_finite_differences_and_torch_autograd(T):
    parts = random_crf(T, seed=10 + T)
    _, cache = crf_log_partition(*parts)
    grads = crf_log_partition_backward(1.0, cache)
    names = ("emissions", "transitions", "start", "end")
    for name, array in zip(names, parts):  # central differences
        numeric = np.zeros_like(array)
        for index in np.ndindex(array.shape):
            plus, minus = [part.copy() for part in parts], [part.copy() for part in parts]
            plus[names.index(name)][index] += 1e-6
            minus[names.index(name)][index] -= 1e-6
            numeric[index] = (crf_log_partition(*plus)[0] - crf_log_partition(*minus)[0]) / 2e-6
        assert_close(grads[name], numeric, f"d log Z / d {name}", rtol=1e-6, atol=1e-8)
    crf = torch_crf(parts)
    emissions = torch.from_numpy(parts[0])[:, None, :].requires_grad_(True)  # (T, 1, K)
    crf.log_partition(emissions, torch.tensor([T])).sum().backward()
    assert_close(emissions.grad[:, 0], grads["emissions"], "torch d emissions", rtol=1e-10, atol=1e-12)
    for name in names[1:]:
        parameter = getattr(crf, name)
        gradient = parameter.grad if parameter.grad is not None else torch.zeros_like(parameter)  # unused at T = 1
        assert_close(gradient, grads[name], f"torch d {name}", rtol=1e-10, atol=1e-12)


def test_a_padded_batch_equals_each_sequence_alone():
    lengths = [5, 2, 4, 1]
    sequences = [random_crf(T, seed=20 + T) for T in lengths]
    crf = torch_crf(sequences[0])
    emissions = torch.zeros(max(lengths), len(lengths), K, dtype=torch.float64)
    tags = torch.zeros(max(lengths), len(lengths), dtype=torch.long)
    rng = np.random.default_rng(0)
    for b, (parts, T) in enumerate(zip(sequences, lengths)):
        emissions[:T, b] = torch.from_numpy(parts[0])
        emissions[T:, b] = 100.0  # padding must not matter
        tags[:T, b] = torch.from_numpy(rng.integers(0, K, T))
    transitions, start, end = (getattr(crf, name).detach().numpy() for name in ("transitions", "start", "end"))
    log_z = crf.log_partition(emissions, torch.tensor(lengths))
    scores = crf.score(emissions, tags, torch.tensor(lengths))
    paths = crf.decode(emissions, torch.tensor(lengths))
    for b, (parts, T) in enumerate(zip(sequences, lengths)):
        e = parts[0]
        assert_close(log_z[b], crf_log_partition(e, transitions, start, end)[0], f"log Z {b}", rtol=1e-12)
        assert_close(scores[b], crf_score(e, tags[:T, b].numpy(), transitions, start, end), f"score {b}", rtol=1e-12)
        assert paths[:T, b].tolist() == crf_viterbi(e, transitions, start, end).tolist()
    nll = crf.neg_log_likelihood(emissions, tags, torch.tensor(lengths))
    assert bool((nll > 0).all())  # -log p(y | x) of a path other than all paths
