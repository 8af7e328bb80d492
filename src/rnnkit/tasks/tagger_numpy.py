"""The tagger's forward pass and decoding in NumPy alone, for `rnnkit predict --engine numpy`.

It reads the same weights (torch.nn names) through the NumPy engine (rnnkit.reference, CRF
included) and never imports torch. Every weight's shape is checked against the config and the
run's vocabularies and tag set before anything runs. One sentence at a time, float64.

Dimension letters: T time (words), N words, C characters, E, F, H, D, K as in tagger_torch.py.
"""
from __future__ import annotations

import numpy as np

from rnnkit import reference
from rnnkit.reference import crf_viterbi
from rnnkit.rundir import check_numpy_weights
from rnnkit.spec import CellSpec, layer_parameter_shapes

LAYERS = {"rnn": reference.RNN, "lstm": reference.LSTM, "gru": reference.GRU}


def recurrent_stack(model) -> list[tuple[str, object, int]]:
    """(weight-name prefix, NumPy layer, input size) of each recurrent module, as tagger_torch builds them."""
    directions = 2 if model.bidirectional else 1
    char_size = 2 * model.char_hidden_size if model.char_encoder == "bilstm" else 0
    input_size = model.embedding_size + char_size
    keywords = model.cell_spec().keywords()
    if not model.residual:
        return [("rnn.", LAYERS[model.cell](input_size, model.hidden_size, model.num_layers,
                                             bidirectional=model.bidirectional, **keywords), input_size)]
    sizes = [input_size] + [directions * model.hidden_size] * (model.num_layers - 1)
    return [(f"layers.{k}.", LAYERS[model.cell](size, model.hidden_size, 1, bidirectional=model.bidirectional,
                                                **keywords), size) for k, size in enumerate(sizes)]


def expected_shapes(model, words: int, characters: int, tags: int) -> dict[str, tuple[int, ...]]:
    directions = 2 if model.bidirectional else 1
    shapes = {"word_embedding.weight": (words, model.embedding_size)}
    if model.char_encoder == "bilstm":
        shapes["characters.embedding.weight"] = (characters, model.char_embedding_size)
        shapes |= {f"characters.rnn.{name}": shape for name, shape in layer_parameter_shapes(
            CellSpec("lstm"), model.char_embedding_size, model.char_hidden_size, bidirectional=True).items()}
    for prefix, layer, size in recurrent_stack(model):
        shapes |= {prefix + name: shape for name, shape in layer_parameter_shapes(
            model.cell_spec(), size, model.hidden_size, layer.num_layers, bidirectional=model.bidirectional).items()}
    shapes |= {"output.weight": (tags, directions * model.hidden_size), "output.bias": (tags,)}
    if model.crf:
        shapes |= {"crf.transitions": (tags, tags), "crf.start": (tags,), "crf.end": (tags,)}
    return shapes


def numpy_tagging_function(model, weights: dict[str, np.ndarray], data, source):
    """EncodedSentences -> predicted tag ids per sentence, with the NumPy engine."""
    check_numpy_weights(weights, expected_shapes(model, len(data.vocabulary), len(data.characters), len(data.tags)),
                        source)
    weights = {name: value.astype(np.float64) for name, value in weights.items()}
    stack = recurrent_stack(model)
    for prefix, layer, _ in stack:
        layer.load_state_dict({name[len(prefix):]: value for name, value in weights.items() if name.startswith(prefix)})
    speller = None
    if model.char_encoder == "bilstm":
        speller = reference.LSTM(model.char_embedding_size, model.char_hidden_size, bidirectional=True)
        speller.load_state_dict({name[len("characters.rnn."):]: value for name, value in weights.items()
                                 if name.startswith("characters.rnn.")})

    def spell(spellings: list[np.ndarray]) -> np.ndarray:
        lengths = np.array([max(len(spelling), 1) for spelling in spellings])
        x = np.zeros((lengths.max(), len(spellings), model.char_embedding_size))  # (C, N, E_c)
        for column, spelling in enumerate(spellings):
            x[: len(spelling), column] = weights["characters.embedding.weight"][spelling]
        _, (h_n, _) = speller.forward(x, None, lengths)  # (2, N, Hc)
        return np.concatenate([h_n[0], h_n[1]], axis=-1)  # (N, F)

    def tag(words: np.ndarray, spellings: list[np.ndarray]) -> np.ndarray:
        x = weights["word_embedding.weight"][words]  # (T, E)
        if speller is not None:
            x = np.concatenate([x, spell(spellings)], axis=-1)  # (T, E+F)
        x = x[:, None, :]  # (T, 1, ·)
        for k, (_, layer, _) in enumerate(stack):
            y, _ = layer.forward(x)
            x = y + x if model.residual and k > 0 else y  # (T, 1, D*H)
        emissions = x[:, 0] @ weights["output.weight"].T + weights["output.bias"]  # (T, K)
        if model.crf:
            return crf_viterbi(emissions, weights["crf.transitions"], weights["crf.start"], weights["crf.end"])
        return emissions.argmax(axis=-1)

    return lambda encoded: [tag(words, spellings) for words, spellings in zip(encoded.words, encoded.characters)]

