"""The n-gram experiment in quick form, and the AWD-LSTM preset runs and checkpoints on CPU."""

import io
import json
import random

from cli_helpers import assert_usage_error, run_main
from rnnkit.rundir import RunDirectory
from rnnkit.runs import new_config, start_run

WORDS = "the a cat dog sat ran on under mat rug and then".split()


def corpus(directory, name, lines, seed):
    rng = random.Random(seed)
    path = directory / name
    path.write_text("".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 8))) + "\n" for _ in range(lines)))
    return path


def test_quick_ngram_vs_rnn_writes_results_report_and_plot(tmp_path, capsys):
    train, valid = corpus(tmp_path, "train.txt", 500, 0), corpus(tmp_path, "valid.txt", 100, 1)
    out = tmp_path / "out"
    assert (
        run_main(
            ["experiment", "ngram-vs-rnn", "--data", str(train), "--val", str(valid), "--quick", "--out", str(out)]
        )
        == 0
    )
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [row["model"].split(" ")[0] for row in rows] == ["KN3", "KN5", "rnnkit"]
    assert all(1 < row["valid_perplexity"] < 100 for row in rows)
    assert "**Agreement.**" in (out / "report.md").read_text() and (out / "ngram-vs-rnn.png").exists()
    capsys.readouterr()
    assert_usage_error(
        capsys,
        [
            "experiment",
            "ngram-vs-rnn",
            "--data",
            str(train),
            "--val",
            str(valid),
            "--run",
            str(out / "runs" / "ptb-word"),
            "--seconds",
            "0",
        ],
        "--seconds must be positive",
    )


def test_the_awd_lstm_preset_runs_and_checkpoints_a_few_steps(tmp_path):
    train, valid = corpus(tmp_path, "train.txt", 300, 0), corpus(tmp_path, "valid.txt", 40, 1)
    config = new_config(
        "awd-lstm-ptb",
        [],
        {
            "data.corpus": str(train),
            "data.validation": str(valid),
            "train.max_steps": 2,
            "train.eval_every": 1,
            "train.threads": 1,
            "data.window": 10,
            "train.batch_size": 4,
        },
    )
    trainer = start_run(config, str(tmp_path / "run"), progress_stream=io.StringIO())
    assert trainer.run() == "max_steps"
    checkpoint = RunDirectory(tmp_path / "run").latest_checkpoint()
    assert checkpoint.name == "step-00000002"
    assert config.model.layer_sizes == (1150, 1150, 400) and config.optim.optimizer == "nt-asgd"
