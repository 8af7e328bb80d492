"""Every bad input: one line on stderr, exit code 2, no traceback, nothing saved damaged."""

import json
import pickle

import pytest

from cli_helpers import assert_usage_error, run_main, run_rnnkit, tiny_flags
from rnnkit.rundir import MODEL_WEIGHTS, VOCABULARY, RunDirectory


def train_argv(tmp_path, corpus, *more):
    return ["train", "--data", str(corpus), "--out", str(tmp_path / "out"), "--max-steps", "2", *tiny_flags(), *more]


def write_bytes(tmp_path, data: bytes):
    path = tmp_path / "corpus.txt"
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    "data, fragments",
    [
        (b"", ["is empty; at least 37 characters are needed", "batch_size 4"]),
        (b"short text", ["too short, 10 characters; at least 37 are needed", "batch_size 4"]),
        ("naïve".encode("latin-1") * 20, ["not valid UTF-8 at byte offset 2"]),
        (b"text\x00\x01\x02" * 20, ["binary data", "byte offset 4"]),
    ],
)
def test_bad_corpus(tmp_path, capsys, data, fragments):
    assert_usage_error(capsys, train_argv(tmp_path, write_bytes(tmp_path, data)), *fragments)
    assert not (tmp_path / "out").exists()  # nothing was created


def test_missing_corpus_and_validation_file(tmp_path, capsys, trained):
    assert_usage_error(capsys, train_argv(tmp_path, tmp_path / "absent.txt"), "absent.txt: no such file")
    assert_usage_error(
        capsys, train_argv(tmp_path, trained[1], "--val", str(tmp_path / "nope.txt")), "nope.txt: no such file"
    )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "setting, fragments",
    [
        ("model.hiden_size=3", ["unknown config key 'model.hiden_size'", "valid keys in [model]: cell, nonlinearity"]),
        (
            "optimizer.lr=1",
            [
                "unknown config section 'optimizer'",
                "valid sections for the task language_model: optim, train, model, data, sample",
            ],
        ),
        ("model.hidden_size=big", ["model.hidden_size: cannot read 'big' as an integer"]),
        ("train.max_time=true", ["train.max_time: expected a number, got True"]),
        # extreme but finite values: a range check, or a clean line, never a traceback
        ("optim.lr=1e30", ["optim.lr: expected a number in (0, 100], got 1e+30"]),
        ("model.hidden_size=1000000000", ["the model is too large to build"]),
        ("model.embedding_size=1000000000000", ["the model is too large:", "parameters need about"]),
    ],
)
def test_bad_set(tmp_path, capsys, trained, setting, fragments):
    assert_usage_error(capsys, train_argv(tmp_path, trained[1], "--set", setting), *fragments)


def test_out_directory_holding_a_run_is_not_overwritten(capsys, trained, run_copy):
    before = {path: path.read_bytes() for path in run_copy.rglob("*") if path.is_file()}
    assert_usage_error(
        capsys,
        ["train", "--data", str(trained[1]), "--out", str(run_copy), *tiny_flags()],
        "already holds a run",
        "--resume",
    )
    assert {path: path.read_bytes() for path in run_copy.rglob("*") if path.is_file()} == before


@pytest.mark.parametrize("command", [["sample"], ["eval"], ["train", "--resume"]])
def test_run_directory_missing_or_not_a_run(tmp_path, capsys, command):
    assert_usage_error(capsys, [*command, str(tmp_path / "absent")], "no such run directory")
    assert_usage_error(capsys, [*command, str(tmp_path)], "not an rnnkit run directory")


