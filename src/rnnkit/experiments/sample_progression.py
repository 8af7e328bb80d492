"""A character model's samples as it learns, as in Karpathy's "The Unreasonable Effectiveness of
Recurrent Neural Networks": noise first, then words and spacing, then the shape of a play.

The run is the default preset's, with samples written to samples.txt during training
(`sample.every`): the same file `rnnkit train` writes and a run viewer reads. The report prints
the samples at increasing steps and, as one number for each, the share of its words that occur in
the training text.

    rnnkit experiment sample-progression [--corpus TEXT] [--train-steps 4000] [--quick] [--out DIR]
"""

from __future__ import annotations

import io
import re
import sys
from pathlib import Path

from rnnkit.errors import UsageError
from rnnkit.experiments import (
    QUICK_CHAR_MODEL,
    add_corpus_arguments,
    output_directory,
    quick_corpus,
    step_limit,
    train_once,
    write_report,
    write_results,
)
from rnnkit.metrics_log import read_metrics
from rnnkit.plots import pyplot

NAME = "sample-progression"
SUMMARY = "samples of the default char model at steps 100, 300, 1000, 3000 and the end of training"
CLAIM = (
    "A character-level RNN's samples go from noise to Shakespeare as it trains: at iteration 100 random-looking "
    "characters with spaces, by 300 words and punctuation, by 2000 correctly spelled words and the shape of a play "
    "(Karpathy 2015)."
)
STEPS = (100, 300, 1000, 3000)
LENGTH = 300  # characters per sample
QUICK = {"steps": (1, 2, 3), "max_steps": 4, "length": 40}
WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


def add_arguments(parser) -> None:
    add_corpus_arguments(parser, NAME, "a tiny model for 4 steps, samples at steps 1, 2, 3")
    parser.add_argument(
        "--train-steps",
        type=int,
        default=4000,
        metavar="N",
        help="training steps (default 4000; the schedule spans them)",
    )


def run(args) -> int:
    if args.train_steps < 1:
        raise UsageError(f"--train-steps must be 1 or more, got {args.train_steps}")
    pyplot()
    directory = output_directory(args.out, NAME)
    corpus, steps, length, settings = args.corpus, STEPS, LENGTH, []
    limit = step_limit(args.train_steps)
    if args.quick:
        corpus, settings = quick_corpus(args.corpus, directory / "data"), list(QUICK_CHAR_MODEL)
        steps, length, limit = QUICK["steps"], QUICK["length"], step_limit(QUICK["max_steps"])
    every = steps[0]
    outcome = train_once(
        "shakespeare-char",
        settings + [f"sample.every={every}", f"sample.length={length}"],
        {"data.corpus": corpus, **limit},
        directory / "runs" / "char-lm",
    )
    run_path = Path(outcome["run"])
    written = read_samples(run_path / "samples.txt")
    rows = [{"step": step, "sample": written[step]} for step in steps if step in written]
    rows.append({"step": outcome["steps"], "sample": final_sample(run_path, length), "final": True})
    vocabulary = known_words(corpus)
    losses = training_losses(run_path / "metrics.jsonl")
    for row in rows:
        row["real_word_share"] = real_word_share(row["sample"], vocabulary)
        row["training_loss"] = nearest(losses, row["step"])
    write_results(
        directory,
        {
            "experiment": NAME,
            "quick": args.quick,
            "settings": settings,
            "limit": limit,
            "validation_nll": outcome["best"],
            "seconds": outcome["seconds"],
            "run": outcome["run"],
            "rows": rows,
            "training_loss": losses,
        },
    )
    write_report(directory, report(rows, outcome, args.quick))
    plot(rows, losses, directory / "sample-progression.png")
    for row in rows:
        print(
            f"rnnkit experiment {NAME}: step {row['step']}: {100 * row['real_word_share']:.0f}% real words",
            file=sys.stderr,
        )
    print(
        f"rnnkit experiment {NAME}: results.json, report.md and sample-progression.png in {directory}", file=sys.stderr
    )
    return 0


