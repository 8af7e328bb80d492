"""The sentence classifier: packed batches, pooling, the NumPy engine, metrics, training through the
run lifecycle (exact resume, best checkpoint, patience), pretrained vectors, and its commands."""

import io
import json
import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from classifier_helpers import tiny_config, tiny_files, train_tiny_classifier
from cli_helpers import assert_usage_error, rnnkit_without_torch, run_main
from helpers import checkpoint_of, stop_at
from language_model_helpers import assert_identical_tensors, latest_tensors, read_metrics
from rnnkit.data.labels import load_labels
from rnnkit.data.vocabulary import Vocabulary
from rnnkit.errors import UsageError
from rnnkit.rundir import BEST, MODEL_WEIGHTS, VOCABULARY, read_tensor_file
from rnnkit.runs import open_run, resume_run, start_run
from rnnkit.tasks.classifier.config import ModelConfig
from rnnkit.tasks.classifier.data import LABELS
from rnnkit.tasks.classifier.metrics import classification_metrics
from rnnkit.tasks.classifier.numpy import model_function as numpy_probability_function
from rnnkit.tasks.classifier.torch import SentenceClassifier, training_loss

MODELS = [
    {"cell": "lstm", "pooling": "last", "bidirectional": True, "num_layers": 2},
    {"cell": "gru", "pooling": "max", "bidirectional": True},
    {"cell": "rnn", "pooling": "mean", "bidirectional": False},
    {"cell": "lstm", "pooling": "last", "bidirectional": False, "gates": "if", "peephole": True},
    {"cell": "gru", "pooling": "mean", "bidirectional": True, "reset": "before"},
]


def small_model(values, seed=0):
    torch.manual_seed(seed)
    model = SentenceClassifier(13, 3, ModelConfig(embedding_size=5, hidden_size=4, dropout=0.0, **values))
    return model.double().eval()


def random_sentences(count, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(2, 13, rng.integers(1, 9)) for _ in range(count)]


def padded(sentences):
    ids = torch.zeros(len(sentences), max(map(len, sentences)), dtype=torch.long)
    for row, sentence in enumerate(sentences):
        ids[row, : len(sentence)] = torch.from_numpy(sentence)
    return ids, torch.tensor([len(s) for s in sentences])


@pytest.mark.parametrize("values", MODELS, ids=str)
def test_a_packed_batch_gives_each_sentence_its_own_logits(values):
    model = small_model(values)
    sentences = random_sentences(7)
    with torch.no_grad():
        together = model(*padded(sentences))
        alone = torch.cat([model(*padded([sentence])) for sentence in sentences])
    torch.testing.assert_close(together, alone, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("values", MODELS, ids=str)
def test_the_numpy_engine_gives_the_torch_probabilities(values, tmp_path):
    model = small_model(values)
    sentences = random_sentences(6, seed=1)
    with torch.no_grad():
        expected = torch.softmax(model(*padded(sentences)), dim=1).numpy()
    run, checkpoint = checkpoint_of(model, tmp_path, model.config)
    probabilities = numpy_probability_function(run, checkpoint, range(13), range(3))(sentences)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-9, atol=1e-12)


def test_last_pooling_is_forward_last_and_reverse_first():
    model = small_model({"cell": "gru", "pooling": "last", "bidirectional": True})
    sentence = random_sentences(1, seed=2)[0]
    with torch.no_grad():
        output, _ = model.rnn(model.embedding(torch.from_numpy(sentence))[:, None, :])  # (T, 1, 2H)
        H = model.config.hidden_size
        expected = model.output(torch.cat([output[-1, 0, :H], output[0, 0, H:]]))
        torch.testing.assert_close(model(*padded([sentence]))[0], expected)


