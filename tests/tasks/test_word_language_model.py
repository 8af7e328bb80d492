"""Word-level language models: AWD-LSTM's pieces (per-layer sizes, AR/TAR, NT-ASGD, variable windows),
the adaptive softmax in both engines, score against eval, and their bad inputs."""

import io
import json
import math
import random

import numpy as np
import pytest
import torch

from cli_helpers import assert_usage_error, run_main
from helpers import checkpoint_of, stop_at
from language_model_helpers import assert_identical_tensors, latest_tensors, read_metrics
from rnnkit.config import apply_assignments
from rnnkit.runs import resume_run, start_run
from rnnkit.tasks.language_model.config import LanguageModelConfig, ModelConfig
from rnnkit.tasks.language_model.numpy import model_function as numpy_step_function
from rnnkit.tasks.language_model.torch import LanguageModel, activation_regularisation
from rnnkit.tasks.language_model.torch import step_function as torch_step_function

WORDS = "the a cat dog sat ran on under mat rug and then quickly slowly".split()
TINY = [
    "data.tokenizer=word",
    "model.embedding_size=8",
    "model.hidden_size=8",
    "train.batch_size=4",
    "data.window=6",
    "train.log_every=5",
    "train.eval_every=0",
    "train.checkpoint_every=3600",
    "train.eval_batch_size=2",
    "train.threads=1",
    "optim.lr=0.01",
]


def write_corpus(directory, name, lines, seed):
    rng = random.Random(seed)
    path = directory / name
    path.write_text("".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 9))) + "\n" for _ in range(lines)))
    return path


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path, "train.txt", 120, 0), write_corpus(tmp_path, "valid.txt", 20, 1)


def config(files, *assignments):
    return apply_assignments(
        LanguageModelConfig(), [f"data.corpus={files[0]}", f"data.validation={files[1]}", *TINY, *assignments]
    )


def train(files, path, *assignments):
    start_run(config(files, *assignments), str(path), progress_stream=io.StringIO()).run()
    return path


AWD = [
    "model.num_layers=3",
    "model.hidden_sizes=[12, 10, 8]",
    "model.locked_dropout=true",
    "model.dropout=0.3",
    "model.hidden_dropout=0.2",
    "model.embedding_dropout=0.1",
    "model.token_dropout=0.1",
    "model.weight_drop=0.3",
    "model.tie_weights=true",
    "model.ar=2.0",
    "model.tar=1.0",
]


def test_an_awd_model_trains_with_every_regulariser(corpus, tmp_path):
    run = train(corpus, tmp_path / "run", "train.max_steps=30", "train.eval_every=10", *AWD)
    names = set(json.loads((run / "config.json").read_text())["model"])
    assert {"hidden_sizes", "weight_drop", "ar", "tar"} <= names
    evaluations = [r["nll"] for r in read_metrics(run) if r["event"] == "eval"]
    assert evaluations[-1] < math.log(len(WORDS) + 2)  # better than uniform over the vocabulary


def test_ar_and_tar_are_the_formulas():
    model = ModelConfig(ar=2.0, tar=3.0)
    output, raw = torch.randn(5, 2, 4), torch.randn(5, 2, 4)
    expected = 2.0 * (output**2).mean() + 3.0 * ((raw[1:] - raw[:-1]) ** 2).mean()
    torch.testing.assert_close(activation_regularisation(model, output, raw), expected)
    assert activation_regularisation(ModelConfig(), output, raw) == 0.0


