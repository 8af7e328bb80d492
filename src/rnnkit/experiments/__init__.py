"""One module per lecture claim: `rnnkit experiment NAME [--quick] [--out DIR] ...`.

Each experiment trains through the normal run lifecycle (rnnkit.runs), writes `results.json`
(every run and the summary), `report.md` (the lecture's statement and number beside ours, and one
honest sentence on how they agree) and PNG plots into its output directory. A module defines NAME,
SUMMARY, add_arguments(parser) and run(args). What they share is here, and only that.
"""

from __future__ import annotations

import importlib
import io
import json
import math
import signal
import time
from pathlib import Path

from rnnkit.atomic import make_directory, write_text_atomically
from rnnkit.errors import UsageError

EXPERIMENT_MODULES = {
    "gate-ablation": "rnnkit.experiments.gate_ablation",
    "bidirectional": "rnnkit.experiments.bidirectional",
    "depth": "rnnkit.experiments.depth",
    "ngram-vs-rnn": "rnnkit.experiments.ngram_vs_rnn",
    "vanishing-scalar": "rnnkit.experiments.vanishing_scalar",
    "gradient-flow": "rnnkit.experiments.gradient_flow",
    "clipping": "rnnkit.experiments.clipping",
    "sample-progression": "rnnkit.experiments.sample_progression",
    "interpretable-cells": "rnnkit.experiments.interpretable_cells",
    "lstm-vs-gru": "rnnkit.experiments.lstm_vs_gru",
    "attention": "rnnkit.experiments.attention",
    "long-memory": "rnnkit.experiments.long_memory",
}


class Interrupted(Exception):
    """Ctrl-C or SIGTERM stopped one of the experiment's runs (which saved its checkpoint first)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Finished:
    """The experiment's output directory and the runs that finished in it: what an interrupted experiment
    still reports (`write_incomplete`)."""

    def __init__(self) -> None:
        self.directory: Path | None = None
        self.runs: list[dict] = []


FINISHED = Finished()


def experiment_module(name: str):
    if name not in EXPERIMENT_MODULES:
        raise UsageError(f"unknown experiment {name!r}; known: {', '.join(EXPERIMENT_MODULES)}")
    return importlib.import_module(EXPERIMENT_MODULES[name])


def output_directory(out: str | None, name: str) -> Path:
    """A new (or empty) directory for an experiment's outputs, not inside a run."""
    from rnnkit.runs import check_new_run_path

    path = check_new_run_path(out if out is not None else f"runs/{name}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        make_directory(path, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create {path}: {error.strerror}") from None
    FINISHED.directory, FINISHED.runs = path, []
    return path


def add_output_arguments(parser, name: str, quick: str) -> None:
    """--quick and --out, which every experiment takes."""
    parser.add_argument("--quick", action="store_true", help=f"a smoke version: {quick}")
    parser.add_argument("--out", metavar="DIR", help=f"a new directory for the outputs (default: runs/{name}-TIME)")


def add_common_arguments(parser, name: str, data: str, validation: str, quick: str) -> None:
    """--data and --val (both required), --quick and --out: the experiments on a task's data files."""
    parser.add_argument("--data", metavar="TRAIN", required=True, help=data)
    parser.add_argument("--val", metavar="DEV", required=True, help=validation)
    add_output_arguments(parser, name, quick)


def add_corpus_arguments(parser, name: str, quick: str) -> None:
    """--corpus (default: the shipped tinyshakespeare), --quick and --out: the character-LM experiments."""
    parser.add_argument(
        "--corpus",
        metavar="TEXT",
        default="tinyshakespeare",
        help="the training text: a file or a shipped corpus's name (default tinyshakespeare; "
        "its last tenth is the validation text)",
    )
    add_output_arguments(parser, name, quick)


QUICK_CHARACTERS = 20_000
QUICK_CHAR_MODEL = [
    "model.embedding_size=8",
    "model.hidden_size=16",
    "data.window=16",
    "train.batch_size=4",
    "data.eval_tokens=500",
    "train.eval_every=5",
    "train.log_every=1",
]


