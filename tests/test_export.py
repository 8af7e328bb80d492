"""`rnnkit export --format onnx`: the language model's ONNX file, checked with onnxruntime against torch
at sizes it was not traced with; the largest difference is recorded here."""

import json
import sys

import numpy as np
import pytest
import torch

from cli_helpers import assert_usage_error, run_main
from language_model_helpers import train_tiny_run, write_tiny_corpus

onnx = pytest.importorskip("onnx")
onnxruntime = pytest.importorskip("onnxruntime")

LANGUAGE_MODELS = {
    "lstm": ([], "LSTM"),
    "gru": (["model.cell=gru"], "GRU"),
    "rnn tanh": (["model.cell=rnn"], "RNN"),
    "rnn relu": (["model.cell=rnn", "model.nonlinearity=relu"], "RNN"),
    "two layers of lstm": (["model.num_layers=2"], "LSTM"),
    "forget bias (a standard lstm's initialisation)": (["model.forget_bias=1.0"], "LSTM"),
    "per-layer sizes, tied, weight drop": (
        ["model.hidden_sizes=[16, 8]", "model.num_layers=2", "model.tie_weights=true", "model.weight_drop=0.3"],
        "LSTM",
    ),
    "adaptive softmax": (["model.softmax=adaptive", "model.cutoffs=[10, 30]"], "LSTM"),
}


