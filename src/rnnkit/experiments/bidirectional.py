"""The lectures' advice "use bidirectionality when possible", on part-of-speech tagging: a tagger whose
recurrent layer reads each sentence left to right only, against one that reads it both ways, with
the same number of recurrent parameters (the one-way layer gets the hidden size that matches).

Everything else is the ud-pos preset (word embeddings and the character BiLSTM, one recurrent
layer, softmax output). Each run trains for the same time through the normal run lifecycle; the
accuracy is that of its best checkpoint on dev.

    rnnkit experiment bidirectional --data TRAIN.conllu --val DEV.conllu [--seeds 3] [--seconds 240] [--quick]
        [--out DIR]
"""

from __future__ import annotations

import sys
from pathlib import Path

from rnnkit.errors import UsageError
from rnnkit.experiments import (
    add_common_arguments,
    mean_and_sd,
    output_directory,
    subset,
    train_once,
    write_report,
    write_results,
)
from rnnkit.plots import pyplot
from rnnkit.spec import layer_parameter_shapes

NAME = "bidirectional"
SUMMARY = "tagging with a one-way and a two-way recurrent layer of the same parameter budget"
CLAIM = (
    "Use bidirectionality when possible: for tagging, where the whole sentence is known, a layer that reads it "
    "both ways does better than one that reads it left to right."
)
SETTINGS = ["model.num_layers=1", "model.residual=false", "model.crf=false"]
BIDIRECTIONAL_HIDDEN = 128
QUICK = {
    "train": 60,
    "dev": 20,
    "steps": 4,
    "seeds": 1,
    "settings": ["model.embedding_size=16", "model.char_embedding_size=8", "model.char_hidden_size=8"],
}


def add_arguments(parser) -> None:
    add_common_arguments(
        parser, NAME, "tagged training data (CoNLL-U or tsv)", "tagged dev data", "a few sentences and steps, 1 seed"
    )
    parser.add_argument(
        "--seeds", type=int, default=3, metavar="N", help="runs per direction, seeds 0..N-1 (default 3)"
    )
    parser.add_argument("--seconds", type=float, default=240.0, metavar="S", help="training time per run (default 240)")


def recurrent_parameters(architecture, hidden: int, bidirectional: bool) -> int:
    char_size = 2 * architecture.char_hidden_size if architecture.char_encoder == "bilstm" else 0
    shapes = layer_parameter_shapes(
        architecture.cell_spec(), architecture.embedding_size + char_size, hidden, 1, bidirectional=bidirectional
    )
    total = 0
    for shape in shapes.values():
        size = 1
        for dimension in shape:
            size *= dimension
        total += size
    return total


def matched_hidden(architecture, bidirectional_hidden: int) -> int:
    """The one-way hidden size whose recurrent layer has (nearly) the parameters of the two-way one."""
    target = recurrent_parameters(architecture, bidirectional_hidden, True)
    return min(
        range(1, 4 * bidirectional_hidden), key=lambda h: abs(recurrent_parameters(architecture, h, False) - target)
    )