def damage(run, how: str) -> bytes:
    weights = RunDirectory(run).latest_checkpoint() / MODEL_WEIGHTS
    data = weights.read_bytes()
    damaged = {
        "truncated": data[: len(data) // 2],
        "corrupt": b"\x12" * 64,
        "pickle": pickle.dumps({"embedding.weight": [0.0]}, protocol=4),
    }[how]
    weights.write_bytes(damaged)
    return damaged


@pytest.mark.parametrize(
    "how, fragment", [("truncated", "truncated"), ("corrupt", "not a safetensors file"), ("pickle", "pickle")]
)
@pytest.mark.parametrize("command", [["sample"], ["sample", "--engine", "numpy"], ["eval"], ["train", "--resume"]])
def test_damaged_weights(capsys, run_copy, how, fragment, command):
    damaged = damage(run_copy, how)
    argv = (
        [command[0], *command[1:], str(run_copy)]
        if command[0] != "sample"
        else [command[0], str(run_copy), *command[1:]]
    )
    assert_usage_error(capsys, argv, MODEL_WEIGHTS, fragment)
    assert (RunDirectory(run_copy).latest_checkpoint() / MODEL_WEIGHTS).read_bytes() == damaged  # left as it was


@pytest.mark.parametrize(
    "options, fragments",
    [
        (["--temperature", "-0.5"], ["--temperature must be a finite number, 0 (greedy) or more"]),
        (["--temperature", "inf"], ["--temperature must be a finite number"]),
        (["--temperature", "nan"], ["--temperature must be a finite number"]),
        (["--seed", "-3"], ["--seed must be an integer in [0, 2^63)"]),
        (["--top-k", "0"], ["--top-k must be 1 or more"]),
        (["--top-p", "0"], ["--top-p must be in (0, 1]"]),
        (["--top-p", "1.01"], ["--top-p must be in (0, 1]"]),
        (["--length", "-1"], ["--length must be 0 or more"]),
        (["--prime", "Zebra€"], ["not in the vocabulary", "'€' (U+20AC)", "--skip-unknown"]),
        (["--temperature", "hot"], ["invalid float value: 'hot'"]),
        (["--beam", "3", "--length-penalty", "1000"], ["--length-penalty must be a number in [-10, 10], got 1000"]),
        (["--beam", "3", "--length-penalty=-1e308"], ["--length-penalty must be a number in [-10, 10], got -1e+308"]),
        (["--beam", "3", "--length-penalty", "nan"], ["--length-penalty must be a number in [-10, 10]"]),
    ],
)
def test_bad_sample_options(capsys, trained, options, fragments):
    assert_usage_error(capsys, ["sample", str(trained[0]), *options], *fragments)


def test_a_beam_wider_than_the_vocabulary_is_the_vocabulary(capsys, trained):
    assert run_main(["sample", str(trained[0]), "--beam", "1000000", "--length", "2", "--prime", "a"]) == 0
    results = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    vocabulary = len(json.loads((trained[0] / VOCABULARY).read_text())["tokens"])
    assert 1 < len(results) <= vocabulary


def test_a_beam_too_large_for_the_memory_is_refused_before_decoding(capsys, trained, monkeypatch):
    monkeypatch.setattr("rnnkit.device.physical_memory_bytes", lambda: 1000)
    assert_usage_error(capsys, ["sample", str(trained[0]), "--beam", "50"], "--beam", "tokens needs about", "GiB")


def test_skip_unknown_drops_prime_characters(capsys, trained):
    assert run_main(["sample", str(trained[0]), "--prime", "First€", "--skip-unknown", "--length", "5"]) == 0
    assert capsys.readouterr().out.startswith("First€")


def test_bad_prime_file_and_eval_data(tmp_path, capsys, trained):
    bad = write_bytes(tmp_path, b"ab\xffcd")
    assert_usage_error(capsys, ["sample", str(trained[0]), "--prime-file", str(bad)], "byte offset 2")
    assert_usage_error(capsys, ["eval", str(trained[0]), "--data", str(bad)], "byte offset 2")
    utf16 = write_bytes(tmp_path, "First Citizen".encode("utf-16"))
    assert_usage_error(capsys, ["sample", str(trained[0]), "--prime-file", str(utf16)], "looks like UTF-16")
    unknown = tmp_path / "unknown.txt"
    unknown.write_text("First Citizen€€")
    assert_usage_error(capsys, ["eval", str(trained[0]), "--data", str(unknown)], "not in the vocabulary", "'€'")


def test_resume_refuses_model_changes_and_conflicting_options(capsys, run_copy):
    assert_usage_error(
        capsys,
        ["train", "--resume", str(run_copy), "--set", "model.hidden_size=8"],
        "cannot change model.hidden_size when resuming",
    )
    assert_usage_error(
        capsys, ["train", "--resume", str(run_copy), "--data", "x.txt"], "--data cannot be combined with --resume"
    )


def test_a_subprocess_reports_bad_input_in_one_line(tmp_path):
    result = run_rnnkit("sample", str(tmp_path / "absent"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"rnnkit sample: error: {tmp_path / 'absent'}: no such run directory"]
