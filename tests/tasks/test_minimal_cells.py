"""model.cell = "mingru" | "minlstm" in every task: trained through the normal path, read back by both
engines, traced, and refused where they do not apply (variant keys, weight_drop, ONNX export)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from classifier_helpers import tiny_files as classifier_files
from classifier_helpers import train_tiny_classifier
from cli_helpers import assert_usage_error
from language_model_helpers import train_tiny_run, write_tiny_corpus
from rnnkit.errors import UsageError
from rnnkit.metrics_log import read_metrics
from rnnkit.nn import MinGRU, MinLSTM, trace
from rnnkit.runs import open_run
from tagger_helpers import tiny_files as tagger_files
from tagger_helpers import train_tiny_tagger
from translation_helpers import tiny_files as translation_files
from translation_helpers import train_tiny_translator

KINDS = ("mingru", "minlstm")


@pytest.fixture(scope="module")
def lm_runs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("minimal-lm")
    corpus = write_tiny_corpus(directory)
    return {
        kind: train_tiny_run(directory / kind, corpus, f"model.cell={kind}", "train.max_steps=30") for kind in KINDS
    }


@pytest.mark.parametrize("kind", KINDS)
def test_a_language_model_trains_and_both_engines_agree(lm_runs, kind):
    from rnnkit.tasks.language_model.data import load_vocabulary
    from rnnkit.tasks.language_model.numpy import model_function as numpy_steps
    from rnnkit.tasks.language_model.torch import load_run_model
    from rnnkit.tasks.language_model.torch import model_function as torch_steps

    run = open_run(lm_runs[kind])
    losses = [r["loss"] for r in read_metrics(run.path / "metrics.jsonl") if r["event"] == "train"]
    assert losses[-1] < losses[0]
    model, _, vocabulary = load_run_model(run)
    layer = model.rnn
    assert isinstance(layer, MinGRU if kind == "mingru" else MinLSTM)
    ids = list(vocabulary.encode(list("First Citizen:\nBefore we proceed")))
    checkpoint = run.directory.checkpoint()
    torch_logits, torch_state = torch_steps(run, checkpoint, load_vocabulary(run.path))(ids, None)
    numpy_logits, numpy_state = numpy_steps(run, checkpoint, load_vocabulary(run.path))(ids, None)
    np.testing.assert_allclose(torch_logits, numpy_logits, atol=1e-4)
    with trace(model) as recorded:
        model(torch.tensor(ids)[:, None], model.initial_state(1, torch.device("cpu")))
    names = {"mingru": {"z", "g", "h"}, "minlstm": {"f", "i", "g", "h"}}[kind]
    assert set(recorded["rnn.l0"]) == names and recorded["rnn.l0"]["h"].shape == (len(ids), 1, 16)


@pytest.mark.parametrize("kind", KINDS)
def test_classifier_tagger_and_translation_train_on_the_scan_cells(tmp_path, kind):
    classifier = train_tiny_classifier(
        tmp_path / "classifier", *classifier_files(tmp_path), f"model.cell={kind}", "train.max_steps=5"
    )
    tagger = train_tiny_tagger(tmp_path / "tagger", *tagger_files(tmp_path), f"model.cell={kind}", "train.max_steps=5")
    translator = train_tiny_translator(
        tmp_path / "translation", *translation_files(tmp_path, 200), f"model.cell={kind}", "train.max_steps=3"
    )
    for path in (classifier, tagger, translator):
        run = open_run(path)
        assert run.config.model.cell == kind
        metrics = run.task.evaluate(run, run.directory.checkpoint(), None)
        assert metrics, path


def test_the_numpy_engine_predicts_like_torch_on_a_scan_cell_classifier(tmp_path, capsys):
    from rnnkit.cli import main

    run = train_tiny_classifier(
        tmp_path / "run",
        *classifier_files(tmp_path),
        "model.cell=minlstm",
        "model.bidirectional=true",
        "train.max_steps=10",
    )
    outputs = {}
    for engine in ("torch", "numpy"):
        assert main(["predict", str(run), "--engine", engine, "the film was good", "a very bad plot"]) == 0
        outputs[engine] = capsys.readouterr().out
    import json

    for ours, theirs in zip(*(text.splitlines() for text in outputs.values())):
        a, b = json.loads(ours), json.loads(theirs)
        assert a["label"] == b["label"]
        for label in a["probabilities"]:
            assert abs(a["probabilities"][label] - b["probabilities"][label]) < 1e-5


def test_what_does_not_apply_is_one_line(tmp_path, capsys, lm_runs):
    from cli_helpers import tiny_flags

    corpus = write_tiny_corpus(tmp_path)
    base = ["train", "--data", str(corpus), "--max-steps", "1", *tiny_flags()]
    assert_usage_error(
        capsys,
        [*base, "--out", str(tmp_path / "a"), "--set", "model.cell=mingru", "--set", "model.peephole=true"],
        "model.peephole",
        "mingru has no variants",
    )
    assert_usage_error(
        capsys,
        [*base, "--out", str(tmp_path / "b"), "--set", "model.cell=minlstm", "--set", "model.weight_drop=0.5"],
        "model.weight_drop",
        "does not have",
    )
    assert_usage_error(capsys, [*base, "--out", str(tmp_path / "c"), "--set", "model.cell=min"], "model.cell")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    assert_usage_error(
        capsys, ["export", str(lm_runs["mingru"]), "--out", str(tmp_path / "m.onnx")], "minGRU and minLSTM have no ONNX"
    )
    with pytest.raises(UsageError):
        from rnnkit.tasks.torch_layers import build_recurrent_layer

        config = open_run(lm_runs["mingru"]).config
        build_recurrent_layer(config.model, 8, weight_drop=0.5)