def exported(run, path, capsys, name: str) -> dict:
    """`rnnkit export RUN --out PATH`'s JSON line; its largest difference is recorded in the test's output."""
    assert run_main(["export", str(run), "--out", str(path)]) == 0
    record = json.loads(capsys.readouterr().out)
    print(f"{name}: largest difference onnxruntime - reference {record['largest_difference']:.3g}", file=sys.stderr)
    return record


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_tiny_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.mark.parametrize("name", LANGUAGE_MODELS)
def test_a_language_model_exports_to_onnx_and_runs_as_torch_does(name, corpus, tmp_path, capsys):
    settings, operator = LANGUAGE_MODELS[name]
    run = train_tiny_run(tmp_path / "run", corpus, "train.max_steps=3", *settings)
    path = tmp_path / "model.onnx"
    record = exported(run, path, capsys, name)
    assert record["largest_difference"] < 1e-4 and operator in record["operators"]
    model = onnx.load(str(path))
    if operator == "GRU":  # torch's GRU applies the reset gate after the recurrent product
        (node,) = [node for node in model.graph.node if node.op_type == "GRU"]
        assert {a.name: a.i for a in node.attribute}["linear_before_reset"] == 1
    # an independent check: the file at a new size against the run's own model, through rnnkit's reader
    from rnnkit.runs import open_run
    from rnnkit.tasks.language_model.torch import load_run_model

    torch_model, _, vocabulary = load_run_model(open_run(run))
    state = torch_model.initial_state(7, torch.device("cpu"))
    ids = torch.randint(0, len(vocabulary), (23, 7), generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        scores, final = torch_model(ids, state)
    expected = scores if "adaptive" in name else torch.log_softmax(scores, dim=-1)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {"tokens": ids.numpy()} | {f"{key}_in": value.numpy() for key, value in state.items()}
    got = session.run(None, {name: feed[name] for name in record["inputs"]})
    assert np.abs(got[0] - expected.numpy()).max() < 1e-4
    assert np.abs(got[1] - final[next(iter(final))].numpy()).max() < 1e-4


OPERATOR_VARIANTS = {
    "peephole": ["model.peephole=true"],
    "coupled": ["model.coupled=true"],
    "peephole coupled": ["model.peephole=true", "model.coupled=true"],
    "two layers of peephole": ["model.peephole=true", "model.num_layers=2"],
    "per-layer sizes, peephole": ["model.peephole=true", "model.hidden_sizes=[16, 8]", "model.num_layers=2"],
}


@pytest.mark.parametrize("name", OPERATOR_VARIANTS)
def test_peephole_and_coupled_lstms_export_to_onnx_s_lstm_operator(name, corpus, tmp_path, capsys):
    """ONNX's LSTM operator with its peephole input P and input_forget computes these exactly: the
    file runs at any length, and matches the run's own model (rnnkit's equations)."""
    settings = OPERATOR_VARIANTS[name]
    run = train_tiny_run(tmp_path / "run", corpus, "train.max_steps=3", *settings)
    path = tmp_path / "m.onnx"
    record = exported(run, path, capsys, name)
    assert record["largest_difference"] < 1e-4 and "LSTM" in record["operators"]
    for node in (node for node in onnx.load(str(path)).graph.node if node.op_type == "LSTM"):
        attributes = {attribute.name: attribute.i for attribute in node.attribute}
        assert attributes.get("input_forget", 0) == ("model.coupled=true" in settings)
        assert (len(node.input) == 8 and node.input[7] != "") == ("model.peephole=true" in settings)


VARIANTS = {
    "gateless": ["model.gates="],
    "gates i": ["model.gates=i"],
    "gates f, peephole": ["model.gates=f", "model.peephole=true"],
    "gates o": ["model.gates=o"],
    "gates if": ["model.gates=if"],
    "gates io": ["model.gates=io"],
    "gates fo": ["model.gates=fo"],
    "gru reset before": ["model.cell=gru", "model.reset=before"],
    "gru without reset gate": ["model.cell=gru", "model.reset_gate=false"],
    "gates fo, peephole": ["model.gates=fo", "model.peephole=true"],
    "gates io, peephole": ["model.gates=io", "model.peephole=true"],
    "gru reset before, without reset gate": ["model.cell=gru", "model.reset=before", "model.reset_gate=false"],
    "two layers of gates if": ["model.gates=if", "model.num_layers=2"],
}


@pytest.mark.parametrize("name", VARIANTS)
def test_a_variant_exports_as_a_loop_over_time(name, corpus, tmp_path, capsys):
    run = train_tiny_run(tmp_path / "run", corpus, "train.max_steps=2", *VARIANTS[name])
    path = tmp_path / "m.onnx"
    record = exported(run, path, capsys, name)
    assert record["largest_difference"] < 1e-4 and record["checked_sizes"] == [[1, 1], [3, 5], [2, 17], [5, 40]]
    assert "Loop" in record["operators"]
    assert not {"LSTM", "GRU", "RNN"} & set(record["operators"])  # the equations, not an operator that differs
    model = onnx.load(str(path))
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "length"  # any length


def test_without_onnx_one_line_names_the_package(corpus, tmp_path, capsys, monkeypatch):
    run = train_tiny_run(tmp_path / "run", corpus, "train.max_steps=2")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    assert_usage_error(capsys, ["export", str(run), "--out", str(tmp_path / "m.onnx")], "onnxruntime package")
    assert not (tmp_path / "m.onnx").exists()


CLASSIFIERS = {
    "lstm, max pooling": ["model.pooling=max"],
    "lstm, last state": ["model.pooling=last"],
    "bidirectional lstm, last state": ["model.bidirectional=true", "model.pooling=last"],
    "bidirectional gru, mean pooling": ["model.cell=gru", "model.bidirectional=true", "model.pooling=mean"],
    "two layers of rnn": ["model.cell=rnn", "model.num_layers=2", "model.pooling=last"],
    "bidirectional peephole lstm, last state": [
        "model.peephole=true",
        "model.bidirectional=true",
        "model.pooling=last",
    ],
    "coupled lstm, mean pooling": ["model.coupled=true", "model.pooling=mean"],
    "bidirectional lstm gates=if, last state (a loop)": [
        "model.gates=if",
        "model.bidirectional=true",
        "model.pooling=last",
    ],
    "two layers of gru, reset before, max pooling (a loop)": [
        "model.cell=gru",
        "model.reset=before",
        "model.num_layers=2",
        "model.pooling=max",
    ],
}


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_a_classifier_exports_its_logits(name, tmp_path, capsys):
    from classifier_helpers import tiny_files, train_tiny_classifier

    train, dev = tiny_files(tmp_path)
    run = train_tiny_classifier(tmp_path / "run", train, dev, "train.max_steps=3", *CLASSIFIERS[name])
    path = tmp_path / "classifier.onnx"
    record = exported(run, path, capsys, name)
    assert record["largest_difference"] < 1e-4 and record["inputs"] == ["tokens", "lengths"]
    assert ("Loop" in record["operators"]) == ("(a loop)" in name)
    # sentences in any order of length, against the run's own predictions
    from rnnkit.runs import open_run
    from rnnkit.tasks.classifier.data import load_run_files
    from rnnkit.tasks.classifier.torch import load_checkpoint_model

    opened = open_run(run)
    model, _ = load_checkpoint_model(opened, opened.directory.checkpoint(None), *load_run_files(run))
    lengths = torch.tensor([3, 9, 1, 9, 5])
    ids = torch.randint(2, 20, (5, 9), generator=torch.Generator().manual_seed(3))
    ids[torch.arange(9)[None, :] >= lengths[:, None]] = 0
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {"tokens": ids.numpy(), "lengths": lengths.numpy()})
    with torch.no_grad():
        assert np.abs(logits - model(ids, lengths).numpy()).max() < 1e-4