def test_metrics_by_hand():
    metrics = classification_metrics(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), ["a", "b", "c"])
    assert metrics["accuracy"] == 3 / 5 and metrics["confusion"]["matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert metrics["per_class"]["b"] == {"precision": 2 / 3, "recall": 1.0, "f1": 0.8, "support": 2}
    assert metrics["per_class"]["c"]["f1"] == 0.0
    assert metrics["per_class"]["a"]["f1"] == 0.5 and metrics["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)


def test_training_learns_and_writes_its_run_files(tmp_path):
    train, dev = tiny_files(tmp_path)
    run = train_tiny_classifier(tmp_path / "run", train, dev, "train.max_steps=150", "train.eval_every=50")
    assert load_labels(run / LABELS) == ["0", "1"]
    assert Vocabulary.load(run / VOCABULARY).tokens[:2] == ["<pad>", "<unk>"]
    evaluations = [r for r in read_metrics(run) if r["event"] == "eval"]
    assert max(r["accuracy"] for r in evaluations) > 0.9
    assert "sentences_per_second" in next(r for r in read_metrics(run) if r["event"] == "train")
    opened = open_run(run)
    metrics = opened.task.evaluate(opened, opened.directory.checkpoint(), None)
    assert metrics["accuracy"] == max(r["accuracy"] for r in evaluations)  # the best checkpoint
    assert metrics["examples"] == 60 and set(metrics["per_class"]) == {"0", "1"}


def test_an_interrupted_run_resumes_bit_identical(tmp_path):
    train, dev = tiny_files(tmp_path)
    settings = (
        "train.max_steps=70",
        "train.eval_every=20",
        "model.word_dropout=0.2",
        "model.embedding_dropout=0.1",
        "model.num_layers=2",
        "model.dropout=0.3",  # two epochs, dropout everywhere
        "model.adversarial=0.5",
        "optim.ema_decay=0.9",
    )  # and the adversarial term and the average
    train_tiny_classifier(tmp_path / "straight", train, dev, *settings)
    first = start_run(tiny_config(train, dev, *settings), str(tmp_path / "resumed"), progress_stream=io.StringIO())
    stop_at(first, 33)
    assert first.run() == "interrupted"
    torch.manual_seed(99)
    second = resume_run(tmp_path / "resumed", {}, progress_stream=io.StringIO())
    assert second.run(resumed=True) == "max_steps" and second.training.epochs_done > 2
    assert_identical_tensors(latest_tensors(tmp_path / "straight"), latest_tensors(tmp_path / "resumed"))


def test_patience_stops_through_the_best_checkpoint(tmp_path):
    train, dev = tiny_files(tmp_path)
    run = train_tiny_classifier(
        tmp_path / "run",
        train,
        dev,
        "train.max_steps=100000",
        "train.eval_every=1",
        "train.patience=3",
        "optim.lr=0.5",
        "optim.optimizer=sgd",
    )
    end = [r for r in read_metrics(run) if r["event"] == "end"][-1]
    evaluations = [r for r in read_metrics(run) if r["event"] == "eval"]
    best = max(evaluations, key=lambda r: r["accuracy"])
    assert end["reason"] == "patience" and end["step"] == best["step"] + 3
    assert open_run(run).directory.checkpoint(BEST).name == f"step-{best['step']:08d}"


def write_vectors(path, words, dimension, header=False):
    rng = np.random.default_rng(0)
    lines = [f"{len(words)} {dimension}"] if header else []
    lines += [" ".join([word, *(f"{v:.4f}" for v in rng.normal(size=dimension))]) for word in words]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("header", [False, True])
def test_pretrained_vectors_are_found_frozen_and_reported(tmp_path, header):
    train, dev = tiny_files(tmp_path)
    vectors = write_vectors(tmp_path / "vectors.txt", ["good", "film", "zebra", "bad"], 8, header)
    run = train_tiny_classifier(
        tmp_path / "run",
        train,
        dev,
        "train.max_steps=5",
        f"model.embeddings_file={vectors}",
        "model.freeze_embeddings=true",
    )
    start = next(r for r in read_metrics(run) if r["event"] == "start")
    assert start["pretrained_vectors"] == {
        "found": 3,
        "vocabulary": len(Vocabulary.load(run / VOCABULARY)),
        "file_lines": 4,
    }
    vocabulary = Vocabulary.load(run / VOCABULARY)
    weights = read_tensor_file(open_run(run).directory.checkpoint("latest") / MODEL_WEIGHTS)
    expected = dict(line.split(" ", 1) for line in vectors.read_text().splitlines() if not line[0].isdigit())
    np.testing.assert_allclose(
        weights["embedding.weight"][vocabulary.ids["good"]], np.array(expected["good"].split(), dtype=np.float32)
    )


@pytest.mark.parametrize(
    "content, message",
    [
        ("good 0.1 0.2 0.3\n", "line 1: a vector of dimension 3, but model.embedding_size is 8"),
        ("good " + " ".join(["x"] * 8) + "\n", "line 1: the vector of 'good' is not all numbers"),
        ("good\n", "line 1: expected a word and its vector"),
        ("", "no vectors in the file"),
    ],
)
def test_bad_vectors_files(tmp_path, capsys, content, message):
    train, dev = tiny_files(tmp_path)
    (tmp_path / "vectors.txt").write_text(content)
    argv = [
        "train",
        "--set",
        "task=classifier",
        "--data",
        str(train),
        "--val",
        str(dev),
        "--out",
        str(tmp_path / "run"),
        "--set",
        "model.embedding_size=8",
        "--set",
        f"model.embeddings_file={tmp_path / 'vectors.txt'}",
    ]
    assert_usage_error(capsys, argv, message)
    assert not (tmp_path / "run").exists()


@pytest.fixture(scope="module")
def classifier_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("classifier")
    train, dev = tiny_files(directory)
    return (
        train_tiny_classifier(directory / "run", train, dev, "train.max_steps=150", "train.eval_every=50"),
        train,
        dev,
    )


@pytest.mark.parametrize("engine", ["torch", "numpy"])
def test_predict_prints_one_json_line_per_input(capsys, classifier_run, engine):
    run = classifier_run[0]
    assert run_main(["predict", str(run), "the film is good and fun", "a zebra was bad", "--engine", engine]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["label"] for line in lines] == ["1", "0"] and lines[1]["unknown"] == ["zebra"]
    assert all(math.isclose(sum(line["probabilities"].values()), 1.0) for line in lines)


def test_predict_reads_standard_input_and_the_engines_agree(capsys, classifier_run, monkeypatch):
    texts = [line.split(" ", 1)[1] for line in classifier_run[2].read_text().splitlines()]
    outputs = {}
    for engine in ("torch", "numpy"):
        monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(texts) + "\n"))
        assert run_main(["predict", str(classifier_run[0]), "--engine", engine]) == 0
        outputs[engine] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(outputs["torch"]) == len(texts)
    for ours, theirs in zip(outputs["numpy"], outputs["torch"]):
        assert ours["label"] == theirs["label"]
        assert ours["probabilities"] == pytest.approx(theirs["probabilities"], abs=1e-5)