def read_samples(path: Path) -> dict[int, str]:
    """samples.txt's samples by step: blocks that start with a line `=== step N ===`."""
    samples, step, lines = {}, None, []
    for line in path.read_text(encoding="utf-8").split("\n"):
        match = re.fullmatch(r"=== step (\d+) ===", line)
        if match:
            if step is not None:
                samples[step] = "\n".join(lines).removesuffix("\n")
            step, lines = int(match.group(1)), []
        elif step is not None:
            lines.append(line)
    if step is not None:
        samples[step] = "\n".join(lines).removesuffix("\n")
    return samples


def final_sample(run_path: Path, length: int) -> str:
    """A sample of the run's best checkpoint through `rnnkit sample`'s own path."""
    from rnnkit.runs import open_run
    from rnnkit.tasks.language_model import sample_run

    run = open_run(run_path)
    out = io.StringIO()
    sample_run(run, run.directory.checkpoint(), {"length": length, "seed": run.config.train.seed}, out)
    return out.getvalue().removesuffix("\n")


def known_words(corpus: str) -> set[str]:
    from rnnkit.data.text import read_text, resolve_corpus

    return set(WORD.findall(read_text(resolve_corpus(corpus)).lower()))


def real_word_share(text: str, vocabulary: set[str]) -> float:
    """The share of the sample's words (lower-cased letter runs) that occur in the training text."""
    words = WORD.findall(text.lower())
    return sum(word in vocabulary for word in words) / len(words) if words else 0.0


def training_losses(path: Path) -> list[list[float]]:
    return [[record["step"], record["loss"]] for record in read_metrics(path, "train") if record["loss"] is not None]


def nearest(curve: list[list[float]], step: int) -> float | None:
    """The logged training loss at the logged step closest to `step`."""
    return min(curve, key=lambda point: abs(point[0] - step))[1] if curve else None


def report(rows: list[dict], outcome: dict, quick: bool) -> str:
    lines = [
        "# Samples of a character model as it trains",
        "",
        f"**The lecture's claim.** {CLAIM}",
        "",
        f"**Our setup.** {'QUICK SMOKE VERSION: not a measurement. ' if quick else ''}The default preset "
        f"(shakespeare-char), trained for {outcome['seconds']:.0f} s ({outcome['steps']} steps; best validation nll "
        f"{outcome['best']:.3f} nats per character). Samples at temperature 1 from samples.txt, the last from the best "
        "checkpoint. *Real words* is the share of a sample's words that occur in the training text.",
        "",
        "| step | training loss | real words |",
        "|---:|---:|---:|",
    ]
    for row in rows:
        loss = f"{row['training_loss']:.3f}" if row["training_loss"] is not None else "n/a"
        lines.append(
            f"| {row['step']}{' (final)' if row.get('final') else ''} | {loss} | {100 * row['real_word_share']:.0f}% |"
        )
    for row in rows:
        lines += [
            "",
            f"**Step {row['step']}{' (final)' if row.get('final') else ''}**",
            "",
            "```",
            row["sample"],
            "```",
        ]
    lines += ["", f"**Agreement.** {agreement(rows)}", "", "![progression](sample-progression.png)", ""]
    return "\n".join(lines)


def agreement(rows: list[dict]) -> str:
    shares = [row["real_word_share"] for row in rows]
    rising = all(later >= earlier - 0.05 for earlier, later in zip(shares, shares[1:])) and shares[-1] > shares[0]
    return (
        f"The share of real words goes from {100 * shares[0]:.0f}% at step {rows[0]['step']} to "
        f"{100 * shares[-1]:.0f}% at the end; the samples {'do' if rising else 'do not clearly'} move from noise "
        "towards the training text's words and layout, as the lecture describes (read them above: the number "
        "says nothing about the play's shape)."
    )


def plot(rows: list[dict], losses: list[list[float]], path: Path) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6.5, 4.2))
    if losses:
        steps, values = zip(*losses)
        axes.plot(steps, values, label="training loss")
    axes.set_xscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel("training loss (nats per character)")
    share = axes.twinx()
    share.plot(
        [row["step"] for row in rows],
        [100 * row["real_word_share"] for row in rows],
        "o--",
        color="tab:red",
        label="real words in the sample",
    )
    share.set_ylabel("real words in the sample (%)")
    share.set_ylim(0, 100)
    figure.legend(loc="upper center")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