@pytest.mark.parametrize(
    "per_layer, tied, div_value", [(False, False, 4.0), (True, False, 4.0), (True, True, 4.0), (True, True, 1.5)]
)
def test_adaptive_softmax_probabilities_sum_to_one_and_the_engines_agree(per_layer, tied, div_value, tmp_path):
    values = {"hidden_sizes": (17, 16)} if per_layer else {}
    values |= {"tie_weights": True} if tied else {}
    values |= {
        "div_value": div_value
    }  # projections of 16 // 4 = 4 and 16 // 16 = 1, or 16 // 1.5 = 10 and 16 // 2.25 = 7
    model_config = ModelConfig(
        embedding_size=16, hidden_size=16, num_layers=2, softmax="adaptive", cutoffs=(4, 9), **values
    )
    torch.manual_seed(0)
    model = LanguageModel(15, model_config).eval()
    torch_step = torch_step_function(model, torch.device("cpu"))
    numpy_step = numpy_step_function(*checkpoint_of(model, tmp_path, model_config), range(15))
    torch_scores, state = torch_step([1, 5, 11], None)
    numpy_scores, numpy_state = numpy_step([1, 5, 11], None)
    assert math.isclose(np.exp(torch_scores).sum(), 1.0, rel_tol=1e-6)
    np.testing.assert_allclose(numpy_scores, torch_scores, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(numpy_step([3], numpy_state)[0], torch_step([3], state)[0], rtol=1e-5, atol=1e-5)


def test_a_tied_adaptive_softmax_embeds_the_input_with_its_own_weights(corpus, tmp_path):
    model_config = ModelConfig(
        embedding_size=32, hidden_size=32, softmax="adaptive", cutoffs=(4, 9), tie_weights=True, token_dropout=0.5
    )
    torch.manual_seed(0)
    model = LanguageModel(15, model_config).eval()
    assert not hasattr(model, "embedding")  # no matrix of its own
    head, (projection, output) = model.adaptive.head.weight, model.adaptive.tail[1]
    vectors = model.embed(torch.tensor([[2], [11]]))  # a shortlist word and a word of the second cluster
    torch.testing.assert_close(vectors[0, 0], head[2])
    torch.testing.assert_close(vectors[1, 0], output.weight[11 - 9] @ projection.weight)
    vectors.sum().backward()  # the input side's gradient reaches the softmax's weights
    assert (
        head.grad[2].abs().sum() > 0
        and output.weight.grad[2].abs().sum() > 0
        and projection.weight.grad.abs().sum() > 0
    )
    model.train()
    dropped = model.embed(torch.tensor([[11] * 3, [11] * 3]))  # one draw per word type, scaled by 1 / (1 - p)
    assert torch.all(dropped == 0) or torch.allclose(
        dropped, 2 * (output.weight[2] @ projection.weight).expand_as(dropped)
    )
    run = train(
        corpus,
        tmp_path / "run",
        "train.max_steps=60",
        "train.eval_every=20",
        "model.softmax=adaptive",
        "model.cutoffs=[4]",
        "model.tie_weights=true",
        "model.token_dropout=0.1",
        "model.embedding_size=16",
        "model.hidden_size=16",
        "optim.lr=0.03",
    )
    evaluations = [r["nll"] for r in read_metrics(run) if r["event"] == "eval"]
    assert evaluations[-1] < math.log(len(WORDS) + 2)


@pytest.mark.parametrize(
    "settings",
    [
        ["data.variable_window=true", "data.window=8", "train.max_steps=40"],
        [
            "optim.optimizer=nt-asgd",
            "optim.lr=2.0",
            "optim.nonmono=1",
            "train.eval_every=3",
            "train.max_steps=40",
            *AWD,
        ],
    ],
    ids=["variable-windows", "nt-asgd-awd"],
)
def test_an_interrupted_run_resumes_bit_identical(corpus, tmp_path, settings):
    straight = train(corpus, tmp_path / "straight", *settings)
    first = start_run(config(corpus, *settings), str(tmp_path / "resumed"), progress_stream=io.StringIO())
    stop_at(first, 17)
    assert first.run() == "interrupted"
    torch.manual_seed(4)
    assert resume_run(tmp_path / "resumed", {}, progress_stream=io.StringIO()).run(resumed=True) == "max_steps"
    assert_identical_tensors(latest_tensors(straight), latest_tensors(tmp_path / "resumed"))
    if "optim.optimizer=nt-asgd" in settings:
        events = [r["event"] for r in read_metrics(straight)]
        assert "averaging" in events  # the switch happened, and was resumed across
        trainer_tensors = latest_tensors(straight)
        assert any(name.startswith("trainer/raw.") for name in trainer_tensors)
        assert any(name.endswith(".ax") for name in trainer_tensors)


def test_nt_asgd_switches_when_validation_stops_improving_and_evaluates_the_average():
    from rnnkit.config import OptimConfig
    from rnnkit.train.optimizers import NTASGD

    parameter = torch.nn.Parameter(torch.tensor([1.0]))
    optimizer = NTASGD([parameter], OptimConfig(optimizer="nt-asgd", lr=0.1, nonmono=2))
    assert [optimizer.observe_validation(loss) for loss in (5.0, 4.0, 3.0, 2.9, 2.95)] == [False] * 5
    assert optimizer.observe_validation(6.0)  # worse than the best of the evaluations before the last two
    values = []
    for target in (3.0, 5.0, -1.0, 2.0):
        optimizer.zero_grad()
        ((parameter - target) ** 2).sum().backward()
        optimizer.step()
        values.append(float(parameter.detach()))
    with optimizer.averaged():  # torch's ASGD (t0 = 0) averages the weights from its second step on
        assert math.isclose(float(parameter.detach()), sum(values[1:]) / 3, rel_tol=1e-6)
    assert float(parameter.detach()) == values[-1]


def test_score_with_carry_equals_eval_on_the_same_text(corpus, tmp_path, capsys):
    run = train(corpus, tmp_path / "run", "train.max_steps=20")
    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat\nthe dog ran\nquickly the rug\n")
    assert run_main(["score", str(run), str(text), "--carry"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["tokens"] for line in lines] == [7, 4, 4]
    evaluated = tmp_path / "evaluated.txt"
    evaluated.write_text("\n" + text.read_text())  # eval predicts every token after the first: start with a line end
    assert run_main(["eval", str(run), "--data", str(evaluated)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["tokens"] == 15
    assert math.isclose(-sum(line["logprob"] for line in lines), metrics["nll"] * metrics["tokens"], rel_tol=1e-5)
    assert run_main(["score", str(run), str(text)]) == 0  # fresh state per line: a different total
    fresh = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert fresh[0]["logprob"] == pytest.approx(lines[0]["logprob"], rel=1e-6)
    assert fresh[1]["logprob"] != pytest.approx(lines[1]["logprob"], rel=1e-6)


def test_score_reports_unknown_words_and_refuses_empty_input(corpus, tmp_path, capsys, monkeypatch):
    run = train(corpus, tmp_path / "run", "train.max_steps=3")
    monkeypatch.setattr("sys.stdin", io.StringIO("the zebra sat\n"))
    assert run_main(["score", str(run)]) == 0
    assert json.loads(capsys.readouterr().out)["unknown"] == ["zebra"]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n  \n"))
    assert_usage_error(capsys, ["score", str(run), "-"], "standard input: nothing to score")


@pytest.mark.parametrize(
    "settings, message",
    [
        (["model.softmax=adaptive", "model.cutoffs=[8, 4]"], "model.cutoffs: the adaptive softmax needs increasing"),
        (
            ["model.softmax=adaptive", "model.cutoffs=[4, 400]", "model.div_value=2"],
            "model.cutoffs: the last cutoff (400) must be below",
        ),
        (["model.num_layers=2", "model.hidden_sizes=[8]"], "model.hidden_sizes: expected one size per layer"),
        (
            ["model.softmax=adaptive", "model.cutoffs=[4, 8]", "model.div_value=0.5"],
            "model.div_value: expected a number >= 1",
        ),
        (
            ["model.softmax=adaptive", "model.cutoffs=[4, 8]", "model.div_value=3"],
            "model.div_value: the last cluster's projection would be 8 // 3^2 = 0 wide",
        ),
        (
            ["model.softmax=adaptive", "model.cutoffs=[4]", "model.tie_weights=true", "model.embedding_size=6"],
            "model.tie_weights: needs the last layer's size == embedding_size",
        ),
        (["data.min_count=1000"], "the vocabulary would hold only <unk>"),
    ],
)
def test_bad_word_model_settings(corpus, tmp_path, capsys, settings, message):
    argv = [
        "train",
        "--data",
        str(corpus[0]),
        "--val",
        str(corpus[1]),
        "--out",
        str(tmp_path / "run"),
        *[argument for setting in TINY + settings for argument in ("--set", setting)],
    ]
    assert_usage_error(capsys, argv, message)
    assert not (tmp_path / "run").exists()


def test_an_empty_word_corpus(tmp_path, capsys):
    empty, valid = tmp_path / "empty.txt", write_corpus(tmp_path, "valid.txt", 5, 1)
    empty.write_text("")
    argv = [
        "train",
        "--data",
        str(empty),
        "--val",
        str(valid),
        "--out",
        str(tmp_path / "run"),
        *[argument for setting in TINY for argument in ("--set", setting)],
    ]
    assert_usage_error(capsys, argv, "the file is empty; at least 25 words are needed")