TAGGERS = {
    "bilstm, crf, characters": ["model.crf=true"],
    "softmax output, residual layers": ["model.crf=false", "model.num_layers=2", "model.residual=true"],
    "gru, no character encoder": ["model.cell=gru", "model.char_encoder=none"],
    "peephole coupled bilstm, crf": ["model.peephole=true", "model.coupled=true", "model.crf=true"],
    "bilstm gates=fo, crf, residual (a loop)": [
        "model.gates=fo",
        "model.crf=true",
        "model.num_layers=2",
        "model.residual=true",
    ],
}


@pytest.mark.parametrize("name", TAGGERS)
def test_a_tagger_exports_its_scores_and_crf(name, tmp_path, capsys):
    from rnnkit.runs import open_run
    from rnnkit.tasks.tagger.data import TaggerData, encode, load_run_files
    from rnnkit.tasks.tagger.torch import Tagger, to_batch
    from rnnkit.tasks.torch_layers import load_model
    from tagger_helpers import tiny_files, train_tiny_tagger

    train, dev = tiny_files(tmp_path)
    run = train_tiny_tagger(tmp_path / "run", train, dev, "train.max_steps=3", *TAGGERS[name])
    path = tmp_path / "tagger.onnx"
    record = exported(run, path, capsys, name)
    assert record["largest_difference"] < 1e-4 and ("Loop" in record["operators"]) == ("(a loop)" in name)
    # real sentences of dev, as the tagger's own batches carry them, against its emissions
    opened = open_run(run)
    words, characters, tags = load_run_files(run)
    model, _ = load_model(
        opened,
        opened.directory.checkpoint(None),
        lambda: Tagger(len(words), len(characters), len(tags), opened.config.model),
    )
    from rnnkit.data.tagged import read_tagged

    lowercase = opened.config.data.lowercase
    encoded = encode(read_tagged(dev), TaggerData(words, characters, tags, None, None), lowercase)
    indices = np.array([3, 0, 7, 1])
    word_ids, spellings, spelling_lengths, lengths, _ = to_batch(encoded, indices, torch.device("cpu"))
    batch, length = word_ids.shape
    grid = np.zeros((batch, length, spellings.shape[1]), dtype=np.int64)
    grid_lengths = np.zeros((batch, length), dtype=np.int64)
    real = (word_ids != 0).numpy()
    grid[real], grid_lengths[real] = spellings.numpy(), spelling_lengths.numpy()
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {
        "words": word_ids.numpy(),
        "characters": grid,
        "character_lengths": grid_lengths,
        "lengths": lengths.numpy(),
    }
    got = session.run(None, {name: feed[name] for name in record["inputs"]})
    with torch.no_grad():
        emissions = model.emissions(word_ids, spellings, spelling_lengths, lengths).transpose(0, 1).numpy()
    assert np.abs(got[0][real] - emissions[real]).max() < 1e-4
    if model.crf is not None:
        assert np.array_equal(got[1], model.crf.transitions.detach().numpy()) and len(got) == 4


def test_export_of_nothing_to_export_is_one_line(corpus, tmp_path, capsys, monkeypatch):
    assert_usage_error(capsys, ["export", "no-such-model", "--out", str(tmp_path / "m.onnx")], "no-such-model")
    run = train_tiny_run(tmp_path / "run", corpus, "train.max_steps=2")
    dead_end = tmp_path / "dead-end"  # a run directory whose checkpoints are gone
    dead_end.mkdir()
    (dead_end / "config.json").write_bytes((run / "config.json").read_bytes())
    (dead_end / "vocabulary.json").write_bytes((run / "vocabulary.json").read_bytes())
    assert_usage_error(capsys, ["export", str(dead_end), "--out", str(tmp_path / "m.onnx")], "checkpoint")
    monkeypatch.setitem(sys.modules, "onnx", None)
    assert_usage_error(capsys, ["export", str(run), "--out", str(tmp_path / "m.onnx")], "the onnx package")
    assert_usage_error(capsys, ["export", str(run), "--format", "pt"], "invalid choice: 'pt'")
    assert not (tmp_path / "m.onnx").exists()