def quick_corpus(corpus: str, directory: Path) -> str:
    """The first QUICK_CHARACTERS characters of a corpus, written into directory: what a quick version of a
    character-LM experiment trains on."""
    from rnnkit.data.text import read_text, resolve_corpus

    make_directory(directory, exist_ok=True)
    target = directory / "corpus.txt"
    write_text_atomically(target, read_text(resolve_corpus(corpus))[:QUICK_CHARACTERS])
    return str(target)


def train_once(preset: str | None, settings: list[str], values: dict, directory: Path) -> dict:
    """One run through the normal lifecycle (rnnkit.runs): the early-stopped (best) validation
    metric, when it was reached, the steps, tokens (or examples), epochs and seconds trained, the model's
    size and the run's path."""
    from rnnkit.runs import new_config, preset_used, start_run

    trainer = start_run(new_config(preset, settings, values), str(directory), progress_stream=io.StringIO())
    trainer.preset = preset_used(preset, settings)
    if trainer.run() == "interrupted":
        raise Interrupted(trainer.stop_signal or signal.SIGINT)
    best = trainer.best or {"value": None, "step": None}
    outcome = {
        "best": best["value"],
        "best_step": best["step"],
        "steps": trainer.step,
        "trained": trainer.tokens,
        "epochs": round(trainer.training.epochs_done, 3),
        "seconds": round(trainer.elapsed(), 3),
        "parameters": sum(parameter.numel() for parameter in trainer.parameters),
        "run": str(trainer.run_directory.path),
    }
    FINISHED.runs.append(outcome)
    return outcome


def write_incomplete(name: str) -> tuple[Path | None, int]:
    """After an interruption: results.json and report.md of the runs that finished, marked incomplete.
    Returns (the output directory, or None if the experiment had not made one, and the runs written)."""
    if FINISHED.directory is None:
        return None, 0
    runs = FINISHED.runs
    write_results(FINISHED.directory, {"experiment": name, "incomplete": True, "reason": "interrupted", "runs": runs})
    lines = [
        f"# {name}: incomplete",
        "",
        f"Interrupted after {len(runs)} finished run(s); the table below is only "
        "what they measured, not the experiment's answer. Run it again for the whole.",
        "",
        "| run | best validation metric | steps | seconds |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {run['run']} | {run['best']} | {run['steps']} | {run['seconds']} |" for run in runs]
    write_report(FINISHED.directory, "\n".join(lines) + "\n")
    return FINISHED.directory, len(runs)


def step_limit(steps: int) -> dict:
    """Train for exactly `steps` steps: the preset's time limit, if it has one, is lifted."""
    return {"train.max_steps": steps, "train.max_time": 0.0}


def subset(path: str, count: int, directory: Path) -> str:
    """The first `count` sentences of a data file (lines, or blank-line-separated blocks such as
    CoNLL-U's), written into directory: what a quick version trains on."""
    from rnnkit.data.text import read_text

    text = read_text(path)
    if "\n\n" in text:
        kept = "\n\n".join(block for block in text.split("\n\n") if block.strip()).split("\n\n")[:count]
        content = "\n\n".join(kept) + "\n\n"
    else:
        content = "\n".join(text.splitlines()[:count]) + "\n"
    make_directory(directory, exist_ok=True)
    target = directory / Path(path).name
    write_text_atomically(target, content)
    return str(target)


def write_results(directory: Path, results: dict) -> None:
    write_text_atomically(directory / "results.json", json.dumps(results, indent=1, allow_nan=False) + "\n")


def write_report(directory: Path, text: str) -> None:
    write_text_atomically(directory / "report.md", text)


def mean_and_sd(values: list[float]) -> tuple[float, float]:
    """The mean and the sample standard deviation (0 for a single value)."""
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else 0.0
    return mean, sd
