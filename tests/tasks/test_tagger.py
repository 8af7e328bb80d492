"""The tagger: the CoNLL-U and tsv readers, packed batches, the NumPy engine, training through the
run lifecycle, eval metrics, and predict's three inputs (CoNLL-U round trip byte for byte)."""

import dataclasses
import io
import json

import numpy as np
import pytest
import torch

from cli_helpers import assert_usage_error, rnnkit_without_torch, run_main
from helpers import checkpoint_of, stop_at
from language_model_helpers import assert_identical_tensors, latest_tensors, read_metrics
from rnnkit.data.tagged import read_tagged
from rnnkit.errors import UsageError
from rnnkit.runs import resume_run, start_run
from rnnkit.tasks.tagger.metrics import tagging_metrics
from rnnkit.tasks.tagger.numpy import model_function as numpy_tagging_function
from rnnkit.tasks.tagger.torch import Tagger, tag_sentences, to_batch
from tagger_helpers import tiny_config, tiny_files, train_tiny_tagger, write_conllu


def test_conllu_reader_skips_ranges_and_empty_nodes(tmp_path):
    path = write_conllu(tmp_path, "x.conllu", 3, 0, with_extras=True)
    sentences = read_tagged(path)
    assert all("ghost" not in sentence.tokens for sentence in sentences)
    assert [len(s.tokens) for s in sentences] == [
        sum(1 for line in s.lines if line.split("\t")[0].isdigit()) for s in sentences
    ]
    assert sentences[0].tags[0] == "DET" and read_tagged(path, column="xpos")[0].tags[0] == "XDET"
    assert sentences[1].first_line == sentences[0].first_line + len(sentences[0].lines) + 1


