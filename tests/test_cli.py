"""End to end through the command line: train -> sample -> eval, and the help texts."""

import json
import math

import pytest

from cli_helpers import run_main, run_rnnkit, tiny_flags
from language_model_helpers import read_metrics, write_tiny_corpus
from rnnkit.rundir import CONFIG, METRICS, SAMPLES, VOCABULARY, RunDirectory


def test_train_sample_eval(tmp_path):
    corpus = write_tiny_corpus(tmp_path)
    run = tmp_path / "run"
    trained = run_rnnkit(
        "train",
        "--data",
        str(corpus),
        "--out",
        str(run),
        "--max-steps",
        "60",
        *tiny_flags(),
        "--set",
        "train.eval_every=30",
        "--set",
        "sample.every=30",
        "--set",
        "sample.length=20",
    )
    assert trained.returncode == 0, trained.stderr
    assert "stopped at step 60 (max_steps)" in trained.stderr and "Traceback" not in trained.stderr
    for name in (CONFIG, VOCABULARY, METRICS, SAMPLES):
        assert (run / name).is_file(), name
    assert RunDirectory(run).latest_checkpoint().name == "step-00000060"
    events = read_metrics(run)
    assert [r["step"] for r in events if r["event"] == "eval"] == [30, 60]
    assert {"loss", "lr", "tokens_per_second"} <= set(next(r for r in events if r["event"] == "train"))
    assert (run / SAMPLES).read_text().count("=== step") == 2
    assert events[0]["event"] == "start" and events[0]["preset"] == "shakespeare-char"  # the default preset

    sampled = run_rnnkit("sample", str(run), "--prime", "First", "--length", "50", "--seed", "1")
    assert sampled.returncode == 0, sampled.stderr
    assert sampled.stdout.startswith("First") and len(sampled.stdout) == len("First") + 50 + 1

    evaluated = run_rnnkit("eval", str(run))
    assert evaluated.returncode == 0, evaluated.stderr
    metrics = json.loads(evaluated.stdout)
    assert set(metrics) == {"nll", "bpc", "perplexity", "tokens"}
    assert metrics["tokens"] == 4000 - int(4000 * 0.9) - 1  # the last 10%, every token but the first predicted
    assert metrics["bpc"] == pytest.approx(metrics["nll"] / math.log(2))
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["nll"]))
    assert 1.0 < metrics["nll"] < math.log(len(json.loads((run / VOCABULARY).read_text())["tokens"])) + 0.5


def test_eval_on_another_file_counts_its_tokens(tmp_path, capsys):
    corpus = write_tiny_corpus(tmp_path)
    assert (
        run_main(["train", "--data", str(corpus), "--out", str(tmp_path / "run"), "--max-steps", "3", *tiny_flags()])
        == 0
    )
    other = tmp_path / "other.txt"
    other.write_text(corpus.read_text()[:101])
    capsys.readouterr()
    assert run_main(["eval", str(tmp_path / "run"), "--data", str(other)]) == 0
    assert json.loads(capsys.readouterr().out)["tokens"] == 100


@pytest.mark.parametrize("command", ["train", "sample", "eval"])
def test_help_explains_every_option(command, capsys):
    assert run_main([command, "--help"]) == 0
    text = capsys.readouterr().out
    options = {
        "train": [
            "--data",
            "--val",
            "--out",
            "--resume",
            "--seed",
            "--max-steps",
            "--max-epochs",
            "--max-time",
            "--set",
            "[model]",
            "[optim]",
        ],
        "sample": [
            "--prime",
            "--prime-file",
            "--length",
            "--temperature",
            "--top-k",
            "--top-p",
            "--seed",
            "--num-samples",
            "--skip-unknown",
            "--engine",
        ],
        "eval": ["--data", "nll", "bpc", "perplexity"],
    }[command]
    for option in options:
        assert option in text, option


def test_python_dash_m_is_the_same_command():
    result = run_rnnkit("--help")
    assert result.returncode == 0 and "train" in result.stdout and "sample" in result.stdout


def test_options_may_come_before_positionals(capsys, trained, tmp_path):
    text = tmp_path / "lines.txt"
    text.write_text("First Citizen:\nBefore we proceed\n")
    assert run_main(["score", str(trained[0]), "--carry", str(text)]) == 0
    carried = capsys.readouterr().out
    assert run_main(["score", "--carry", str(trained[0]), str(text), "--checkpoint", "latest"]) == 0
    assert capsys.readouterr().out == carried and len(carried.splitlines()) == 2
    assert run_main(["sample", "--length", "5", str(trained[0]), "--seed", "3"]) == 0
    assert len(capsys.readouterr().out) > 5
