"""The readable-cell finder: its indicators, its correlation, and a planted quote-toggling unit in a
real rnnkit LSTM language model that must rank first."""

import random

import numpy as np
import pytest
import torch

from rnnkit.analysis.cells import (
    bracket_depth,
    correlations,
    indentation,
    indicators,
    inside_comment,
    inside_quotes,
    position_in_line,
    rank_units,
    start_of_line,
    unit_signals,
    uppercase_run,
)
from rnnkit.tasks.language_model.config import ModelConfig
from rnnkit.tasks.language_model.torch import LanguageModel


def test_indicators_on_a_small_text():
    text = 'a "b(c)" #d\n  KING x'
    assert inside_quotes(text).tolist() == [0, 0, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    assert bracket_depth(text).tolist()[3:8] == [0, 1, 1, 0, 0]
    assert position_in_line(text).tolist()[10:15] == [11, 0, 1, 2, 3]
    assert start_of_line(text).tolist()[11] == 1 and start_of_line(text).sum() == 1
    assert inside_comment(text).tolist()[8:13] == [0, 1, 1, 0, 0]
    assert indentation(text).tolist()[11:16] == [0, 1, 2, 2, 2]
    assert uppercase_run(text).tolist()[14:20] == [1, 1, 1, 1, 0, 0]
    assert uppercase_run("A b C").sum() == 0  # lone capitals are not a run


def test_correlations_match_numpy_and_ignore_constants():
    rng = np.random.default_rng(0)
    values, indicator = rng.normal(size=(200, 4)), rng.normal(size=200)
    values[:, 2] = 3.0
    r = correlations(values, indicator)
    for unit in (0, 1, 3):
        assert r[unit] == pytest.approx(np.corrcoef(values[:, unit], indicator)[0, 1])
    assert r[2] == 0.0


def quote_text(seed: int, length: int = 3000) -> str:
    rng = random.Random(seed)
    words, pieces, size = ["the", "cat", "sat", "on", "a", "mat", "and", "ran"], [], 0
    while size < length:
        piece = " ".join(rng.choice(words) for _ in range(rng.randint(1, 6)))
        piece = f'"{piece}"' if rng.random() < 0.4 else piece
        piece += rng.choice([" ", " ", "\n"])
        pieces.append(piece)
        size += len(piece)
    return "".join(pieces)


def planted_model(vocabulary: list[str], unit: int) -> LanguageModel:
    """An LSTM LM with random weights, except that `unit` flips its cell between -1 and +1 at every
    double quote and holds it otherwise: its c is the in-quote indicator."""
    torch.manual_seed(0)
    hidden, quote = 12, vocabulary.index('"')
    model = LanguageModel(len(vocabulary), ModelConfig(cell="lstm", embedding_size=6, hidden_size=hidden))
    with torch.no_grad():
        model.embedding.weight[:, 0] = 0.0
        model.embedding.weight[quote, 0] = 1.0  # input 0 fires on a quote only
        w_ih, w_hh = model.rnn.weight_ih_l0, model.rnn.weight_hh_l0
        b_ih, b_hh = model.rnn.bias_ih_l0, model.rnn.bias_hh_l0
        i, f, g, o = (gate * hidden + unit for gate in range(4))  # torch's gate order
        for row in (i, f, g, o):
            w_ih[row], w_hh[row], b_ih[row], b_hh[row] = 0.0, 0.0, 0.0, 0.0
        w_ih[i, 0], b_ih[i] = 40.0, -20.0  # write only on a quote
        w_ih[f, 0], b_ih[f] = -60.0, 30.0  # forget only on a quote
        w_hh[g, unit], b_ih[g] = -30.0, 5.0  # the new value is minus the sign of the old one (+1 from 0)
        b_ih[o] = 30.0
    return model.eval()


def test_a_planted_quote_unit_ranks_first():
    text = quote_text(0)
    vocabulary = sorted(set(text))
    ids = np.array([vocabulary.index(char) for char in text])
    model = planted_model(vocabulary, unit=5)
    signals = unit_signals(model, ids)
    assert set(signals) == {"rnn.l0.c", "rnn.l0.tanh(c)", "rnn.l0.h"} and signals["rnn.l0.h"].shape == (len(text), 12)
    ranking = rank_units(signals, indicators(text))
    best = ranking["inside quotes"][0]
    assert (best.layer, best.unit) == ("rnn.l0", 5) and best.r > 0.95
    assert abs(ranking["inside quotes"][1].r) < 0.9 * best.r  # no other unit comes close
    assert "inside a comment" not in ranking  # no # in the text: nothing to correlate with


def test_signals_carry_state_across_chunks(monkeypatch):
    """Reading the text in chunks gives what one pass gives: the state is carried."""
    import rnnkit.analysis.cells as cells

    text = quote_text(1, 400)
    vocabulary = sorted(set(text))
    ids = np.array([vocabulary.index(char) for char in text])
    model = planted_model(vocabulary, unit=2)
    whole = unit_signals(model, ids)
    monkeypatch.setattr(cells, "CHUNK", 37)
    chunked = unit_signals(model, ids)
    for key, values in whole.items():
        np.testing.assert_allclose(chunked[key], values, atol=1e-5)