def test_predict_with_the_numpy_engine_needs_no_torch(capsys, classifier_run):
    arguments = ["predict", str(classifier_run[0]), "the film is good and fun", "a zebra was bad"]
    assert run_main(arguments) == 0
    expected = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    result = rnnkit_without_torch(*arguments, "--engine", "numpy")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["label"] for line in lines] == [line["label"] for line in expected]
    assert rnnkit_without_torch(*arguments).returncode != 0  # the check has teeth: torch is really gone


def test_eval_on_a_file_prints_every_metric(capsys, classifier_run):
    assert run_main(["eval", str(classifier_run[0]), "--data", str(classifier_run[2])]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"accuracy", "macro_f1", "per_class", "confusion", "examples", "mistakes"} <= set(metrics)
    assert metrics["examples"] == 60 and len(metrics["mistakes"]) == round(60 * (1 - metrics["accuracy"]))


def test_bad_inputs_of_the_classifier_commands(capsys, classifier_run, tmp_path, trained):
    run, train, _ = classifier_run
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("2 the film\nneutral so so\n1 good\n")
    assert_usage_error(
        capsys, ["eval", str(run), "--data", str(unknown)], "labels not in the training set (0, 1)", "'2'", "'neutral'"
    )
    assert_usage_error(capsys, ["predict", str(run), "fine", "   "], "input 2: nothing to classify")
    assert_usage_error(
        capsys, ["predict", str(trained[0]), "some text"], "is a language model run", "`rnnkit predict` does not apply"
    )
    assert_usage_error(capsys, ["sample", str(run)], "is a sentence classifier run", "`rnnkit sample` does not apply")
    for option in (["--conllu", str(train)], ["--format", "tsv"]):  # the tagger's options of the same command
        assert_usage_error(
            capsys,
            ["predict", str(run), "good", *option],
            f"{option[0]} applies to sequence tagger runs",
            "is a sentence classifier run",
        )
    assert_usage_error(
        capsys, ["train", "--set", "task=classifier", "--out", str(tmp_path / "x")], "data.train: no training file"
    )
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    assert_usage_error(
        capsys,
        ["train", "--set", "task=classifier", "--data", str(empty), "--out", str(tmp_path / "x")],
        "the file is empty",
    )
    with pytest.raises(UsageError, match="labels not in the training set"):
        tiny = tmp_path / "tiny.txt"
        tiny.write_text("3 good\n")
        opened = open_run(run)
        opened.task.evaluate(opened, opened.directory.checkpoint(), str(tiny))