def test_tsv_reader(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text("The\tDET\ndog\tNOUN\n\n\nRuns\tVERB\n")
    sentences = read_tagged(path)
    assert [(s.tokens, s.tags) for s in sentences] == [(["The", "dog"], ["DET", "NOUN"]), (["Runs"], ["VERB"])]


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("a.conllu", "1\tThe\tthe\tDET\nx\tdog\tdog\tNOUN\n\n", "lines 1-2: not CoNLL-U"),
        ("b.conllu", "# text = nothing\n1-2\tdidn't\t_\t_\n\n", "line 1: a sentence with no tokens"),
        ("c.conllu", "1\tThe\tthe\t_\n2\tdog\tdog\t_\n\n", "no tags: the upos column is missing or '_' everywhere"),
        ("d.conllu", "1\tThe\tthe\n\n", "no tags: the upos column is missing"),
        ("e.tsv", "The\tDET\ndog NOUN\n", "line 2: expected a token, a tab and a tag"),
        ("f.conllu", "1\tThe\tthe\tDET\n2\tdog\tdog\t_\n\n", "token 2 ('dog') has no tag"),
    ],
)
def test_bad_tagged_files(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_tagged(tmp_path / name)


MODELS = [
    {},
    {"crf": True},
    {"residual": True, "num_layers": 3},
    {"char_encoder": "none", "cell": "gru"},
    {"bidirectional": False, "cell": "lstm", "gates": "if", "peephole": True, "residual": True, "num_layers": 2},
]


def built(tmp_path, values):
    from rnnkit.tasks.tagger.data import prepare

    train, dev = tiny_files(tmp_path)
    config, data = prepare(tiny_config(train, dev), None)
    torch.manual_seed(0)
    model_config = dataclasses.replace(config.model, **values, dropout=0.0)
    model = Tagger(len(data.vocabulary), len(data.characters), len(data.tags), model_config).double().eval()
    return model, data


@pytest.mark.parametrize("values", MODELS, ids=str)
def test_a_packed_batch_tags_each_sentence_as_alone(tmp_path, values):
    model, data = built(tmp_path, values)
    indices = np.arange(7)
    with torch.no_grad():
        words, characters, character_lengths, lengths, _ = to_batch(data.validation, indices, torch.device("cpu"))
        together = model.emissions(words, characters, character_lengths, lengths)
        for column, index in enumerate(indices):
            alone = model.emissions(*to_batch(data.validation, np.array([index]), torch.device("cpu"))[:4])
            torch.testing.assert_close(together[: lengths[column], column], alone[:, 0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("values", MODELS, ids=str)
def test_the_numpy_engine_tags_as_the_torch_engine(tmp_path, values):
    model, data = built(tmp_path, {**values, "crf": True} if values == {} else values)
    with torch.no_grad():  # a random model's scores are close together: make the decision clear-cut
        model.output.weight.mul_(20.0)
    expected, _, _ = tag_sentences(model, data.validation, torch.device("cpu"), 16)
    predicted = numpy_tagging_function(*checkpoint_of(model, tmp_path / "checkpoint", model.config), data)(
        data.validation
    )
    assert [p.tolist() for p in predicted] == [e.tolist() for e in expected]


def test_metrics_by_hand():
    metrics = tagging_metrics(
        [np.array([0, 1, 1]), np.array([1, -1])],
        [np.array([0, 1, 0]), np.array([1, 0])],
        [np.array([False, True, False]), np.array([True, True])],
        ["A", "B"],
        [["A", "B", "B"], ["B", "C"]],
    )
    assert metrics["accuracy"] == 3 / 5 and metrics["sentence_accuracy"] == 0.0
    assert metrics["unseen_accuracy"] == 2 / 3 and metrics["unseen_tokens"] == 3
    assert metrics["per_tag"]["C"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}  # seen at eval only
    assert metrics["confusions"][0] in (
        {"gold": "B", "predicted": "A", "count": 1},
        {"gold": "C", "predicted": "A", "count": 1},
    )


@pytest.fixture(scope="module")
def tagger_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("tagger")
    train, dev = tiny_files(directory)
    return train_tiny_tagger(directory / "run", train, dev, "train.max_steps=120", "train.eval_every=40"), train, dev


def test_predict_with_the_numpy_engine_needs_no_torch(tagger_run, capsys):
    arguments = ["predict", str(tagger_run[0]), "--conllu", str(tagger_run[2])]
    assert run_main(arguments) == 0
    expected = capsys.readouterr().out
    result = rnnkit_without_torch(*arguments, "--engine", "numpy")
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected
    assert rnnkit_without_torch(*arguments).returncode != 0  # the check has teeth: torch is really gone


def test_training_learns_and_eval_reports_every_metric(tagger_run, capsys):
    run, _, dev = tagger_run
    assert max(r["accuracy"] for r in read_metrics(run) if r["event"] == "eval") > 0.95
    assert run_main(["eval", str(run), "--data", str(dev)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert {"accuracy", "sentence_accuracy", "unseen_accuracy", "per_tag", "confusions", "tokens"} <= set(metrics)
    assert set(metrics["per_tag"]) == {"DET", "NOUN", "VERB", "ADJ", "PUNCT"}


@pytest.mark.parametrize("which", ["dev", "train"])  # the training file has multi-word tokens and empty nodes
def test_predict_conllu_round_trip_keeps_every_other_byte(tagger_run, capsys, which):
    run, train, dev = tagger_run
    path = dev if which == "dev" else train
    assert run_main(["predict", str(run), "--conllu", str(path)]) == 0
    output, original = capsys.readouterr().out, path.read_text()
    assert len(output) == len(original) and len(output.splitlines()) == len(original.splitlines())
    tagged = 0
    for mine, theirs in zip(output.splitlines(), original.splitlines()):
        if theirs and theirs.split("\t")[0].isdigit():
            mine_fields, their_fields = mine.split("\t"), theirs.split("\t")
            assert mine_fields[:3] + mine_fields[4:] == their_fields[:3] + their_fields[4:]
            tagged += mine_fields[3] == their_fields[3]
        else:
            assert mine == theirs  # comments, ranges, empty nodes, blank lines
    assert tagged > 0.95 * sum(1 for line in original.splitlines() if line and line.split("\t")[0].isdigit())


@pytest.mark.parametrize("engine", ["torch", "numpy"])
def test_predict_plain_text_and_tsv(tagger_run, capsys, monkeypatch, engine):
    run = tagger_run[0]
    monkeypatch.setattr("sys.stdin", io.StringIO("the big dog sees a cat .\nthis runner walked .\n"))
    assert run_main(["predict", str(run), "--engine", engine]) == 0
    blocks = capsys.readouterr().out.strip().split("\n\n")
    assert blocks[0].splitlines()[0] == "# text = the big dog sees a cat ."
    assert [line.split("\t")[3] for line in blocks[0].splitlines()[1:]] == [
        "DET",
        "ADJ",
        "NOUN",
        "VERB",
        "DET",
        "NOUN",
        "PUNCT",
    ]
    monkeypatch.setattr("sys.stdin", io.StringIO("the\nidea\nruns\n\nthe\ncat\n"))
    assert run_main(["predict", str(run), "--format", "tsv", "--engine", engine]) == 0
    assert capsys.readouterr().out == "the\tDET\nidea\tNOUN\nruns\tVERB\n\nthe\tDET\ncat\tNOUN\n\n"


def test_engines_agree_on_the_dev_file(tagger_run, capsys):
    run, _, dev = tagger_run
    outputs = []
    for engine in ("torch", "numpy"):
        assert run_main(["predict", str(run), "--conllu", str(dev), "--engine", engine]) == 0
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]


def test_an_interrupted_tagger_resumes_bit_identical(tmp_path):
    train, dev = tiny_files(tmp_path)
    settings = ("train.max_steps=45", "train.eval_every=15", "model.word_dropout=0.2", "model.crf=true")
    train_tiny_tagger(tmp_path / "straight", train, dev, *settings)
    first = start_run(tiny_config(train, dev, *settings), str(tmp_path / "resumed"), progress_stream=io.StringIO())
    stop_at(first, 20)
    assert first.run() == "interrupted"
    torch.manual_seed(5)
    assert resume_run(tmp_path / "resumed", {}, progress_stream=io.StringIO()).run(resumed=True) == "max_steps"
    assert_identical_tensors(latest_tensors(tmp_path / "straight"), latest_tensors(tmp_path / "resumed"))


def test_bad_inputs_of_the_tagger_commands(tagger_run, capsys, tmp_path, monkeypatch):
    run, _, dev = tagger_run
    monkeypatch.setattr("sys.stdin", io.StringIO("\n\n"))
    broken = tmp_path / "broken.conllu"
    broken.write_text("1\tThe\tthe\tDET\nbad\tline\n\n")
    assert_usage_error(capsys, ["predict", str(run), "--conllu", str(broken)], "lines 1-2: not CoNLL-U")
    assert_usage_error(capsys, ["eval", str(run), "--data", str(broken)], "lines 1-2: not CoNLL-U")
    assert_usage_error(capsys, ["predict", str(run), "the dog", "  "], "input 2: nothing to tag")
    assert_usage_error(capsys, ["predict", str(run), "--format", "tsv"], "standard input: nothing to tag")
    unknown = tmp_path / "unknown.conllu"
    unknown.write_text("1\tThe\tthe\tDET\n2\tdog\tdog\tWEIRD\n\n")
    assert run_main(["eval", str(run), "--data", str(unknown)]) == 0  # an unseen tag is an error, not a crash
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["per_tag"]["WEIRD"]["recall"] == 0.0 and metrics["accuracy"] <= 0.5


def test_a_conllu_file_whose_token_lines_disagree_with_its_words(tagger_run, tmp_path):
    from rnnkit.data.tagged import TaggedSentence
    from rnnkit.tasks.tagger import conllu_output

    line = "\t".join(["{}", "a", *["_"] * 8])
    two_lines = TaggedSentence(["a", "b"], [None, None], [line.format(1), line.format(2)], first_line=7)
    with pytest.raises(UsageError, match="at line 7: its token lines do not match the 1 words the model read"):
        conllu_output(two_lines, ["X"], "upos")
    one_line = TaggedSentence(["a", "b"], [None, None], [line.format(1)], first_line=7)
    with pytest.raises(UsageError, match="at line 7: 1 token lines for 2 words"):
        conllu_output(one_line, ["X", "Y"], "upos")


def test_one_huge_training_sentence_is_split_by_data_max_length(tmp_path, capsys):
    train, dev = tiny_files(tmp_path)
    with train.open("a") as file:  # a sentence of 300,000 tokens
        file.write("".join(f"{i + 1}\tword\t_\tNOUN\t_\t_\t_\t_\t_\t_\n" for i in range(300_000)) + "\n")
    run = train_tiny_tagger(tmp_path / "run", train, dev, "train.max_steps=4")
    start = next(record for record in read_metrics(run) if record["event"] == "start")
    assert start["long_examples"] == {
        "count": 1,
        "max_length": 1000,
        "action": "split into pieces of at most 1,000 words",
    }
    assert "longer than data.max_length = 1,000 words" in capsys.readouterr().err


def test_one_tag_in_all_the_training_data_is_refused(tmp_path, capsys):
    train, dev = tiny_files(tmp_path)
    one_tag = tmp_path / "one-tag.tsv"
    one_tag.write_text("the\tDET\ncat\tDET\n\na\tDET\ndog\tDET\n\n" * 20)
    argv = ["train", "ud-pos", "--data", str(one_tag), "--val", str(dev), "--out", str(tmp_path / "x")]
    assert_usage_error(capsys, argv, "every training example has the tag 'DET'")
