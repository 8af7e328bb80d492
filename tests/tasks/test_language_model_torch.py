import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from helpers import assert_close
from language_model_helpers import tiny_config, write_tiny_corpus
from rnnkit.data.corpus import build_vocabulary, load_language_corpus
from rnnkit.data.streams import Window
from rnnkit.tasks.language_model import torch as language_model
from rnnkit.tasks.language_model.config import ModelConfig
from rnnkit.tasks.language_model.torch import LanguageModel, LanguageModelTraining, evaluate_language_model

VOCABULARY_SIZE = 11


def small_model(**values) -> LanguageModel:
    torch.manual_seed(0)
    return LanguageModel(VOCABULARY_SIZE, ModelConfig(embedding_size=6, hidden_size=7, **values))


@pytest.mark.parametrize(
    "values",
    [
        {"cell": "rnn", "nonlinearity": "relu"},
        {"cell": "lstm"},
        {"cell": "lstm", "peephole": True, "gates": "if"},
        {"cell": "lstm", "coupled": True, "forget_bias": 1.0},
        {"cell": "gru", "reset": "before"},
        {"cell": "gru", "reset_gate": False, "num_layers": 2, "dropout": 0.2},
    ],
)
def test_every_cell_and_variant_builds_and_runs(values):
    model = small_model(**values)
    ids = torch.randint(0, VOCABULARY_SIZE, (5, 3))  # (T, B)
    logits, state = model(ids, model.initial_state(3, torch.device("cpu")))
    assert logits.shape == (5, 3, VOCABULARY_SIZE)
    assert state["h"].shape == (values.get("num_layers", 1), 3, 7)
    assert ("c" in state) == (values["cell"] == "lstm")
    assert type(model.rnn).__module__.startswith("rnnkit.nn")


def test_tied_weights_share_one_matrix():
    model = LanguageModel(VOCABULARY_SIZE, ModelConfig(embedding_size=7, hidden_size=7, tie_weights=True))
    assert model.decoder.weight is model.embedding.weight


def hand_nll(model: LanguageModel, ids: np.ndarray) -> float:
    """One token at a time, state carried: -mean log p(next | prefix), computed without the evaluator."""
    state = model.initial_state(1, torch.device("cpu"))
    total = 0.0
    with torch.no_grad():
        for position in range(len(ids) - 1):
            logits, state = model(torch.tensor([[ids[position]]]), state)
            total -= float(F.log_softmax(logits[0, 0].double(), dim=0)[ids[position + 1]])
    return total / (len(ids) - 1)


def test_evaluation_follows_the_protocol(monkeypatch):
    model = small_model(cell="lstm")
    ids = np.random.default_rng(1).integers(0, VOCABULARY_SIZE, 60)
    monkeypatch.setattr(language_model, "EVALUATION_WINDOW", 7)  # several windows: the state must be carried
    metrics = evaluate_language_model(model, ids, torch.device("cpu"))
    assert metrics["tokens"] == 59
    assert_close(metrics["nll"], hand_nll(model, ids), name="nll", rtol=1e-6, atol=0)
    assert metrics["bpc"] == metrics["nll"] / math.log(2)
    assert metrics["perplexity"] == math.exp(metrics["nll"])


def test_evaluation_does_not_reset_state_between_windows(monkeypatch):
    model = small_model(cell="gru")
    ids = np.random.default_rng(2).integers(0, VOCABULARY_SIZE, 40)
    monkeypatch.setattr(language_model, "EVALUATION_WINDOW", 5)
    windowed = evaluate_language_model(model, ids, torch.device("cpu"))["nll"]
    monkeypatch.setattr(language_model, "EVALUATION_WINDOW", 1000)
    whole = evaluate_language_model(model, ids, torch.device("cpu"))["nll"]
    assert_close(windowed, whole, name="nll", rtol=1e-6, atol=0)


def test_window_loss_is_the_mean_cross_entropy():
    model = small_model(cell="rnn")
    inputs = np.random.default_rng(3).integers(0, VOCABULARY_SIZE, (4, 2))
    targets = np.random.default_rng(4).integers(0, VOCABULARY_SIZE, (4, 2))
    window = Window(inputs, targets, starts_epoch=False)
    total, count, *_ = language_model.window_loss(
        model, window, model.initial_state(2, torch.device("cpu")), torch.device("cpu")
    )
    logits, _ = model(torch.from_numpy(inputs), model.initial_state(2, torch.device("cpu")))
    expected = F.cross_entropy(logits.reshape(-1, VOCABULARY_SIZE), torch.from_numpy(targets).reshape(-1))
    assert count == 8
    assert_close(total / count, expected, name="loss", rtol=1e-6)


def test_periodic_validation_reads_at_most_eval_tokens(tmp_path):
    config = tiny_config(write_tiny_corpus(tmp_path), "data.eval_tokens=10", "train.eval_batch_size=2")
    vocabulary = build_vocabulary("char", config.data.corpus, "")
    corpus = load_language_corpus(config.data.corpus, "", 0.9, vocabulary, 33, "test")
    task = LanguageModelTraining(config, corpus, torch.device("cpu"))
    metrics = task.validate()
    assert (metrics["tokens"], metrics["batch_size"]) == (10, 2)
    assert metrics["loss"] == metrics["nll"]