def run(args) -> int:
    from rnnkit.runs import new_config

    if args.seeds < 1 or not args.seconds > 0:
        raise UsageError(f"--seeds must be 1 or more and --seconds positive, got {args.seeds} and {args.seconds:g}")
    pyplot()
    directory = output_directory(args.out, NAME)
    files, settings = {"train": args.data, "dev": args.val}, list(SETTINGS)
    limit, seeds = {"train.max_time": args.seconds}, args.seeds
    if args.quick:
        files = {
            "train": subset(args.data, QUICK["train"], directory / "data"),
            "dev": subset(args.val, QUICK["dev"], directory / "data"),
        }
        settings += QUICK["settings"]
        limit, seeds = {"train.max_steps": QUICK["steps"], "train.eval_every": 2}, QUICK["seeds"]
    base = {"data.train": files["train"], "data.validation": files["dev"], **limit}
    architecture = new_config("ud-pos", settings, base).model
    hidden = {True: BIDIRECTIONAL_HIDDEN, False: matched_hidden(architecture, BIDIRECTIONAL_HIDDEN)}
    runs = []
    for bidirectional in (False, True):
        for seed in range(seeds):
            values = {
                **base,
                "train.seed": seed,
                "model.bidirectional": bidirectional,
                "model.hidden_size": hidden[bidirectional],
            }
            outcome = train_once(
                "ud-pos", settings, values, directory / "runs" / f"{'bi' if bidirectional else 'uni'}-seed{seed}"
            )
            runs.append(
                {
                    "bidirectional": bidirectional,
                    "hidden_size": hidden[bidirectional],
                    "seed": seed,
                    "recurrent_parameters": recurrent_parameters(architecture, hidden[bidirectional], bidirectional),
                    "dev_accuracy": outcome["best"],
                    **{k: outcome[k] for k in ("epochs", "seconds", "parameters", "run")},
                }
            )
            print(
                f"rnnkit experiment {NAME}: {'two-way' if bidirectional else 'one-way'}, seed {seed}: "
                f"dev accuracy {100 * outcome['best']:.2f}",
                file=sys.stderr,
                flush=True,
            )
    summary = []
    for bidirectional in (False, True):
        mine = [r for r in runs if r["bidirectional"] == bidirectional]
        mean, sd = mean_and_sd([100 * r["dev_accuracy"] for r in mine])
        summary.append(
            {
                "bidirectional": bidirectional,
                "hidden_size": hidden[bidirectional],
                "recurrent_parameters": mine[0]["recurrent_parameters"],
                "dev_mean": round(mean, 2),
                "dev_sd": round(sd, 2),
                "seconds_mean": round(sum(r["seconds"] for r in mine) / len(mine), 1),
            }
        )
    write_results(
        directory,
        {
            "experiment": NAME,
            "quick": args.quick,
            "settings": settings,
            "limit": limit,
            "summary": summary,
            "runs": runs,
        },
    )
    write_report(directory, report(summary, seeds, args.quick, limit))
    plot(summary, directory / "bidirectional.png")
    print(f"rnnkit experiment {NAME}: results.json, report.md and bidirectional.png in {directory}", file=sys.stderr)
    return 0


def report(summary: list[dict], seeds: int, quick: bool, limit: dict) -> str:
    one, two = summary
    gap = two["dev_mean"] - one["dev_mean"]
    clear = abs(gap) > one["dev_sd"] + two["dev_sd"]
    verdict = (
        "agrees with the lecture"
        if gap > 0 and clear
        else "points the lecture's way but within the seeds' spread"
        if gap > 0
        else "does not agree with the lecture"
    )
    lines = [
        "# One-way or two-way recurrent layer for part-of-speech tagging",
        "",
        f"**The lecture's claim.** {CLAIM}",
        "",
        f"**Our setup.** {'QUICK SMOKE VERSION: not a measurement. ' if quick else ''}The ud-pos preset's tagger with "
        f"one recurrent layer and a softmax output; both layers hold the same number of recurrent parameters. "
        f"Each run trains for {limit.get('train.max_time', limit.get('train.max_steps'))} "
        f"{'seconds' if 'train.max_time' in limit else 'steps'}; the accuracy is its best checkpoint's on dev "
        f"(UPOS). {seeds} seed(s) each.",
        "",
        "| layer | hidden size | recurrent parameters | dev accuracy, mean ± sd | seconds |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in summary:
        lines.append(
            f"| {'two-way' if row['bidirectional'] else 'one-way'} | {row['hidden_size']} | "
            f"{row['recurrent_parameters']:,} | {row['dev_mean']:.2f} ± {row['dev_sd']:.2f} | "
            f"{row['seconds_mean']:.0f} |"
        )
    lines += [
        "",
        f"**Agreement.** With the same parameter budget the two-way layer is {gap:+.2f} points against the "
        f"one-way layer, which {verdict} (the seeds' standard deviations are {one['dev_sd']:.2f} and "
        f"{two['dev_sd']:.2f}).",
        "",
    ]
    return "\n".join(lines)


def plot(summary: list[dict], path: Path) -> None:
    plt = pyplot()
    figure, axes = plt.subplots(figsize=(4.5, 4))
    labels = [f"{'two-way' if row['bidirectional'] else 'one-way'}\nH={row['hidden_size']}" for row in summary]
    axes.bar(
        labels,
        [row["dev_mean"] for row in summary],
        yerr=[row["dev_sd"] for row in summary],
        capsize=5,
        color=["#8c8c8c", "#4c72b0"],
    )
    low = min(row["dev_mean"] - row["dev_sd"] for row in summary)
    axes.set_ylim(max(0, low - 2), min(100, max(row["dev_mean"] + row["dev_sd"] for row in summary) + 1))
    axes.set_ylabel("UPOS dev accuracy (%)")
    axes.set_title("Same parameter budget")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