def test_embedding_init_scale_draws_uniform_embeddings_with_a_zero_padding_row():
    default = small_model({})
    uniform = small_model({"embedding_init_scale": 0.1})
    weight = uniform.embedding.weight
    assert torch.all(weight[0] == 0) and weight[1:].abs().max() <= 0.1
    assert weight[1:].abs().max() > 0.05 and weight[1:].std() > 0.03  # spread over the interval, not all near 0
    assert default.embedding.weight[1:].abs().max() > 0.5  # the default stays torch's N(0, 1)


def test_the_adversarial_term_is_the_loss_of_the_embeddings_moved_up_its_gradient():
    sentences, labels = random_sentences(6, seed=3), torch.tensor([0, 1, 2, 0, 1, 2])
    ids, lengths = padded(sentences)
    losses = {epsilon: training_loss(small_model({}).train(), ids, lengths, labels, epsilon) for epsilon in (0.0, 0.7)}
    model = small_model({}).train()
    embedded = model.embedding(ids.t()).detach().requires_grad_()
    clean = F.cross_entropy(model.classify(embedded, lengths), labels)
    (gradient,) = torch.autograd.grad(clean, embedded)
    moved = embedded + 0.7 * gradient / gradient.norm(dim=(0, 2))[:, None]
    assert torch.all((moved - embedded)[ids.t() == 0] == 0)  # padding stays where it was
    expected = clean + F.cross_entropy(model.classify(moved, lengths), labels)
    torch.testing.assert_close(losses[0.0], clean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(losses[0.7], expected, rtol=1e-12, atol=1e-12)
    assert losses[0.7] > 2 * clean  # moved up the gradient, the second term exceeds the first


def test_a_negative_embedding_init_scale_is_refused(capsys, tmp_path):
    train, dev = tiny_files(tmp_path)
    assert_usage_error(
        capsys,
        [
            "train",
            "--set",
            "task=classifier",
            "--data",
            str(train),
            "--val",
            str(dev),
            "--out",
            str(tmp_path / "run"),
            "--set",
            "model.embedding_init_scale=-0.1",
        ],
        "model.embedding_init_scale",
    )


def test_a_negative_adversarial_step_is_refused(capsys, tmp_path):
    train, dev = tiny_files(tmp_path)
    assert_usage_error(
        capsys,
        [
            "train",
            "--set",
            "task=classifier",
            "--data",
            str(train),
            "--val",
            str(dev),
            "--out",
            str(tmp_path / "run"),
            "--set",
            "model.adversarial=-1",
        ],
        "model.adversarial",
    )


def test_one_huge_training_line_is_truncated_to_data_max_length(tmp_path, capsys):
    """A line of 200,000 words trains like any other: a step's memory is bounded by the batch settings."""
    train, dev = tiny_files(tmp_path)
    with train.open("a") as file:
        file.write("1 " + " ".join(["good"] * 200_000) + "\n")
    run = train_tiny_classifier(tmp_path / "run", train, dev, "train.max_steps=12", "data.max_length=50")
    start = next(record for record in read_metrics(run) if record["event"] == "start")
    assert start["long_examples"] == {"count": 1, "max_length": 50, "action": "truncated to their first words"}
    assert "1 training or validation sentences are longer than data.max_length = 50 words" in capsys.readouterr().err


def test_predict_takes_options_between_its_positionals(capsys, classifier_run):
    run = str(classifier_run[0])
    assert (
        run_main(["predict", run, "--checkpoint", "latest", "the film is good", "--engine", "numpy", "a bad one"]) == 0
    )
    assert [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()] == [
        "the film is good",
        "a bad one",
    ]


def test_predict_reads_standard_input_as_utf8_without_its_byte_order_mark(capsys, classifier_run, monkeypatch):
    run = str(classifier_run[0])
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO("\ufeffthe film is good\n".encode())))
    assert run_main(["predict", run]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "the film is good"
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(b"caf\xe9 good\n")))
    assert_usage_error(capsys, ["predict", run], "standard input, line 1: not valid UTF-8")


