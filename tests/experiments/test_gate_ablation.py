"""The gate-ablation experiment in its quick form writes its three outputs, from runs made by the
normal training path."""

import json

from classifier_helpers import tiny_files
from cli_helpers import assert_usage_error, run_main
from rnnkit.experiments.gate_ablation import ROWS


def test_quick_gate_ablation_writes_results_report_and_plot(tmp_path, capsys):
    train, dev = tiny_files(tmp_path)
    out = tmp_path / "out"
    assert (
        run_main(
            [
                "experiment",
                "gate-ablation",
                "--data",
                str(train),
                "--val",
                str(dev),
                "--test",
                str(dev),
                "--quick",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    results = json.loads((out / "results.json").read_text())
    assert [row["row"] for row in results["summary"]] == [row[0] for row in ROWS]
    assert len(results["runs"]) == len(ROWS) and all(0 <= run["dev_accuracy"] <= 1 for run in results["runs"])
    assert all("test_accuracy" in run and run["seconds"] > 0 for run in results["runs"])
    for run in results["runs"]:  # each run is an ordinary run directory of the lifecycle
        config = json.loads((out / "runs" / run["run"].rsplit("/", 1)[1] / "config.json").read_text())
        assert (config["task"], config["model"]["gates"], config["model"]["peephole"]) == (
            "classifier",
            run["gates"],
            run["peephole"],
        )
    report = (out / "report.md").read_text()
    assert "| input, forget, output gates | `ifo` | i, f, o | 85.3 |" in report and "Kendall's tau" in report
    assert (out / "gate-ablation.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "results.json, report.md and gate-ablation.png" in capsys.readouterr().err


def test_experiment_arguments(tmp_path, capsys):
    train, dev = tiny_files(tmp_path)
    assert_usage_error(capsys, ["experiment", "gate-ablation", "--data", str(train)], "--val")
    assert_usage_error(
        capsys,
        ["experiment", "gate-ablation", "--data", str(train), "--val", str(dev), "--seeds", "0"],
        "--seeds must be 1 or more",
    )
    assert_usage_error(capsys, ["experiment", "nope"], "invalid choice: 'nope'")


def test_an_interrupted_experiment_exits_130_and_reports_the_runs_that_finished(tmp_path, capsys, monkeypatch):
    import signal

    from rnnkit.train.trainer import Trainer

    calls, original = [], Trainer.run

    def run(self, resumed=False):
        calls.append(1)
        if len(calls) == 2:  # Ctrl-C during the second run
            self.stop_requested, self.stop_signal = True, signal.SIGINT
        return original(self, resumed)

    monkeypatch.setattr(Trainer, "run", run)
    train, dev = tiny_files(tmp_path)
    out = tmp_path / "out"
    argv = ["experiment", "gate-ablation", "--data", str(train), "--val", str(dev), "--quick", "--out", str(out)]
    assert run_main(argv) == 130
    err = capsys.readouterr().err
    assert "stopped by SIGINT; the 1 finished run(s)" in err.strip().splitlines()[-1] and "Traceback" not in err
    results = json.loads((out / "results.json").read_text())
    assert results["incomplete"] is True and len(results["runs"]) == 1 and results["runs"][0]["best"] is not None
    assert "incomplete" in (out / "report.md").read_text()


def write_trees(path, count: int):
    """SST-style trees of the tiny sentences, right-branching: every inner node and the sentiment words
    carry the sentence's label (0 or 4), the other words are neutral (2)."""
    import random

    from classifier_helpers import NEGATIVE, POSITIVE, sentence

    rng, lines = random.Random(0), []
    for _ in range(count):
        text, label = sentence(rng)
        root = "4" if label == "1" else "0"
        words = text.split()
        tree = f"({root if words[-1] in POSITIVE + NEGATIVE else 2} {words[-1]})"
        for word in reversed(words[:-1]):
            tree = f"({root} ({root if word in POSITIVE + NEGATIVE else 2} {word}) {tree})"
        lines.append(tree)
    path.write_text("\n".join(lines) + "\n")
    return path


def test_phrases_train_on_every_labelled_node_of_the_trees(tmp_path, capsys):
    from rnnkit.data.labelled import read_examples
    from rnnkit.experiments.gate_ablation import QUICK

    trees, (_, dev) = write_trees(tmp_path / "trees.txt", 300), tiny_files(tmp_path)
    out = tmp_path / "out"
    argv = ["experiment", "gate-ablation", "--data", str(trees), "--val", str(dev), "--phrases", "--quick"]
    assert run_main([*argv, "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["phrases"] is True
    quick = out / "data" / "trees.txt"
    phrases, sentences = (len(read_examples(quick, phrases=value)[0]) for value in (True, False))
    assert sentences == QUICK["train_lines"] and phrases > 3 * sentences
    for run in results["runs"]:  # one epoch over every phrase
        directory = out / "runs" / run["run"].rsplit("/", 1)[1]
        assert json.loads((directory / "config.json").read_text())["data"]["phrases"] is True
        end = json.loads((directory / "metrics.jsonl").read_text().splitlines()[-1])
        assert end["event"] == "end" and end["sentences"] == phrases
    assert "every labelled phrase of the training trees" in (out / "report.md").read_text()
    capsys.readouterr()
    assert_usage_error(
        capsys,
        [
            "experiment",
            "gate-ablation",
            "--data",
            str(dev),
            "--val",
            str(dev),
            "--phrases",
            "--out",
            str(tmp_path / "x"),
        ],
        "data.phrases needs a file of trees",
    )
    assert_usage_error(capsys, [*argv, "--epochs", "0"], "--epochs must be in (0, 1000]")
    assert_usage_error(capsys, [*argv, "--epochs", "nan"], "--epochs must be in (0, 1000]")


def test_one_seed_claims_no_spread():
    """With one run per row there is no standard deviation: the report shows none and judges no
    reversal against one; with two runs per row it does both."""
    from rnnkit.experiments.gate_ablation import report, summarise

    def runs(seeds):
        # ours reverse the deck's order of rows, each seed 1 point apart
        return [
            {"row": name, "dev_accuracy": (90 - 2 * index + seed) / 100, "seconds": 1.0}
            for index, (name, *_) in enumerate(reversed(ROWS))
            for seed in range(seeds)
        ]

    single = report(summarise(runs(1)), runs(1), 1, 2, True, False)
    assert "±" not in single.split("| row |", 1)[1].split("**Agreement.**")[0]
    assert "standard deviation" not in single and "one run per row" in single.lower()
    double = report(summarise(runs(2)), runs(2), 2, 2, True, False)
    assert "| 90.5 ± 0.7 |" in double
    assert "by more than their standard deviations" in double
