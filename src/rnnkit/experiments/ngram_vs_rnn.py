"""The lectures' claim that recurrent language models beat n-gram models, on Penn Treebank words:
interpolated modified Kneser-Ney 3-gram and 5-gram models (rnnkit.ngram) beside an rnnkit word LM,
all measured by validation perplexity per word token, <eos> included.

The word LM is the ptb-word preset trained for --seconds through the normal run lifecycle, or an
existing word-LM run given with --run (its best checkpoint, evaluated by `rnnkit eval`'s protocol).

    rnnkit experiment ngram-vs-rnn --data ptb.train.txt --val ptb.valid.txt [--seconds 1800 | --run DIR] [--quick]
        [--out DIR]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rnnkit.data.text import iter_lines
from rnnkit.errors import UsageError
from rnnkit.experiments import (
    add_common_arguments,
    output_directory,
    subset,
    train_once,
    write_report,
    write_results,
)
from rnnkit.ngram import KneserNey
from rnnkit.plots import pyplot

NAME = "ngram-vs-rnn"
SUMMARY = "Kneser-Ney 3- and 5-gram models against an rnnkit word LM on Penn Treebank (validation perplexity)"
CLAIM = "Recurrent neural network language models beat n-gram language models (Mikolov et al. 2010)."
PUBLISHED = {
    "KN5 (Mikolov 2011)": 141.2,
    "LSTM small (Zaremba 2014)": 114.5,
    "LSTM medium (Zaremba 2014)": 82.7,
    "LSTM large (Zaremba 2014)": 78.4,
}  # Penn Treebank test perplexities
QUICK = {
    "train": 400,
    "valid": 80,
    "settings": [
        "model.embedding_size=32",
        "model.hidden_size=32",
        "model.softmax=full",
        "train.max_steps=60",
        "train.eval_every=30",
        "data.window=20",
        "train.batch_size=8",
    ],
}


def add_arguments(parser) -> None:
    add_common_arguments(
        parser,
        NAME,
        "the training text (ptb.train.txt)",
        "the validation text (ptb.valid.txt)",
        "a few hundred lines, a tiny LM",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=1800.0,
        metavar="S",
        help="training time of the word LM (default 1800, the ptb-word preset's)",
    )
    parser.add_argument("--run", metavar="DIR", help="use this trained word-LM run instead of training one")


def sentences(path: str) -> list[list[str]]:
    """The PTB convention: each line's words, then <eos>."""
    return [line.split() + ["<eos>"] for line in iter_lines(path)]


def run(args) -> int:
    from rnnkit.runs import open_run

    if not args.seconds > 0:
        raise UsageError(f"--seconds must be positive, got {args.seconds:g}")
    existing = open_run(args.run) if args.run else None
    if existing is not None and (existing.task.name != "language_model" or existing.config.data.tokenizer != "word"):
        raise UsageError(f"--run {args.run}: not a word-level language model run")
    pyplot()
    directory = output_directory(args.out, NAME)
    files, settings = {"train": args.data, "valid": args.val}, [f"train.max_time={args.seconds}"]
    if args.quick:
        files = {
            "train": subset(args.data, QUICK["train"], directory / "data"),
            "valid": subset(args.val, QUICK["valid"], directory / "data"),
        }
        settings = QUICK["settings"]
    train, valid = sentences(files["train"]), sentences(files["valid"])
    rows = []
    for order in (3, 5):
        start = time.monotonic()
        perplexity, tokens = KneserNey(order).fit(train).perplexity(valid)
        rows.append(
            {
                "model": f"KN{order} (interpolated modified Kneser-Ney)",
                "valid_perplexity": perplexity,
                "tokens": tokens,
                "seconds": round(time.monotonic() - start, 1),
            }
        )
        print(
            f"rnnkit experiment {NAME}: KN{order}: validation perplexity {perplexity:.1f}", file=sys.stderr, flush=True
        )
    if existing is None:
        outcome = train_once(
            "ptb-word",
            settings,
            {"data.corpus": files["train"], "data.validation": files["valid"]},
            directory / "runs" / "ptb-word",
        )
        existing, seconds = open_run(outcome["run"]), outcome["seconds"]
    else:
        seconds = None
    metrics = existing.task.evaluate(existing, existing.directory.checkpoint(), files["valid"])
    rows.append(
        {
            "model": f"rnnkit word LM ({existing.config.model.cell}, {existing.config.model.num_layers} layers)",
            "valid_perplexity": metrics["perplexity"],
            "tokens": metrics["tokens"],
            "seconds": seconds,
            "run": str(existing.path),
        }
    )
    print(f"rnnkit experiment {NAME}: word LM: validation perplexity {metrics['perplexity']:.1f}", file=sys.stderr)
    write_results(
        directory, {"experiment": NAME, "quick": args.quick, "files": files, "rows": rows, "published_test": PUBLISHED}
    )
    write_report(directory, report(rows, args.quick))
    plot(rows, directory / "ngram-vs-rnn.png")
    print(f"rnnkit experiment {NAME}: results.json, report.md and ngram-vs-rnn.png in {directory}", file=sys.stderr)
    return 0


def report(rows: list[dict], quick: bool) -> str:
    best_ngram = min(rows[:-1], key=lambda row: row["valid_perplexity"])
    rnn = rows[-1]
    ratio = best_ngram["valid_perplexity"] / rnn["valid_perplexity"]
    lines = [
        "# n-gram against recurrent language models on Penn Treebank",
        "",
        f"**The lecture's claim.** {CLAIM}",
        "",
        f"**Our setup.** {'QUICK SMOKE VERSION (a few hundred lines): not a measurement. ' if quick else ''}"
        "Validation perplexity per word token, <eos> included "
        "(EQUATIONS.md, 'Language models and their evaluation'), of interpolated modified Kneser-Ney models "
        "(each line a sentence after n-1 start symbols) and of the rnnkit word LM (the whole text as one "
        "stream, batch 1).",
        "",
        "| model | validation perplexity | seconds |",
        "|---|---:|---:|",
        *[
            f"| {row['model']} | {row['valid_perplexity']:.1f} | "
            f"{row['seconds'] if row['seconds'] is not None else '-'} |"
            for row in rows
        ],
        "",
        "Published Penn Treebank **test** perplexities, for scale (test is withheld here): "
        + "; ".join(f"{name} {value}" for name, value in PUBLISHED.items())
        + ".",
        "",
        f"**Agreement.** The RNN's validation perplexity is {rnn['valid_perplexity']:.1f} against "
        f"{best_ngram['valid_perplexity']:.1f} for the best n-gram model ({best_ngram['model'].split(' ')[0]}), "
        "a ratio "
        f"of {ratio:.2f}: the claim {'holds' if ratio > 1 else 'does not hold'} here.",
        "",
    ]
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    labels = [row["model"].split(" (")[0] for row in rows]
    axes.bar(labels, [row["valid_perplexity"] for row in rows], color=["#8c8c8c"] * (len(rows) - 1) + ["#4c72b0"])
    axes.set_ylabel("validation perplexity (lower is better)")
    axes.set_title("Penn Treebank words")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