def test_data_that_trains_to_a_meaningless_score_is_refused(tmp_path, capsys):
    train, dev = tiny_files(tmp_path)
    base = ["train", "--set", "task=classifier", "--val", str(dev), "--out", str(tmp_path / "x")]
    one_label = tmp_path / "one-label.txt"
    one_label.write_text("".join(f"1 {line.split(' ', 1)[1]}" for line in train.read_text().splitlines(True)))
    assert_usage_error(capsys, [*base, "--data", str(one_label)], "every training example has the label '1'")
    assert_usage_error(
        capsys, [*base, "--data", str(train), "--set", "data.min_count=100000"], "leave no word in the vocabulary"
    )
    vectors = tmp_path / "vectors.txt"
    vectors.write_text("zzzz 0.1 0.2\nqqqq 0.3 0.4\n")
    assert_usage_error(
        capsys,
        [*base, "--data", str(train), "--set", f"model.embeddings_file={vectors}", "--set", "model.embedding_size=2"],
        "none of its 2 words is in the vocabulary",
    )
    assert not (tmp_path / "x").exists()


def test_swapped_columns_are_named_in_one_short_line(tmp_path, capsys):
    train, dev = tiny_files(tmp_path)
    swapped = tmp_path / "swapped.tsv"
    swapped.write_text(
        "".join(f"{line.split(' ', 1)[0]}\t{line.split(' ', 1)[1]}" for line in train.read_text().splitlines(True))
    )
    argv = [
        "train",
        "--set",
        "task=classifier",
        "--set",
        "data.format=tsv",
        "--data",
        str(swapped),
        "--out",
        str(tmp_path / "x"),
    ]
    line = assert_usage_error(capsys, argv, "the columns look swapped")
    assert len(line) < 400
    many = tmp_path / "many-labels.txt"  # a label set of hundreds, listed in a message: the first few and a count
    many.write_text("".join(f"L{i} a good film\n" for i in range(300)))
    run = train_tiny_classifier(tmp_path / "run", train, dev, "train.max_steps=1")
    line = assert_usage_error(capsys, ["eval", str(run), "--data", str(many)], "labels not in the training set", "more")
    assert len(line) < 400
